"""Semantic search through pgvector's HNSW index (knowledge/vectors.py).

Debian's PostgreSQL has no pgvector, so these tests start a private PostgreSQL from the
`pgserver` wheel (it bundles vector.so), migrate a fresh database there, and point Django's
default connection at it for the tests of this module. Embeddings are deterministic fake
vectors: no model, no network.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import struct
import tempfile

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.db.backends.postgresql.base import DatabaseWrapper

from knowledge import embeddings, retrieval, services, vectors
from knowledge.models import Category, Chunk, Document, Domain

DIMS = 384
TOPICS = 6
PER_TOPIC = 50  # 300 public chunks


# --------------------------------------------------------------------------- no pgvector


@pytest.mark.django_db
def test_without_pgvector_there_is_no_column_and_semantic_stays_in_python():
    # The regular test database (SQLite, or PostgreSQL without the extension): migration
    # 0005 was a no-op, so retrieval keeps the exact NumPy path.
    vectors.reset()
    if connection.vendor == "postgresql" and vectors.extension_available(connection):
        pytest.skip("this PostgreSQL has pgvector; the no-op case cannot be observed here")
    assert vectors.column() is None
    assert vectors.search([0.0] * DIMS, "1=1", [], 5) is None
    assert vectors.sync() == 0


# --------------------------------------------------------------------------- fake vectors


def _unit(values: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _random_unit(rng: random.Random) -> list[float]:
    return _unit([rng.gauss(0.0, 1.0) for _ in range(DIMS)])


def _near(direction: list[float], weight: float, rng: random.Random) -> list[float]:
    """A unit vector whose cosine with `direction` is about `weight`."""
    noise = _random_unit(rng)
    rest = math.sqrt(max(0.0, 1.0 - weight * weight))
    return _unit([weight * d + rest * n for d, n in zip(direction, noise)])


def _pack(vector: list[float]) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)


# --------------------------------------------------------------------------- the server


@pytest.fixture(scope="module")
def pg(django_db_blocker):
    """A private pgvector-enabled PostgreSQL, migrated, as Django's default connection."""
    pgserver = pytest.importorskip(
        "pgserver", reason="pgserver (private PostgreSQL with pgvector) is not installed",
        exc_type=ImportError)
    workdir = tempfile.mkdtemp(prefix="egret-pgvector-")
    # As root, pgserver runs PostgreSQL as its own `pgserver` user, which must reach the data.
    os.chmod(workdir, 0o755)
    server = pgserver.get_server(os.path.join(workdir, "pgdata"), cleanup_mode="delete")
    try:
        server.psql("CREATE DATABASE egret_pgvector;")
        info = server.get_postmaster_info()  # a socket directory, or a TCP port
        host, port = (str(info.socket_dir), "") if info.socket_dir else (info.hostname,
                                                                         str(info.port))
        original = connections["default"]
        settings_dict = {**original.settings_dict, "ENGINE": "django.db.backends.postgresql",
                         "NAME": "egret_pgvector", "USER": "postgres", "PASSWORD": "",
                         "HOST": host, "PORT": port, "OPTIONS": {},
                         "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False}
        wrapper = DatabaseWrapper(settings_dict, alias="default")
        with django_db_blocker.unblock():
            connections["default"] = wrapper
            vectors.reset()
            try:
                call_command("migrate", verbosity=0, interactive=False)
                data = _populate()
                yield data
            finally:
                wrapper.close()
                connections["default"] = original
                vectors.reset()
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def _make_org(name: str, slug: str):
    from django.contrib.auth import get_user_model

    from organizations import services as org_services

    owner = get_user_model().objects.create_user(f"{slug}@example.com", "pw-" + "x" * 20)
    return org_services.organization_create(owner=owner, name=name, slug=slug,
                                            plan_slug="starter")


def _document(title: str, *, organization=None, domain=None, category=None) -> Document:
    return Document.objects.create(
        organization=organization, domain=domain, category=category, title=title,
        filename=f"{title}.md", content_type="text/markdown", size_bytes=1, sha256="0" * 64,
        file=f"knowledge/{title}.md", status=Document.Status.READY)


def _chunks(document: Document, vectors_: list[list[float]]) -> list[int]:
    made = Chunk.objects.bulk_create([
        Chunk(document=document, organization_id=document.organization_id,
              domain_id=document.domain_id, category_id=document.category_id, ordinal=i,
              text=f"{document.title} passage {i}", token_count=3, embedding=_pack(vector))
        for i, vector in enumerate(vectors_)])
    return [c.pk for c in made]


def _populate() -> dict:
    """300 public chunks around 6 topic directions (cosines to their topic spread from 0.95
    down), private chunks of two organizations, and a tiny third organization."""
    rng = random.Random(20261201)
    domain = Domain.objects.create(slug="biotech", name="Biotech")
    category = Category.objects.create(domain=domain, code="gmp", name="GMP")
    acme, rival, tiny = (_make_org("Acme", "acme"), _make_org("Rival", "rival"),
                         _make_org("Tiny", "tiny"))
    topics = [_random_unit(rng) for _ in range(TOPICS)]
    public = _document("public", domain=domain, category=category)
    weights = [0.95 - 0.9 * k / PER_TOPIC for k in range(PER_TOPIC)]
    _chunks(public, [_near(topics[t], w, rng) for w in weights for t in range(TOPICS)])
    own = _document("acme-own", organization=acme, domain=domain)
    _chunks(own, [_near(topics[t], 0.5, rng) for t in range(TOPICS)])
    # Rival's secret sits exactly on a direction of its own: the best match for that query.
    secret_direction = _random_unit(rng)
    secret = _document("rival-secret", organization=rival, domain=domain, category=category)
    secret_ids = _chunks(secret, [secret_direction] + [_random_unit(rng) for _ in range(20)])
    small = _document("tiny-own", organization=tiny)
    tiny_ids = _chunks(small, [_random_unit(rng) for _ in range(3)])
    assert vectors.sync() == Chunk.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE knowledge_chunk")
    return {"domain": domain, "category": category, "acme": acme, "rival": rival,
            "tiny": tiny, "topics": topics, "secret_direction": secret_direction,
            "secret_ids": set(secret_ids), "tiny_ids": set(tiny_ids)}


@pytest.fixture
def fake_query(monkeypatch):
    """Route embed_query to a chosen vector (the query text is ignored)."""
    chosen: dict = {}
    monkeypatch.setattr(embeddings, "embed_query", lambda text: list(chosen["vector"]))

    def use(vector: list[float]) -> None:
        chosen["vector"] = vector

    return use


# --------------------------------------------------------------------------- schema


def test_migration_created_extension_column_and_hnsw_index(pg):
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone() is not None
        cursor.execute(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = 'knowledge_chunk'::regclass AND a.attname = 'embedding_vector'")
        assert cursor.fetchone() == (f"vector({DIMS})",)
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [vectors.INDEX])
        (indexdef,) = cursor.fetchone()
    assert "USING hnsw" in indexdef and "vector_cosine_ops" in indexdef
    assert vectors.column() == DIMS
    assert not Chunk.objects.filter(embedding__isnull=False).extra(
        where=["embedding_vector IS NULL"]).exists()


def test_semantic_query_uses_the_hnsw_index(pg):
    where, params = retrieval._filters(pg["domain"], pg["category"], pg["acme"], "all")
    sql = (f"EXPLAIN SELECT c.id, c.embedding_vector <=> %s::vector AS distance "
           f"FROM knowledge_chunk c WHERE {where} AND c.embedding_vector IS NOT NULL "
           "ORDER BY distance LIMIT 50")
    with connection.cursor() as cursor:
        # A few hundred rows are cheaper to scan than any index; on a real table the
        # planner takes the index by itself.
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SET enable_bitmapscan = off")
        try:
            cursor.execute(sql, [vectors.literal(pg["topics"][0]), *params])
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_seqscan")
            cursor.execute("RESET enable_bitmapscan")
    assert f"Index Scan using {vectors.INDEX}" in plan, plan


# --------------------------------------------------------------------------- ranking


@pytest.mark.parametrize("topic", range(TOPICS))
def test_pgvector_ranking_matches_the_exact_numpy_ranking(pg, fake_query, topic):
    pytest.importorskip("numpy", reason="the exact NumPy ranking needs numpy")
    query = pg["topics"][topic]
    fake_query(query)
    where, params = retrieval._filters(pg["domain"], pg["category"], pg["acme"], "all")
    assert vectors.column() == DIMS
    indexed = retrieval._semantic("q", where, params, 50)
    exact = retrieval._semantic_exact("q", where, params, 50)
    assert [pk for pk, _ in indexed[:10]] == [pk for pk, _ in exact[:10]]
    for (_, a), (_, b) in zip(indexed[:10], exact[:10]):
        assert a == pytest.approx(b, abs=1e-4)
    hits = retrieval.search("q", domain=pg["domain"], category=pg["category"],
                            organization=pg["acme"], method="semantic", limit=5)
    assert [h.chunk.pk for h in hits] == [pk for pk, _ in exact[:5]]
    assert hits[0].score == pytest.approx(0.95, abs=0.1)


def test_another_organizations_private_chunk_is_never_returned(pg, fake_query):
    fake_query(pg["secret_direction"])
    # The secret is the nearest chunk of all, yet Acme's search cannot see it at any depth.
    hits = retrieval.search("q", domain=pg["domain"], category=pg["category"],
                            organization=pg["acme"], method="semantic", limit=50)
    assert len(hits) == 50
    assert not {h.chunk.pk for h in hits} & pg["secret_ids"]
    assert all(h.chunk.organization_id in (None, pg["acme"].pk) for h in hits)
    public_only = retrieval.search("q", domain=pg["domain"], category=pg["category"],
                                   method="semantic", limit=50)
    assert all(h.chunk.organization_id is None for h in public_only)
    # Its owner finds it first, with a cosine of 1.
    mine = retrieval.search("q", domain=pg["domain"], category=pg["category"],
                            organization=pg["rival"], method="semantic", limit=3)
    assert mine[0].chunk.pk in pg["secret_ids"] and mine[0].score == pytest.approx(1.0)


def test_a_selective_filter_still_gets_every_match(pg, fake_query):
    # Three private chunks among ~350: the HNSW walk alone would mostly miss them.
    fake_query(pg["topics"][0])
    hits = retrieval.search("q", organization=pg["tiny"], scope="private",
                            method="semantic", limit=5)
    assert {h.chunk.pk for h in hits} == pg["tiny_ids"]


def test_settings_changed_inside_a_transaction_are_restored(pg, fake_query):
    from django.db import transaction

    fake_query(pg["topics"][1])
    with transaction.atomic(), connection.cursor() as cursor:
        retrieval.search("q", organization=pg["tiny"], scope="private", method="semantic")
        cursor.execute("SELECT current_setting('enable_indexscan')")
        assert cursor.fetchone() == ("on",)


def test_a_query_of_another_width_falls_back_to_python(pg, fake_query):
    pytest.importorskip("numpy", reason="the exact NumPy ranking needs numpy")
    fake_query([1.0, 0.0, 0.0])
    where, params = retrieval._filters(pg["domain"], pg["category"], pg["acme"], "all")
    assert vectors.search([1.0, 0.0, 0.0], where, params, 5) is None


# --------------------------------------------------------------------------- writes


def test_ingestion_writes_the_vector_column(pg, monkeypatch, settings):
    rng = random.Random(7)
    monkeypatch.setattr(embeddings, "enabled", lambda: True)
    monkeypatch.setattr(embeddings, "to_bytes", _pack)
    monkeypatch.setattr(embeddings, "embed_texts",
                        lambda texts, **kw: [_random_unit(rng) for _ in texts])
    document = services.document_create(
        data=b"# Cleaning\n\nSwab samples after three consecutive cleaning runs.\n",
        filename="cleaning.md", organization=pg["acme"])
    document = services.document_ingest(document.pk)
    assert document.status == Document.Status.READY and document.chunk_count >= 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(embedding_vector) FROM knowledge_chunk "
                       "WHERE document_id = %s", [document.pk])
        total, filled = cursor.fetchone()
    assert total == filled == document.chunk_count
    services.document_delete(document)


