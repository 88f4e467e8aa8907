"""Section-aware knowledge, on both databases: chunks know their heading path, headings weigh
more in the index, boilerplate is never indexed, and a hit is widened to its section."""

import pytest

from knowledge import retrieval, services
from knowledge.boilerplate import is_boilerplate
from knowledge.models import Chunk, Document

POLICY = """# Breach Handling Policy

> Sample content written for the Egret demo library. Not legal or regulatory text.

## Contents

Scope ........ 1
Notification ........ 2
Register ........ 3

## Scope

This policy applies to every business unit and to contractors.

## Notification

### Notifying the Regulator

Notify the regulator within 72 hours of becoming aware of the breach. The notification
should describe:

- the nature of the breach and the approximate number of people concerned;
- the name and contact details of the data protection officer;
- the likely consequences;
- the measures taken or proposed.

### Notifying Individuals

Tell the people affected without undue delay when the risk to them is high.

## Register

Record every breach in the register, including those not notified.
"""


def ingest(text: str, name: str, **kwargs) -> Document:
    document = services.document_create(data=text.encode(), filename=name, **kwargs)
    return services.document_ingest(document.pk)


@pytest.fixture
def policy(domain, category):
    return ingest(POLICY, "breach-policy.md", domain=domain, category=category,
                  title="Breach Handling Policy")


def test_chunks_carry_their_heading_path(policy):
    paths = list(policy.chunks.order_by("ordinal").values_list("heading_path", "section"))
    assert ("Breach Handling Policy › Notification › Notifying the Regulator",
            "Notifying the Regulator") in paths
    assert ("Breach Handling Policy › Register", "Register") in paths


def test_disclaimers_and_tables_of_contents_are_never_indexed(policy):
    texts = " ".join(policy.chunks.values_list("text", flat=True))
    assert "Sample content" not in texts and "........" not in texts
    assert not policy.chunks.filter(section="Contents").exists()


@pytest.mark.parametrize("text, section, expected", [
    ("Sample content written for the Egret demo library. Not legal or regulatory text.", "",
     True),
    ("Copyright © 2024 Example Ltd. All rights reserved.", "", True),
    ("Scope ........ 1\nTerms ........ 2\nRules ........ 4", "", True),
    ("Anything at all", "Table of Contents", True),
    ("Notify the regulator within 72 hours. This is not legal advice, but the deadline "
     "applies to every breach that is likely to result in a risk to individuals, whatever "
     "its size, and it runs from the moment the organisation becomes aware of it. Record "
     "every breach in the register and review the register each quarter with the data "
     "protection officer, including breaches that were not notified.", "", False),
    ("Retain batch records for five years.", "Retention", False),
])
def test_boilerplate_is_recognised_narrowly(text, section, expected):
    assert is_boilerplate(text, section) is expected


def test_the_heading_path_weighs_more_than_the_body(domain, category):
    ingest("# Incident Register\n\n## Entries\n\nEach entry records the date and the owner.",
           "register.md", domain=domain, category=category, title="Incident Register")
    ingest("# Access Reviews\n\n## Cadence\n\nReview access quarterly. An incident may be "
           "noted in the review record.", "access.md", domain=domain, category=category,
           title="Access Reviews")
    hits = retrieval.search("incident register", domain=domain, category=category)
    assert hits[0].document.title == "Incident Register"


def test_a_hit_is_widened_to_its_whole_section_within_the_budget(domain, category, settings):
    items = "\n".join(f"- control number {n} must be documented and tested;" for n in range(40))
    text = (f"# Controls\n\n## Required Controls\n\nThe programme must include:\n\n{items}\n\n"
            "## Unrelated\n\nCanteen opening hours are posted weekly.")
    document = ingest(text, "controls.md", domain=domain, category=category)
    section = document.chunks.filter(section="Required Controls").order_by("ordinal")
    assert section.count() >= 2  # the list was split across chunks
    hits = retrieval.search("what must the programme include", domain=domain,
                            category=category, limit=1)
    widened = retrieval.widen(hits, words=2000)[0]
    for n in range(40):
        assert f"control number {n} must" in widened.text
    assert widened.text.count("control number 39 must") == 1  # chunk overlaps removed
    narrow = retrieval.widen(hits, words=hits[0].chunk.token_count)[0]
    assert narrow.text == hits[0].chunk.text


def test_a_small_section_is_widened_with_its_neighbours_and_passages_do_not_repeat(policy):
    hits = retrieval.search("notify individuals affected high risk", domain=policy.domain,
                            category=policy.category, limit=5)
    widened = retrieval.widen(hits, words=200)
    texts = [p.text for p in widened]
    assert "### Notifying the Regulator" in texts[0] or "Notify the regulator" in texts[0]
    chunk_ids = [p.chunk.pk for p in widened]
    assert len(chunk_ids) == len(set(chunk_ids))
    # No sentence of the document is handed over twice.
    assert sum(text.count("Tell the people affected") for text in texts) == 1


