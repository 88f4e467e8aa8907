"""The exact nearest-vector search without pgvector (knowledge/retrieval.py): each scope's
vectors are read once per process and read again when the scope changes."""

from __future__ import annotations

import pytest
from knowledge import embeddings, retrieval, services, vectors
from knowledge.models import Chunk, Document

np = pytest.importorskip("numpy", reason="the exact search needs numpy")

WIDTH = 8


def _axis(index: int, width: int = WIDTH) -> np.ndarray:
    vector = np.zeros(width, dtype=np.float32)
    vector[index] = 1.0
    return vector


def _document(title: str, domain, category, organization=None) -> Document:
    return Document.objects.create(
        organization=organization, domain=domain, category=category, title=title,
        filename=f"{title}.md", content_type="text/markdown", size_bytes=1, sha256="0" * 64,
        file=f"knowledge/{title}.md", status=Document.Status.READY)


def _chunk(document: Document, ordinal: int, vector: np.ndarray) -> Chunk:
    return Chunk.objects.create(
        document=document, organization_id=document.organization_id,
        domain_id=document.domain_id, category_id=document.category_id, ordinal=ordinal,
        text=f"{document.title} passage {ordinal}", token_count=3,
        embedding=embeddings.to_bytes(vector))


@pytest.fixture
def scope(domain, category, monkeypatch):
    if vectors.column() is not None:
        pytest.skip("pgvector answers semantic search here; the exact path is not used")
    retrieval._SCOPES.clear()
    asked: dict = {}
    monkeypatch.setattr(embeddings, "embed_query", lambda text: asked["vector"])
    document = _document("library", domain, category)
    chunks = [_chunk(document, i, _axis(i)) for i in range(4)]
    where, params = retrieval._filters(domain, category, None, "public")
    yield {"where": where, "params": params, "ask": lambda v: asked.update(vector=v),
           "document": document, "chunks": chunks}
    retrieval._SCOPES.clear()


def _nearest(scope) -> list[int]:
    return [pk for pk, _ in retrieval._semantic_exact("q", scope["where"], scope["params"], 2)]


def test_the_vectors_are_read_once_then_only_the_stamp(scope, django_assert_num_queries):
    scope["ask"](_axis(2))
    with django_assert_num_queries(2):  # the stamp, then every vector of the scope
        assert _nearest(scope)[0] == scope["chunks"][2].pk
    scope["ask"](_axis(3))
    with django_assert_num_queries(1):  # the stamp alone
        assert _nearest(scope)[0] == scope["chunks"][3].pk


def test_a_new_document_is_found_at_once(scope, domain, category):
    scope["ask"](_axis(5))
    before = _nearest(scope)  # the scope is read and kept
    assert len(retrieval._SCOPES) == 1
    added = _chunk(_document("uploaded", domain, category), 0, _axis(5))
    assert added.pk not in before and _nearest(scope)[0] == added.pk


def test_a_deleted_document_is_never_returned(scope):
    scope["ask"](_axis(1))
    assert _nearest(scope)[0] == scope["chunks"][1].pk
    services.document_delete(scope["document"])
    assert _nearest(scope) == []


def test_a_document_ingested_again_brings_its_new_chunks(scope, domain, category):
    document = services.document_create(
        data=b"# Batch records\n\n## Retention\n\nKeep every executed batch record for seven "
             b"years after the batch expires.", filename="batch.md", domain=domain,
        category=category)
    services.document_ingest(document.pk)
    first = set(Chunk.objects.filter(document=document).values_list("pk", flat=True))
    scope["ask"](_axis(0))
    assert first <= set(_kept(scope))
    services.document_ingest(document.pk)  # re-ingest: new chunks, new ids, one stamp
    again = set(Chunk.objects.filter(document=document).values_list("pk", flat=True))
    assert again and not again & first
    _nearest(scope)
    assert again <= set(_kept(scope)) and not first & set(_kept(scope))


def test_reindex_has_every_process_read_the_vectors_again(scope):
    scope["ask"](_axis(0))
    _nearest(scope)
    before = next(iter(retrieval._SCOPES.values())).stamp
    assert services.embeddings_rebuild() == len(scope["chunks"])
    assert _kept(scope) and next(iter(retrieval._SCOPES.values())).stamp != before


