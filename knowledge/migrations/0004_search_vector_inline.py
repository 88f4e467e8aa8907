"""Keep the tsvector in the table row (compressed) instead of the TOAST table: ranking reads
every matching row's vector, and a TOAST fetch per row dominated the cost (docs/benchmarks.md)."""

from django.db import migrations


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE knowledge_chunk ALTER COLUMN search_vector SET STORAGE MAIN")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE knowledge_chunk ALTER COLUMN search_vector SET STORAGE EXTENDED")


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0003_search_indexes")]

    operations = [migrations.RunPython(forward, backward)]
