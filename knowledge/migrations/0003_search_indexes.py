"""Full-text indexes, one per database: a GIN index over the stored tsvector on PostgreSQL,
an FTS5 table kept in step with knowledge_chunk by triggers on SQLite."""

from django.db import migrations

POSTGRES_FORWARD = [
    "CREATE INDEX knowledge_chunk_search_gin ON knowledge_chunk USING GIN (search_vector)",
]
POSTGRES_BACKWARD = ["DROP INDEX IF EXISTS knowledge_chunk_search_gin"]

# External-content FTS5 table: the text lives once, in knowledge_chunk; the index follows it.
SQLITE_FORWARD = [
    "CREATE VIRTUAL TABLE knowledge_chunk_fts USING fts5(section, text, content='knowledge_chunk',"
    " content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER knowledge_chunk_fts_ai AFTER INSERT ON knowledge_chunk BEGIN"
    " INSERT INTO knowledge_chunk_fts(rowid, section, text) VALUES (new.id, new.section, new.text);"
    " END",
    "CREATE TRIGGER knowledge_chunk_fts_ad AFTER DELETE ON knowledge_chunk BEGIN"
    " INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts, rowid, section, text)"
    " VALUES ('delete', old.id, old.section, old.text); END",
    "CREATE TRIGGER knowledge_chunk_fts_au AFTER UPDATE OF section, text ON knowledge_chunk BEGIN"
    " INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts, rowid, section, text)"
    " VALUES ('delete', old.id, old.section, old.text);"
    " INSERT INTO knowledge_chunk_fts(rowid, section, text) VALUES (new.id, new.section, new.text);"
    " END",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_au",
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_ad",
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_ai",
    "DROP TABLE IF EXISTS knowledge_chunk_fts",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)
    return run


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0002_documents")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
    ]
