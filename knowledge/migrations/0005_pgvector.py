"""pgvector for semantic search where PostgreSQL offers it (knowledge/vectors.py).

Checked when the migration runs: with the `vector` extension available (and the right to
create it), the chunk table gets `embedding_vector vector(EGRET_EMBEDDINGS_DIMENSIONS)` with an
HNSW cosine index, filled from the stored embeddings. On SQLite, or on a PostgreSQL without
pgvector, this migration changes nothing and retrieval keeps its exact NumPy cosine."""

from django.conf import settings
from django.db import migrations


def forward(apps, schema_editor):
    from knowledge import vectors

    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    if vectors.install(connection, settings.EGRET_EMBEDDINGS_DIMENSIONS):
        vectors.sync(conn=connection)


def backward(apps, schema_editor):
    from knowledge import vectors

    vectors.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0004_search_vector_inline")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
