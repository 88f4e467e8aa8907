"""PostgreSQL search relaxes step by step (knowledge/retrieval.py): passages holding every
term, then passages holding two of the terms (ranked by how much of the query they hold),
then any term. SQLite ranks with bm25 in one step and is covered by test_ingestion.py."""

from __future__ import annotations

import pytest
from django.db import connection

from knowledge import retrieval
from knowledge.models import Chunk
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


# --- The two relaxed steps split into parts, rarest term first --------------------------------
@pytest.mark.parametrize("query", ["backup encryption custodian visitor",
                                   "backup encryption visitor fire", "custodian media keys",
                                   "backup", "the of and"])
@pytest.mark.parametrize("stage", ["pairs", "any"])
def test_the_parts_match_the_rows_the_single_statement_matches(library, domain, category,
                                                               query, stage):
    where, params = retrieval._filters(domain, category, None, "public")
    single = retrieval._postgres_ranked(query, where, params, 10, stage=stage)
    parts = retrieval._postgres_ranked(query, where, params, 10, stage=stage,
                                       terms=retrieval._terms(query))
    assert parts == single


def test_the_parts_are_disjoint_and_start_with_the_rarest_term(db, monkeypatch):
    monkeypatch.setattr(retrieval, "_frequencies", lambda: {"backup": 0.5, "encrypt": 0.2})
    terms = retrieval._terms("backup encryption custodian")
    assert terms.lexemes == ("custodian", "encrypt", "backup")
    assert terms.alternatives == terms.lexemes
    assert retrieval._steps("pairs", terms) == [
        "'custodian' & ('encrypt' | 'backup')",
        "'encrypt' & ('backup') & !'custodian'",
    ]
    assert retrieval._steps("any", terms) == [
        "'custodian'", "'encrypt' & !'custodian'", "'backup' & !'custodian' & !'encrypt'"]


@pytest.mark.parametrize("rare, common", [("custodian", "backup"), ("backup", "custodian")])
def test_past_ranked_matches_the_rows_holding_the_rarest_term_are_ranked(
        library, domain, category, monkeypatch, rare, common):
    monkeypatch.setattr(retrieval, "_frequencies", lambda: {rare: 0.1, common: 0.9})
    monkeypatch.setattr(retrieval, "RANKED_MATCHES", 1)
    where, params = retrieval._filters(domain, category, None, "public")
    query = "backup custodian"
    found = retrieval._postgres_ranked(query, where, params, 10, stage="any",
                                       terms=retrieval._terms(query))
    assert len(found) == 1
    (chunk,) = retrieval._chunks_with_documents([found[0][0]]).values()
    assert rare in chunk.text.lower()


def test_phrases_keep_one_statement_for_any_term(library, domain, category):
    query = "third-party backup custodian"
    terms = retrieval._terms(query)
    assert terms.alternatives is None  # websearch_to_tsquery makes a phrase of the word
    assert retrieval._steps("any", terms) is None
    assert len(retrieval._steps("pairs", terms)) == len(terms.lexemes) - 1
    where, params = retrieval._filters(domain, category, None, "public")
    for stage in ("pairs", "any"):
        assert (retrieval._postgres_ranked(query, where, params, 10, stage=stage, terms=terms)
                == retrieval._postgres_ranked(query, where, params, 10, stage=stage))


def test_any_term_looks_for_the_passages_own_lexemes(library, domain, category):
    """The any-term tsquery is the websearch query with its ANDs made ORs, not parsed again:
    to_tsquery would stem "significant" (signific) a second time (signif), a lexeme no
    passage holds, and a passage that only says "significant" would never be found."""
    document = ingest(b"# significant.md\n\nA significant outage is reported within a day.",
                      "significant.md", domain=domain, category=category)
    query = "significant custodian"
    terms = retrieval._terms(query)
    assert "signific" in terms.lexemes and set(terms.alternatives) == set(terms.lexemes)
    where, params = retrieval._filters(domain, category, None, "public")
    found = retrieval._postgres_ranked(query, where, params, 50, stage="any", terms=terms)
    chunks = set(Chunk.objects.filter(document=document).values_list("pk", flat=True))
    assert chunks & {pk for pk, _ in found}
    for stage in ("pairs", "any"):
        assert (retrieval._postgres_ranked(query, where, params, 10, stage=stage, terms=terms)
                == retrieval._postgres_ranked(query, where, params, 10, stage=stage))


def test_term_frequencies_come_from_the_column_statistics(library, monkeypatch):
    monkeypatch.setattr(retrieval, "_FREQUENCIES", {})
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE knowledge_chunk")
    share = retrieval._frequencies()
    assert share.get("backup", 0) > share.get("fire", 0)
    assert 0 < share["backup"] <= 1
    monkeypatch.setattr(retrieval, "_FREQUENCIES",
                        {connection.settings_dict["NAME"]: (retrieval.time.monotonic(), {})})
    assert retrieval._frequencies() == {}  # kept for STATISTICS_TTL seconds


# --- Ranking inside a step: the chunk's length counts ----------------------------------------
def test_a_short_passage_about_the_terms_outranks_a_long_one_mentioning_them(
        db, domain, category, monkeypatch):
    """Each step divides the rank by 1 + log(length) (RANK_NORMALIZATION), as SQLite's bm25
    does: the short section about the question's words comes before a long one that holds
    them once each among many others."""
    filler = " ".join(f"The register lists item {n} of the site inventory." for n in range(40))
    long = ingest(f"# long.md\n\nBackup media and the encryption keys are listed. {filler}"
                  .encode(), "long.md", domain=domain, category=category)
    short = ingest(b"# short.md\n\nBackup media keep their encryption keys apart.", "short.md",
                   domain=domain, category=category)
    where, params = retrieval._filters(domain, category, None, "public")
    first = {}
    for normalization in (retrieval.RANK_NORMALIZATION, 32):
        monkeypatch.setattr(retrieval, "RANK_NORMALIZATION", normalization)
        found = retrieval._postgres_ranked("backup encryption", where, params, 10, stage="all")
        assert all(0 < rank < 1 for _, rank in found)
        first[normalization] = Chunk.objects.get(pk=found[0][0]).document_id
    assert first == {33: short.pk, 32: long.pk}
