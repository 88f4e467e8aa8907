"""Earlier versions queued whole rendered emails (`core.tasks.send_email`), reset links and
invitation tokens included, and the database task backend keeps a task's arguments (shown in
admin) after it ran. Those rows go; a mail still waiting among them is not sent (its reader
asks for a new link)."""

from django.db import migrations

RENDERED_EMAIL_TASK = "core.tasks.send_email"


def forget_rendered_emails(apps, schema_editor) -> None:
    DBTaskResult = apps.get_model("django_tasks_database", "DBTaskResult")
    DBTaskResult.objects.filter(task_path=RENDERED_EMAIL_TASK).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0001_initial"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [migrations.RunPython(forget_rendered_emails, migrations.RunPython.noop)]
