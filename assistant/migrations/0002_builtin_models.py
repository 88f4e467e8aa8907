from django.db import migrations


def create_extractive(apps, schema_editor):
    AIModel = apps.get_model("assistant", "AIModel")
    AIModel.objects.update_or_create(
        id="extractive",
        defaults=dict(name="Egret Extractive", provider="extractive", provider_model="",
                      tier="standard", credits_per_query=1, is_default=True, is_active=True,
                      options={}),
    )


def remove_extractive(apps, schema_editor):
    apps.get_model("assistant", "AIModel").objects.filter(id="extractive").delete()


class Migration(migrations.Migration):
    dependencies = [("assistant", "0001_initial")]
    operations = [migrations.RunPython(create_extractive, remove_extractive)]