def _kept(scope) -> list[int]:
    scope["ask"](_axis(0, embeddings.dimensions()))
    _nearest(scope)
    return next(iter(retrieval._SCOPES.values())).ids


def test_vectors_rewritten_with_another_model_are_read_again(scope):
    scope["ask"](_axis(0))
    assert _nearest(scope)[0] == scope["chunks"][0].pk
    # `reindex` with a model of another width: same ids, same count, new vectors.
    for chunk in scope["chunks"]:
        chunk.embedding = embeddings.to_bytes(_axis(3 - chunk.ordinal, 16))
        chunk.save(update_fields=["embedding"])
    scope["ask"](_axis(0, 16))
    assert _nearest(scope)[0] == scope["chunks"][3].pk
    scope["ask"](_axis(0, 12))  # a question of a width nothing stored has: no candidates
    assert _nearest(scope) == []


def test_each_scope_keeps_its_own_vectors(scope, domain, category):
    from tests.knowledge.test_pgvector import _make_org

    acme = _make_org("Acme", "acme")
    rival = _make_org("Rival", "rival")
    secret = _chunk(_document("rival-secret", domain, category, rival), 0, _axis(6))
    own = _chunk(_document("acme-own", domain, category, acme), 0, _axis(6) * 0.5 + _axis(1) * 0.5)
    scope["ask"](_axis(6))
    where, params = retrieval._filters(domain, category, acme, "all")
    found = [pk for pk, _ in retrieval._semantic_exact("q", where, params, 10)]
    assert found[0] == own.pk and secret.pk not in found
    where, params = retrieval._filters(domain, category, rival, "all")
    assert retrieval._semantic_exact("q", where, params, 1)[0][0] == secret.pk
    assert len(retrieval._SCOPES) == 2


def test_at_most_so_many_scopes_are_kept(scope, monkeypatch, domain, category):
    monkeypatch.setattr(retrieval, "SCOPE_VECTORS_KEPT", 1)
    scope["ask"](_axis(0))
    _nearest(scope)
    where, params = retrieval._filters(domain, None, None, "public")
    retrieval._semantic_exact("q", where, params, 1)
    assert len(retrieval._SCOPES) == 1


def test_organizations_share_the_library_s_vectors(scope, domain, category):
    from tests.knowledge.test_pgvector import _make_org

    acme, rival = _make_org("Acme", "acme"), _make_org("Rival", "rival")
    secret = _chunk(_document("rival-secret", domain, category, rival), 0, _axis(6))
    scope["ask"](_axis(6))
    for organization in (acme, rival, acme):
        hits = retrieval.search("q", domain=domain, category=category,
                                organization=organization, method="semantic", limit=10)
        assert (secret.pk in {h.chunk.pk for h in hits}) == (organization == rival)
    # the library once, then each organization's own documents
    assert len(retrieval._SCOPES) == 3


def test_the_kept_vectors_stay_within_their_byte_budget(scope, monkeypatch, domain, category):
    monkeypatch.setattr(retrieval, "SCOPE_VECTORS_BYTES", 4 * WIDTH * 5)  # 5 rows
    scope["ask"](_axis(0))
    _nearest(scope)  # 4 rows
    other = _document("other category's", domain, None)
    _chunk(other, 0, _axis(1))
    _chunk(other, 1, _axis(2))
    where, params = retrieval._filters(domain, None, None, "public")
    retrieval._semantic_exact("q", where, params, 1)  # 6 rows: the first scope goes
    assert len(retrieval._SCOPES) == 1
    assert next(iter(retrieval._SCOPES.values())).matrix.shape[0] == 6


@pytest.mark.parametrize("method", ["semantic", "hybrid"])
def test_a_question_of_stopwords_alone_finds_nothing_by_meaning(scope, domain, category, method):
    scope["ask"](_axis(0))
    for query in ("the and of", "   "):
        assert retrieval.search(query, domain=domain, category=category, method=method) == []
    assert retrieval.search("batch", domain=domain, category=category, method=method)
