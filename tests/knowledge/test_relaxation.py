"""PostgreSQL search relaxes step by step (knowledge/retrieval.py): passages holding every
term, then passages holding two of the terms (ranked by how much of the query they hold),
then any term. SQLite ranks with bm25 in one step and is covered by test_ingestion.py."""

from __future__ import annotations

import pytest
from django.db import connection

from knowledge import retrieval
from tests.knowledge.test_ingestion import ingest

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the relaxation steps are PostgreSQL full-text search (SQLite ranks with bm25)")

PASSAGES = {
    "all.md": "Encryption keys for backup media are rotated by the custodian every year.",
    "two-often.md": ("Backup media are encrypted. The backup media register lists every "
                     "backup tape and its encryption status, and backup media leave the site "
                     "only encrypted."),
    "two-once.md": "Backup schedules follow the encryption policy of the data owner.",
    "one.md": "The custodian signs the visitor book at reception.",
    "none.md": "Fire drills take place twice a year in every building.",
}


@pytest.fixture
def library(domain, category):
    return {name: ingest(f"# {name}\n\n{text}".encode(), name, domain=domain,
                         category=category)
            for name, text in PASSAGES.items()}


def names(hits) -> list[str]:
    return [hit.document.filename for hit in hits]


def test_every_term_first_then_two_of_the_terms_then_any(library, domain, category):
    hits = retrieval.search("backup encryption custodian", domain=domain, category=category,
                            limit=5)
    assert names(hits)[0] == "all.md"  # the only passage holding all three terms
    assert set(names(hits)[1:3]) == {"two-often.md", "two-once.md"}  # two of the terms
    assert names(hits)[3:] == ["one.md"]  # one term: found by the last (OR) step
    assert "none.md" not in names(hits)


def test_two_of_the_terms_ranks_the_passage_holding_more_of_the_query_first(
        library, domain, category):
    # No passage holds all four terms. Three hold two of them (backup, encryption), one of
    # them many times over; "one.md" and "none.md" hold one (visitor, fire).
    hits = retrieval.search("backup encryption visitor fire", domain=domain,
                            category=category, limit=3)
    assert names(hits)[0] == "two-often.md"
    assert set(names(hits)) == {"two-often.md", "all.md", "two-once.md"}
    assert hits[0].score > max(hit.score for hit in hits[1:]) > 0


def test_quotes_skip_the_two_of_the_terms_step(library, domain, category, monkeypatch):
    stages = []
    real = retrieval._postgres_ranked

    def recording(*args, stage, **kwargs):
        stages.append(stage)
        return real(*args, stage=stage, **kwargs)

    monkeypatch.setattr(retrieval, "_postgres_ranked", recording)
    retrieval.search('"backup media" custodian', domain=domain, category=category, limit=5)
    assert stages == ["all", "any"]
    stages.clear()
    retrieval.search("backup custodian fire", domain=domain, category=category, limit=5)
    assert stages == ["all", "pairs", "any"]


def test_each_statement_ranks_at_most_ranked_matches_rows_inside_the_filters(
        library, domain, category, org, monkeypatch):
    """The candidate limit bounds the rows a statement ranks; the tenant and scope filters
    are applied before it, so a limited statement still returns only rows it may see."""
    other = ingest(b"# other.md\n\nBackup encryption keys of the custodian.", "other.md",
                   organization=org, domain=domain, category=category)
    assert other.chunk_count == 1
    where, params = retrieval._filters(domain, category, None, "public")
    query = "backup encryption custodian visitor"
    unlimited = retrieval._postgres_ranked(query, where, params, 10, stage="any")
    assert len(unlimited) == 4  # every public passage holding one of the terms

    monkeypatch.setattr(retrieval, "RANKED_MATCHES", 2)
    limited = retrieval._postgres_ranked(query, where, params, 10, stage="any")
    assert len(limited) == 2 and set(limited) <= set(unlimited)
    assert other.chunks.get().pk not in {pk for pk, _ in limited}
    hits = retrieval.search(query, domain=domain, category=category, limit=5)
    assert "other.md" not in names(hits) and 1 <= len(hits) <= 5


def test_postgresql_connections_run_without_jit(db):
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