def test_a_heading_without_text_is_kept_over_its_subsections(policy):
    hits = retrieval.search("applies to every business unit and contractors",
                            domain=policy.domain, category=policy.category, limit=1)
    assert hits[0].chunk.section == "Scope"
    text = retrieval.widen(hits, words=2000)[0].text
    assert ("### Notification\n\n#### Notifying the Regulator\n\nNotify the regulator"
            in text)
    assert "#### Notifying Individuals" in text and "### Register" in text
    assert text.count("### Notification\n") == 1


def test_passages_for_an_answer_come_from_the_document_most_hits_point_to(domain, category):
    ingest(POLICY, "breach-policy.md", domain=domain, category=category)
    ingest("# Vendor Contracts\n\n## Notices\n\nA notification of termination must be sent "
           "with 90 days notice to the vendor's regulator contact.", "vendors.md",
           domain=domain, category=category)
    passages = retrieval.passages_for(
        "how fast must the regulator get our breach notification and what goes in it",
        domain=domain, category=category, limit=3)
    assert passages[0].document.filename == "breach-policy.md"
    assert "the likely consequences" in passages[0].text


def test_the_words_the_best_hits_share_bring_in_the_section_in_the_documents_words(
        domain, category, settings):
    """Pseudo-relevance feedback: "who watches a recovery drill" shares no word with the
    section on observers, but the hits it finds call a drill an exercise, and searched again
    with that word the question reaches it. Off (EGRET_FEEDBACK_TERMS=0), it does not."""
    ingest("# Recovery Plans\n\n## Drill Schedule\n\nRun a recovery drill, a full exercise "
           "of the plan, every year.\n\n## Drill Reports\n\nAfter each drill, the exercise "
           "lead reports to the board.", "recovery-plans.md", domain=domain, category=category)
    ingest("# Exercises\n\n## Observers\n\nAppoint independent observers for every "
           "exercise; they note timings and decisions.", "exercises.md", domain=domain,
           category=category)
    question = "who watches a recovery drill"
    settings.EGRET_FEEDBACK_TERMS = 0
    found = retrieval.passages_for(question, domain=domain, category=category, limit=3)
    assert "independent observers" not in " ".join(p.text for p in found)
    settings.EGRET_FEEDBACK_TERMS = 6
    found = retrieval.passages_for(question, domain=domain, category=category, limit=3)
    assert "exercises.md" in [p.document.filename for p in found]
    assert "independent observers" in " ".join(p.text for p in found)
    assert found[0].document.filename == "recovery-plans.md"  # the question's own hits lead


def test_feedback_words_are_shared_by_the_best_hits_and_new_to_the_question(
        domain, category, monkeypatch, settings):
    """The words looked for again: content words of four letters or more that two of the
    three best hits hold and the question does not (by stem), the most shared first."""
    ingest("# Recovery Plans\n\n## Drill Schedule\n\nRun a recovery drill, a full exercise "
           "of the plan, every year.\n\n## Drill Reports\n\nAfter each drill, the exercise "
           "lead reports to the board.", "recovery-plans.md", domain=domain, category=category)
    pool = retrieval.search("who watches a recovery drill", domain=domain, category=category,
                            limit=20)
    searched: list = []

    def search(query, **kwargs):
        searched.append(query)
        return pool

    monkeypatch.setattr(retrieval, "search", search)
    settings.EGRET_FEEDBACK_TERMS = 6
    retrieval._feedback("who watches a recovery drill", pool, None, 20,
                        {"domain": domain, "category": category})
    extra = searched[0].removeprefix("who watches a recovery drill ").split()
    assert "exercise" in extra and "plans" in extra
    assert not {"drill", "drills", "recovery", "run", "the", "after"} & set(extra)


def _handed(monkeypatch, pool: list, question: str, **scope) -> list:
    """The passages passages_for() hands to widen(), in order, for a search giving `pool`
    (passed as it is: no question vector, no feedback search)."""
    monkeypatch.setattr(retrieval, "search", lambda *args, **kwargs: pool)
    monkeypatch.setattr(retrieval, "_feedback", lambda query, pool, *args: pool)
    monkeypatch.setattr(retrieval, "_question_vector", lambda query: None)
    handed: list = []
    monkeypatch.setattr(retrieval, "widen",
                        lambda passages, **kwargs: handed.extend(passages) or passages)
    retrieval.passages_for(question, **scope)
    return handed


