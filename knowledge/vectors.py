"""pgvector acceleration of semantic search, used only where it exists.

The float32 bytes in ``Chunk.embedding`` stay the portable source of truth. On PostgreSQL with
the ``vector`` extension, migration 0005 adds ``knowledge_chunk.embedding_vector vector(N)``
(N = ``EGRET_EMBEDDINGS_DIMENSIONS``) with an HNSW index (cosine), and every write of the bytes
is mirrored into that column by :func:`sync`. Retrieval then ranks inside PostgreSQL; anywhere
else (SQLite, PostgreSQL without the extension) it keeps the exact NumPy cosine.

The column is not on the Django model: it exists on some databases only, so it is reached
with SQL and detected at run time (once per process and database, see :func:`column`).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Sequence

from django.db import connection, transaction

logger = logging.getLogger("egret.knowledge")

TABLE = "knowledge_chunk"
COLUMN = "embedding_vector"
INDEX = "knowledge_chunk_embedding_hnsw"
# pgvector cannot index a `vector` wider than this with HNSW; wider columns are still searched
# exactly by PostgreSQL (a sequential scan), which stays correct.
HNSW_MAX_DIMENSIONS = 2000
SYNC_BATCH = 500

# (alias, host, port, name) -> dimensions of the column, or None when there is no column.
_columns: dict[tuple, int | None] = {}


def reset() -> None:
    """Forget what was detected (tests, or after the column was retyped)."""
    _columns.clear()


def _key() -> tuple:
    s = connection.settings_dict
    return (connection.alias, s.get("HOST"), s.get("PORT"), s.get("NAME"))


def column() -> int | None:
    """Dimensions of ``embedding_vector`` on the current database, None when it is absent
    (always on SQLite). Detected once per process and database."""
    if connection.vendor != "postgresql":
        return None
    key = _key()
    if key not in _columns:
        _columns[key] = _detect(connection)
    return _columns[key]


def _detect(conn) -> int | None:
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT a.atttypmod FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE c.relname = %s AND a.attname = %s AND t.typname = 'vector' "
            "AND NOT a.attisdropped AND pg_table_is_visible(c.oid)", [TABLE, COLUMN])
        row = cursor.fetchone()
    return None if row is None else int(row[0])


# --------------------------------------------------------------------------- schema


def extension_available(conn) -> bool:
    if conn.vendor != "postgresql":
        return False
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        return cursor.fetchone() is not None


def install(conn, dimensions: int) -> bool:
    """Create the extension (if allowed), the column and its index. True when the column
    exists afterwards. Without the extension, or without the right to create it, nothing
    changes: semantic search keeps its NumPy path."""
    if not extension_available(conn):
        return False
    try:
        with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except Exception as exc:  # typically: permission denied (vector is not a trusted extension)
        logger.warning("pgvector is available but could not be enabled (%s); semantic search "
                       "stays exact in Python. A superuser can run CREATE EXTENSION vector "
                       "and then `manage.py migrate knowledge 0004` + `migrate`.", exc)
        return False
    with conn.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {COLUMN} "
                       f"vector({int(dimensions)})")
    _create_index(conn, dimensions)
    reset()
    return True


def uninstall(conn) -> None:
    """Drop the index and the column; the extension stays (other tables may use it)."""
    if conn.vendor != "postgresql":
        return
    with conn.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {INDEX}")
        cursor.execute(f"ALTER TABLE {TABLE} DROP COLUMN IF EXISTS {COLUMN}")
    reset()


def _create_index(conn, dimensions: int) -> None:
    if dimensions > HNSW_MAX_DIMENSIONS:
        logger.warning("%d-dimensional embeddings are too wide for an HNSW index (max %d); "
                       "PostgreSQL will rank them exactly.", dimensions, HNSW_MAX_DIMENSIONS)
        return
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} "
                       f"USING hnsw ({COLUMN} vector_cosine_ops)")


def retype(dimensions: int) -> bool:
    """Make the column `dimensions` wide (after a change of embeddings model). Its values are
    cleared, so call :func:`sync` afterwards. True when the column was changed."""
    current = column()
    if current is None or current == dimensions:
        return False
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {INDEX}")
        cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN {COLUMN} TYPE vector({int(dimensions)}) "
                       "USING NULL")
        _create_index(connection, dimensions)
    reset()
    logger.info("pgvector column retyped from %s to %d dimensions", current, dimensions)
    return True


# --------------------------------------------------------------------------- values


def literal(values: Iterable[float]) -> str:
    """pgvector's text form; %.9g round-trips every float32 exactly."""
    return "[" + ",".join(f"{float(v):.9g}" for v in values) + "]"


