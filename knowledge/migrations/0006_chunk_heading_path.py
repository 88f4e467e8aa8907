"""Chunks know their heading path (document title › section › subsection). The full-text
index weighs the path like a heading: PostgreSQL's tsvector is rebuilt from it (weight A),
and SQLite's FTS5 table indexes it in place of the bare section. Existing chunks get
"title › section" until their document is ingested again (`manage.py reindex --reingest`)."""

from django.db import migrations, models

# As services.heading_path(): the title, then the section unless empty or the title itself.
# As services.heading_path(): the title, then the section unless empty or the title itself.
FILL = ("UPDATE knowledge_chunk SET heading_path = substr((SELECT CASE"
        " WHEN knowledge_chunk.section = '' OR knowledge_chunk.section = d.title THEN d.title"
        " WHEN d.title = '' THEN knowledge_chunk.section"
        " ELSE d.title || ' › ' || knowledge_chunk.section END"
        " FROM knowledge_document d WHERE d.id = knowledge_chunk.document_id), 1, 1000)")

_FTS = ("CREATE VIRTUAL TABLE knowledge_chunk_fts USING fts5({heading}, text,"
        " content='knowledge_chunk', content_rowid='id',"
        " tokenize='porter unicode61 remove_diacritics 2')")


def _triggers(column: str) -> list[str]:
    return [
        "CREATE TRIGGER knowledge_chunk_fts_ai AFTER INSERT ON knowledge_chunk BEGIN"
        f" INSERT INTO knowledge_chunk_fts(rowid, {column}, text)"
        f" VALUES (new.id, new.{column}, new.text); END",
        "CREATE TRIGGER knowledge_chunk_fts_ad AFTER DELETE ON knowledge_chunk BEGIN"
        f" INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts, rowid, {column}, text)"
        f" VALUES ('delete', old.id, old.{column}, old.text); END",
        f"CREATE TRIGGER knowledge_chunk_fts_au AFTER UPDATE OF {column}, text ON"
        " knowledge_chunk BEGIN"
        f" INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts, rowid, {column}, text)"
        f" VALUES ('delete', old.id, old.{column}, old.text);"
        f" INSERT INTO knowledge_chunk_fts(rowid, {column}, text)"
        f" VALUES (new.id, new.{column}, new.text); END",
    ]


_DROP = ["DROP TRIGGER IF EXISTS knowledge_chunk_fts_au",
         "DROP TRIGGER IF EXISTS knowledge_chunk_fts_ad",
         "DROP TRIGGER IF EXISTS knowledge_chunk_fts_ai",
         "DROP TABLE IF EXISTS knowledge_chunk_fts"]


def _sqlite_index(column: str) -> list[str]:
    return [*_DROP, _FTS.format(heading=column), *_triggers(column),
            "INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts) VALUES ('rebuild')"]


POSTGRES_VECTOR = (
    "UPDATE knowledge_chunk SET search_vector ="
    " setweight(to_tsvector(%s::regconfig, coalesce({heading}, '')), 'A') ||"
    " setweight(to_tsvector(%s::regconfig, text), 'B')")


def forward(apps, schema_editor):
    schema_editor.execute(FILL)
    _index(schema_editor, "heading_path")


def backward(apps, schema_editor):
    _index(schema_editor, "section")


def _index(schema_editor, column: str) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        for statement in _sqlite_index(column):
            schema_editor.execute(statement)
    elif vendor == "postgresql":
        from django.conf import settings

        config = settings.EGRET_SEARCH_CONFIG
        schema_editor.execute(POSTGRES_VECTOR.format(heading=column), [config, config])


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0005_pgvector")]

    operations = [
        migrations.AddField("chunk", "heading_path",
                            models.CharField(blank=True, max_length=1000)),
        migrations.RunPython(forward, backward),
    ]