def test_the_best_candidate_keeps_a_place_beside_documents_with_more_hits(
        domain, category, monkeypatch):
    best = ingest("# Lawful Bases\n\n## Contract\n\nProcessing for advertising is not "
                  "necessary for the contract.", "bases.md", domain=domain, category=category)
    rivals = [ingest(f"# Rival {n}\n\n## Part\n\nA contract clause {n}.", f"rival-{n}.md",
                     domain=domain, category=category) for n in range(2)]
    chunks = {c.document_id: c for c in Chunk.objects.all()}
    pool = [retrieval.Passage(chunk=chunks[d.pk], document=d, score=0.5, scope="public")
            for d in (best, *rivals, *rivals, *rivals)]  # the best once, each rival thrice
    handed = _handed(monkeypatch, pool, "is advertising needed for the contract", limit=2,
                     domain=domain, category=category)
    # The rivals' documents weigh more (three hits each), yet the best hit is within the
    # first two widened, in the last place.
    assert [p.document for p in handed[:2]] == [rivals[0], best]


def _hit(document, similarity) -> retrieval.Passage:
    """A pool entry for a one-chunk document at the given cosine."""
    return retrieval.Passage(chunk=Chunk.objects.get(document=document), document=document,
                             score=0.5, scope="public", similarity=similarity)


def test_the_nearest_candidate_in_meaning_keeps_a_place_too(domain, category, monkeypatch):
    best = ingest("# Monitoring\n\n## Visits\n\nMonitors review the sponsor's forms at each "
                  "visit.", "monitoring.md", domain=domain, category=category)
    nearest = ingest("# Investigators\n\n## Records\n\nEnter visit data within 5 working "
                     "days.", "investigators.md", domain=domain, category=category)
    rivals = [ingest(f"# Rival {n}\n\n## Part\n\nA sponsor form {n}.", f"rival-{n}.md",
                     domain=domain, category=category) for n in range(2)]

    pool = [_hit(best, 0.45), *[_hit(r, 0.40) for r in rivals * 3], _hit(nearest, 0.61)]
    handed = _handed(monkeypatch, pool, "how quickly must visit data reach the sponsor's forms",
                     limit=3, domain=domain, category=category)
    # The rivals weigh most; the best hit and the nearest in meaning take the last places.
    assert [p.document for p in handed[:3]] == [rivals[0], nearest, best]
    assert handed[3].document == rivals[0]  # the displaced come next, in their order


def test_the_best_candidate_by_words_alone_keeps_a_place_too(domain, category, monkeypatch):
    exercise = ingest("# Testing\n\n## After-Action Reporting\n\nProduce an after-action "
                      "report within 30 days of every exercise.", "testing.md", domain=domain,
                      category=category)
    rivals = [ingest(f"# Rival {n}\n\n## Part\n\nA failover plan {n}.", f"rival-{n}.md",
                     domain=domain, category=category) for n in range(3)]

    pool = [_hit(exercise, 0.20), *[_hit(r, 0.30 + n / 100) for n, r in enumerate(rivals * 2)]]
    # The model finds every rival nearer ("drill" is not "exercise"): words and meaning
    # together put the search's first hit last.
    monkeypatch.setattr(retrieval, "_by_meaning", lambda question, pool: [*pool[1:], pool[0]])
    handed = _handed(monkeypatch, pool, "when is the write-up of a failover drill due",
                     limit=3, domain=domain, category=category)
    # The best by words and meaning (a rival), the nearest in meaning (another) and the best
    # by words alone all keep a place among the three.
    assert {p.document for p in handed[:3]} == {rivals[0], rivals[2], exercise}


def test_an_existing_chunk_gets_a_path_from_its_title_and_section(policy):
    from knowledge.services import heading_path

    assert heading_path("Policy", ("Policy", "Scope")) == "Policy › Scope"
    assert heading_path("Policy", ("Scope",)) == "Policy › Scope"
    assert heading_path("Policy", ()) == "Policy"
    assert Chunk.objects.filter(heading_path="").count() == 0


def test_a_passage_grown_backwards_shows_each_section_under_its_own_heading(domain, category):
    document = ingest("# Payroll\n\n## Retention\n\nKeep payslips for six years.\n\n"
                      "## Deletion\n\nDelete payroll records after the retention period ends."
                      "\n\n## Access\n\nOnly payroll staff may open the records.",
                      "payroll.md", domain=domain, category=category, title="Payroll")
    hit = document.chunks.get(section="Deletion")
    passage = retrieval.Passage(chunk=hit, document=document, score=1.0, scope="public")
    text = retrieval.widen([passage], words=500)[0].text
    assert text.index("### Retention") < text.index("Keep payslips")
    assert text.index("### Deletion") < text.index("Delete payroll records")
    assert text.index("### Access") < text.index("Only payroll staff")


def test_a_hit_inside_a_better_ones_text_gives_its_place_to_the_next(domain, category):
    ingest(POLICY, "breach-policy.md", domain=domain, category=category)
    ingest("# Vendors\n\n## Notices\n\nSend notices to the vendor's regulator contact.",
           "vendors.md", domain=domain, category=category)
    hits = retrieval.search("regulator notification breach notices", domain=domain,
                            category=category, limit=10)
    widened = retrieval.widen(hits, words=2000, limit=2)
    assert len(widened) == 2
    assert {p.document.filename for p in widened} == {"breach-policy.md", "vendors.md"}