def test_reindex_refills_the_column_from_the_stored_embeddings(pg):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE knowledge_chunk SET embedding_vector = NULL")
    call_command("reindex", "--no-embeddings", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM knowledge_chunk WHERE embedding IS NOT NULL "
                       "AND embedding_vector IS NULL")
        assert cursor.fetchone() == (0,)


def test_rebuild_with_a_model_of_another_width_retypes_the_column(pg, monkeypatch):
    pytest.importorskip("numpy", reason="embeddings_rebuild stores vectors through numpy")
    import numpy as np

    def embed_texts(texts, **kw):
        return np.ones((len(texts), 8), dtype=np.float32) / math.sqrt(8)

    monkeypatch.setattr(embeddings, "dimensions", lambda: 8)
    monkeypatch.setattr(embeddings, "embed_texts", embed_texts)
    try:
        services.embeddings_rebuild()
        assert vectors.column() == 8
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM knowledge_chunk WHERE embedding_vector IS NULL")
            assert cursor.fetchone() == (0,)
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s",
                           [vectors.INDEX])
            assert "hnsw" in cursor.fetchone()[0]
    finally:
        # Every embedding is now 8 wide: this test stays the last of the module.
        vectors.retype(DIMS)


def test_migration_reverses_and_reapplies(pg):
    call_command("migrate", "knowledge", "0004", verbosity=0)
    vectors.reset()
    assert vectors.column() is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [vectors.INDEX])
        assert cursor.fetchone() is None
    call_command("migrate", "knowledge", verbosity=0)
    assert vectors.column() == DIMS