def bytes_to_literal(blob, dimensions: int) -> str | None:
    """The column value for stored float32 bytes, None when the width does not fit."""
    if blob is None:
        return None
    data = bytes(blob)
    if len(data) != 4 * dimensions:
        return None
    return literal(struct.unpack(f"<{dimensions}f", data))


def sync(*, document_id=None, ids: Sequence[int] | None = None, conn=None) -> int:
    """Copy the stored embeddings (bytes) of a document's chunks, of `ids`, or of every chunk
    into the vector column. A no-op (0) where there is no column. Embeddings whose width
    differs from the column's are written as NULL, so a query never mixes models."""
    conn = conn or connection
    dimensions = column() if conn is connection else (
        _detect(conn) if conn.vendor == "postgresql" else None)
    if dimensions is None:
        return 0
    scope, params = "", []
    if document_id is not None:
        scope, params = "AND document_id = %s", [document_id]
    elif ids is not None:
        if not ids:
            return 0
        scope, params = "AND id = ANY(%s)", [list(ids)]
    done = mismatched = last = 0
    # Keyset pages, so a backfill of a large table never holds every embedding in memory.
    while True:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT id, embedding FROM {TABLE} WHERE id > %s {scope} "
                           "ORDER BY id LIMIT %s", [last, *params, SYNC_BATCH])
            rows = cursor.fetchall()
            if not rows:
                break
            values = []
            for pk, blob in rows:
                value = bytes_to_literal(blob, dimensions) if dimensions > 0 else None
                mismatched += blob is not None and value is None
                values.append((value, pk))
            cursor.executemany(f"UPDATE {TABLE} SET {COLUMN} = %s::vector WHERE id = %s", values)
        done += len(rows)
        last = rows[-1][0]
    if mismatched:
        logger.warning("%d embeddings do not have the pgvector column's %d dimensions; run "
                       "`manage.py reindex` to rebuild them and retype the column.",
                       mismatched, dimensions)
    return done


# --------------------------------------------------------------------------- search


def search(query_vector, where: str, params: list, limit: int) -> list[tuple[int, float]] | None:
    """(chunk id, cosine similarity) of the `limit` nearest chunks within the tenant filter
    `where`, ranked by PostgreSQL; None when pgvector cannot answer (no column, or a query
    of another width) and the caller must rank in Python.

    HNSW applies the filter after walking the graph, so a selective filter (one small
    organization among many) can leave fewer than `limit` hits though more exist; then the
    same query runs again without the index, exactly, which is cheap precisely because few
    rows pass the filter."""
    dimensions = column()
    if dimensions is None or len(query_vector) != dimensions:
        return None
    sql = (f"SELECT c.id, c.{COLUMN} <=> %s::vector AS distance FROM {TABLE} c "
           f"WHERE {where} AND c.{COLUMN} IS NOT NULL ORDER BY distance LIMIT %s")
    args = [literal(query_vector), *params, limit]
    with transaction.atomic(), connection.cursor() as cursor:
        # set_config(..., true) lasts until the end of the outermost transaction, which may be
        # the caller's: the previous values are put back before returning.
        cursor.execute("SELECT current_setting('hnsw.ef_search', true), "
                       "current_setting('enable_indexscan')")
        ef_search, indexscan = cursor.fetchone()
        try:
            # Candidates the graph walk keeps; pgvector's default (40) is below our depth.
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)",
                           [str(min(1000, max(40, 2 * limit)))])
            cursor.execute(sql, args)
            rows = cursor.fetchall()
            if len(rows) < limit:
                cursor.execute("SELECT set_config('enable_indexscan', 'off', true)")
                cursor.execute(sql, args)
                rows = cursor.fetchall()
        finally:
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, true), "
                           "set_config('enable_indexscan', %s, true)",
                           [ef_search or "40", indexscan])
    ranked = [(pk, 1.0 - float(distance)) for pk, distance in rows]
    # The index orders by distance alone; ties go to the lower id, as in embeddings.top_k.
    ranked.sort(key=lambda item: (-item[1], item[0]))
    return ranked
