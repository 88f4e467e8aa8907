from decimal import Decimal

from django.db import migrations

# API.md 5.1. Enterprise zeros mean "set per organization by the operator".
PLANS = [
    dict(slug="free", name="Free", sort_order=0, price_monthly_usd=Decimal("0.00"),
         monthly_credits=50, model_tier="standard", max_api_keys=0,
         max_storage_gb=Decimal("0.00"), max_documents=0, max_members=1, has_api_access=False,
         has_streaming=True, has_custom_documents=False, has_export=False,
         has_cross_category_compare=False,
         description="Try Egret: 50 answers a month on the standard models, one member."),
    dict(slug="starter", name="Starter", sort_order=1, price_monthly_usd=Decimal("49.00"),
         monthly_credits=5000, model_tier="standard", max_api_keys=1,
         max_storage_gb=Decimal("1.00"), max_documents=50, max_members=3, has_api_access=True,
         has_streaming=True, has_custom_documents=True, has_export=False,
         has_cross_category_compare=False,
         description="Small teams: API access, private documents, three members."),
    dict(slug="professional", name="Professional", sort_order=2,
         price_monthly_usd=Decimal("149.00"), monthly_credits=20000, model_tier="premium",
         max_api_keys=1, max_storage_gb=Decimal("5.00"), max_documents=500, max_members=10,
         has_api_access=True, has_streaming=True, has_custom_documents=True, has_export=True,
         has_cross_category_compare=True,
         description="Compliance teams: premium models, exports, cross-category comparison."),
    dict(slug="enterprise", name="Enterprise", sort_order=3, price_monthly_usd=Decimal("0.00"),
         monthly_credits=0, model_tier="enterprise", max_api_keys=5,
         max_storage_gb=Decimal("0.00"), max_documents=0, max_members=0, has_api_access=True,
         has_streaming=True, has_custom_documents=True, has_export=True,
         has_cross_category_compare=True,
         description="Priced and sized per customer: credits and limits set by agreement."),
]


def seed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for fields in PLANS:
        fields = dict(fields, tier=fields["slug"])
        Plan.objects.update_or_create(slug=fields["slug"], defaults=fields)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
