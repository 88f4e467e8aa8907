"""The built-in extractive provider and follow-up suggestions: offline, deterministic, and
every citation marker points at a source it was given. No database needed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.providers.base import (
    Finish,
    Generation,
    GenerationRequest,
    SourceText,
    TextDelta,
    Turn,
)
from assistant.providers.extractive import ExtractiveProvider, approximate_tokens, quoted
from assistant.suggestions import question_subject, suggest
from knowledge import chunking, parsing
from knowledge.text import stem
from tests.knowledge.files import make_docx, make_html

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "knowledge" / "fixtures" / "library"
MARKER = re.compile(r"\[(\d+)\]")
QUESTION = "How soon must an after-action report be produced after an exercise?"


def _chunks(path: str) -> list[tuple[str, chunking.ChunkDraft]]:
    parsed = parsing.parse((LIBRARY / path).read_bytes(), Path(path).name)
    drafts = chunking.chunk_blocks(parsed.blocks, target_words=120, max_words=200,
                                   min_words=80, overlap_words=20)
    return [(parsed.title or path, draft) for draft in drafts]


def _sources(sections: list[tuple[str, str]], numbers: list[int] | None = None) -> list[SourceText]:
    """Library chunks by (document, section), numbered like retrieval would (or as given)."""
    picked = []
    for path, section in sections:
        picked += [(title, c) for title, c in _chunks(path) if c.section == section][:1]
    numbers = numbers or list(range(1, len(picked) + 1))
    return [SourceText(number=n, title=title, text=c.text, section=c.section, page=None)
            for n, (title, c) in zip(numbers, picked)]


TESTING = "business-continuity/us/testing-and-exercises.md"
BIA = "business-continuity/us/business-impact-analysis.md"
SOURCES = _sources([
    (TESTING, "After-Action Reporting"),
    (TESTING, "Annual Test Plan"),
    (TESTING, "Conducting the Exercise"),
    (BIA, "Maintenance"),
])


def _request(question: str = QUESTION, mode: str = "compliance", sources=None, **kwargs):
    return GenerationRequest(question=question, mode=mode,
                             sources=SOURCES if sources is None else sources, **kwargs)


def _generate(*args, **kwargs) -> Generation:
    return ExtractiveProvider().generate(_request(*args, **kwargs))


def test_sources_fixture_found_the_library_sections():
    assert [s.section for s in SOURCES] == ["After-Action Reporting", "Annual Test Plan",
                                           "Conducting the Exercise", "Maintenance"]


@pytest.mark.parametrize("mode", ["compliance", "advisory"])
def test_same_request_gives_the_same_answer(mode):
    first = _generate(mode=mode)
    second = ExtractiveProvider().generate(_request(mode=mode))
    assert first == second


def test_answer_does_not_depend_on_the_hash_seed():
    """str hashes are salted per process; nothing in the answer may depend on them."""
    script = (
        "import json, sys\n"
        "from assistant.providers.base import GenerationRequest, SourceText\n"
        "from assistant.providers.extractive import ExtractiveProvider\n"
        "data = json.loads(sys.stdin.read())\n"
        "sources = [SourceText(**s) for s in data['sources']]\n"
        "g = ExtractiveProvider().generate(GenerationRequest(data['q'], 'advisory', sources))\n"
        "print(json.dumps([g.text, g.suggestions]))\n"
    )
    payload = json.dumps({"q": QUESTION, "sources": [s.__dict__ for s in SOURCES]})
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run([sys.executable, "-c", script], input=payload, cwd=ROOT, env=env,
                             capture_output=True, text=True, check=True)
        outputs.add(run.stdout)
    assert len(outputs) == 1


@pytest.mark.parametrize("mode", ["compliance", "advisory"])
def test_every_marker_is_one_of_the_given_source_numbers(mode):
    sources = _sources([(TESTING, "After-Action Reporting"), (BIA, "Maintenance"),
                        (TESTING, "Record Keeping")], numbers=[4, 7, 9])
    text = _generate(mode=mode, sources=sources).text
    cited = {int(n) for n in MARKER.findall(text)}
    assert cited and cited <= {4, 7, 9}


@pytest.mark.parametrize("mode", ["compliance", "advisory"])
def test_quoted_gives_the_answer_with_the_units_it_quotes(mode):
    """bench/answer_frontier.py counts the key facts of the units quoted() returns: they are
    the answer's own sentences, each in its text, and none of the rest is."""
    request = _request(mode=mode)
    text, units, chosen = quoted(request)
    assert text == ExtractiveProvider().generate(_request(mode=mode)).text
    assert chosen and set(chosen) <= set(units)
    answer = text.split("**What to do**")[0]
    for unit in chosen:
        assert unit.text.rstrip(".:;") in answer
    assert "Produce an after-action report within 30 days of every exercise." in [
        unit.text for unit in chosen]
    left_out = [u for u in units if u not in chosen and u.text.rstrip(".:;") not in text]
    assert left_out  # the sources hold more than the answer quotes


def test_quoted_without_sources_quotes_nothing():
    text, units, chosen = quoted(_request(sources=[]))
    assert (units, chosen) == ([], []) and text


def test_bracketed_numbers_in_a_source_never_become_markers():
    source = SourceText(1, "Footnoted guide", "Produce the report within 30 days [12]. See [3].")
    text = _generate(sources=[source]).text
    assert set(MARKER.findall(text)) == {"1"}
    assert "within 30 days" in text


def test_sentences_are_grouped_under_one_heading_per_source():
    text = _generate("How often must tests and reviews happen, and how are exercise findings "
                     "tracked?").text
    blocks = [b for b in text.split("\n\n") if b.startswith("**")]
    headings = [b.splitlines()[0] for b in blocks]
    assert len(headings) == len(set(headings)) >= 3
    assert "**Testing and Exercises — After-Action Reporting**" in headings
    for block in blocks:
        # Every sentence under a heading cites that heading's source, and only it.
        assert len(set(MARKER.findall(block))) == 1


def test_the_answering_sentence_is_quoted_with_its_marker():
    text = _generate().text
    assert "Produce an after-action report within 30 days of every exercise [1]." in text


def test_lead_names_the_quoted_document_not_a_paraphrase_of_the_question():
    lead = _generate().text.split("\n\n")[0]
    assert lead == ("Here is what the Testing and Exercises guidance says on this, quoted "
                    "from 1 source.")
    assert not MARKER.search(lead)
    two_documents = _generate("How often must tests be run and the BIA be refreshed?").text
    assert two_documents.split("\n\n")[0].startswith("Here is what the cited guidance says")
    assert "in 2 documents" in two_documents.split("\n\n")[0]


def test_markdown_noise_is_never_quoted():
    raw = (LIBRARY / TESTING).read_text(encoding="utf-8")
    source = SourceText(1, "Testing and Exercises", raw + "\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    text = _generate(sources=[source]).text
    assert "Sample content" not in text and "regulatory text" not in text
    assert "\n#" not in text and "|---" not in text


def test_list_items_are_quoted_whole_under_their_introduction():
    text = _generate("What should the after-action report include?").text
    raw = (LIBRARY / TESTING).read_text(encoding="utf-8")
    section = raw.split("## After-Action Reporting")[1].split("\n## ")[0]
    items = [re.sub(r"^\d+\.\s+", "", line).rstrip(" .;") for line in section.splitlines()
             if re.match(r"\d+\.\s", line)]
    assert len(items) >= 4
    assert "- The report should include:\n" in text
    for item in items:
        assert f"  - {item}" in text  # every item, not the first few
    assert text.count("[1]") >= 1


def test_a_bare_list_introduction_keeps_the_sentence_before_it():
    source = SourceText(1, "Cleaning Validation", "Group products and select a worst case. "
                        "Consider:\n\n- solubility of the residue;\n- potency of the active;"
                        "\n- difficulty of cleaning.", "Worst-Case Selection")
    text = _generate("How do we choose the worst case?", sources=[source]).text
    assert ("- Group products and select a worst case. Consider:\n  - solubility of the "
            "residue;\n  - potency of the active;\n  - difficulty of cleaning [1].") in text


@pytest.mark.parametrize("paragraph", [
    # The paragraph's last sentence introduces the list right after it, whatever it ends with;
    "Pick a severity using the criteria below.",
    # and the sentence pointing at the list brings the sentences after it along.
    "Pick a severity using the criteria below. If an incident sits between two levels, "
    "choose the higher one.",
])
def test_a_list_after_a_paragraph_comes_whole_with_the_sentence_pointing_at_it(paragraph):
    items = ["SEV1: a complete outage of a customer platform;",
             "SEV2: severe degradation with no workaround;",
             "SEV3: degraded service with a workaround."]
    text = "Read this first. " + paragraph + "\n\n- " + "\n- ".join(items)
    source = SourceText(1, "Escalation Policy", text + "\n\nRaise the severity when in doubt.",
                        "Severity")
    answer = _generate("Which incidents count as SEV2?", sources=[source]).text
    quoted = "\n  - ".join([f"- {paragraph}", *items[:-1], f"{items[-1].rstrip('.')} [1]."])
    assert quoted in answer


@pytest.mark.parametrize("name", ["notice.html", "notice.docx", "notice.md"])
def test_a_list_in_an_uploaded_document_comes_whole_with_its_introduction(name):
    """HTML and Word lists reach the answer as lists, like Markdown's: the introduction
    brings every item, and a nested list stays inside the item it belongs to."""
    intro, items = "The notification to the authority should describe:", [
        "the nature of the breach, including the categories of data concerned;",
        "the contact point: the data protection officer; the privacy desk;",
        "the likely consequences of the breach;",
        "the measures taken or proposed to address it."]
    if name.endswith(".html"):
        data = make_html("<h2>Notification</h2><p>Notify within 72 hours. " + intro + "</p><ul>"
                         + "".join(f"<li>{i}</li>" for i in items).replace(
                             "contact point: the data protection officer; the privacy desk;",
                             "contact point:<ul><li>the data protection officer;</li>"
                             "<li>the privacy desk;</li></ul>") + "</ul>")
    elif name.endswith(".docx"):
        data = make_docx([("Heading 2", "Notification"), (None, "Notify within 72 hours. " + intro),
                          ("List Bullet", items[0]), ("List Bullet", "the contact point:"),
                          ("List Bullet 2", "the data protection officer;"),
                          ("List Bullet 2", "the privacy desk;"),
                          *(("List Bullet", item) for item in items[2:])])
    else:
        data = ("## Notification\n\nNotify within 72 hours. " + intro + "\n\n- " + items[0]
                + "\n- the contact point:\n  - the data protection officer;\n  - the privacy "
                "desk;\n- " + "\n- ".join(items[2:]) + "\n").encode()
    parsed = parsing.parse(data, name)
    drafts = chunking.chunk_blocks(parsed.blocks, target_words=120, max_words=200,
                                   min_words=80, overlap_words=20)
    sources = [SourceText(1, "Breach Notification", drafts[0].text, drafts[0].section)]
    text = _generate("What must the notification to the authority contain?", sources=sources).text
    quoted = "\n".join([f"- {intro}", *(f"  - {item}" for item in items[:-1]),
                        f"  - {items[-1].rstrip('.')} [1]."])
    assert quoted in text


def test_lettered_items_of_a_plain_text_procedure_are_quoted_whole():
    """"(a)", "(b)" lines of a plain-text procedure are list items: an item of two sentences
    is quoted whole ("... an inspection query is open. In these cases ... a legal hold"),
    not as its first sentence of a long paragraph."""
    text = ("5.7 Destruction Approval\n\n"
            "(a) On the first working day of each month, the custodian produces a list of the "
            "samples that have passed their destruction due date.\n"
            "(b) For each sample on the list, the custodian completes a destruction request.\n"
            "(c) The request must be approved first by the QC Manager and then by the Head of "
            "Quality Assurance.\n"
            "(d) No sample may be destroyed while a complaint, a recall, a deviation "
            "investigation or a regulatory inspection query on its batch remains open. In these "
            "cases the Head of Quality Assurance places a legal hold on the sample.\n"
            "(e) Samples under legal hold are reassessed each month until the hold is lifted.\n")
    parsed = parsing.parse(text.encode(), "sop.txt")
    drafts = chunking.chunk_blocks(parsed.blocks)
    sources = [SourceText(1, "Sample Retention SOP", drafts[0].text, drafts[0].section)]
    answer = _generate("Can we destroy a sample while a regulatory inspection query on its batch "
                       "is still open?", sources=sources).text
    assert ("- No sample may be destroyed while a complaint, a recall, a deviation investigation "
            "or a regulatory inspection query on its batch remains open. In these cases the Head "
            "of Quality Assurance places a legal hold on the sample [1].") in answer


def test_subsections_of_a_heading_without_text_are_quoted_together():
    text = ("Staff are told how monitoring works.\n\n### 5. What We Monitor\n\n"
            "#### 5.1 Email\n\nOur systems record email metadata such as the sender.\n\n"
            "#### 5.2 Building Access\n\nBadge records show when a building was entered.\n\n"
            "#### 5.3 CCTV\n\nCCTV cameras cover the entrances and the car park.\n\n"
            "### 6. Legal Basis\n\nWe rely on legitimate interests for all monitoring.")
    source = SourceText(1, "Monitoring Notice", text, "1. Purpose")
    answer = _generate("What does the company record about staff when it monitors them?",
                       sources=[source]).text
    for fact in ("email metadata", "Badge records", "CCTV cameras"):
        assert fact in answer
    assert "**5.2 Building Access**" in answer and "5. What We Monitor" not in answer


def test_a_list_question_leads_with_its_best_list_whole():
    raw = (LIBRARY / "privacy/us/security-program.md").read_text(encoding="utf-8")
    sections = {part.split("\n", 1)[0]: part.split("\n", 1)[1] for part in raw.split("\n## ")[1:]}
    text = "\n\n".join([sections["Why a Written Program"],
                        *(f"### {name}\n\n{sections[name]}" for name in
                          ("Program Ownership", "Risk Assessment", "Core Safeguards"))])
    source = SourceText(1, "Information Security Program", text, "Why a Written Program",
                        relevance=(("", 0.59), ("Program Ownership", 0.53),
                                   ("Risk Assessment", 0.54), ("Core Safeguards", 0.55)))
    answer = _generate("What are the must-have controls in a written information security "
                       "program?", sources=[source]).text
    for item in ("Asset and data inventory", "Access control", "Multi-factor authentication",
                 "Encryption", "Vulnerability management", "Data retention and disposal"):
        assert f"  - {item}:" in answer


def test_each_part_of_a_several_part_question_is_answered():
    from assistant.providers.extractive import question_parts

    question = ("How soon must the after-action report be produced, and how often must "
                "Tier 3 functions be tested?")
    assert question_parts(question) == ["How soon must the after-action report be produced",
                                        "how often must Tier 3 functions be tested"]
    assert question_parts("What must the report include?") == ["What must the report include?"]
    assert question_parts("Who signs the report, and by when is it due, and for how long is it "
                          "kept?") == ["Who signs the report", "by when is it due",
                                       "for how long is it kept"]
    # A condition opens the question after it; a scene-setting first clause keeps its place.
    assert question_parts("What must happen before the paper originals are shredded, and if "
                          "our CRO keeps the file, who is on the hook for it?") == [
        "What must happen before the paper originals are shredded",
        "if our CRO keeps the file, who is on the hook for it"]
    assert question_parts("After an outage, how fast must we report it, and once it is over, "
                          "what must the review cover?") == [
        "After an outage", "how fast must we report it",
        "once it is over, what must the review cover"]
    text = _generate(question).text
    assert "within 30 days" in text
    assert "a plan walkthrough at least every two years" in text


def test_a_part_is_answered_by_a_sentence_close_to_it_in_meaning_alone(monkeypatch):
    """"How long must the paperwork be archived?" shares no word with "Retain protocols ...
    records for the life of the equipment plus at least five years", which sits in a section
    of its own: the part's own closeness in meaning to each sentence finds it."""
    import numpy as np

    from assistant.providers import extractive
    from knowledge import embeddings

    raw = (LIBRARY / "biotech/gmp/cleaning-validation.md").read_text(encoding="utf-8")
    sections = {part.split("\n", 1)[0]: part.split("\n", 1)[1] for part in raw.split("\n## ")[1:]}
    text = "\n\n".join(f"### {name}\n\n{sections[name]}" for name in (
        "Executing the Validation", "Maintaining the Validated State", "Documentation"))
    source = SourceText(1, "Cleaning Validation", text, "")
    question = ("How many consecutive runs are needed to validate cleaning, and how long must the "
                "validation paperwork be archived?")
    retention = "for the life of the equipment plus at least five years"

    def embed(texts):  # keeping records and archiving paperwork are one meaning; all else another
        rows = [[1.0, 0.1] if re.search(r"archived|\bRetain\b", t) else [0.05, 1.0]
                for t in texts]
        return np.array([np.array(r) / np.linalg.norm(r) for r in rows], dtype=np.float32)

    monkeypatch.setattr(embeddings, "enabled", lambda: True)
    monkeypatch.setattr(embeddings, "embed_texts", embed)
    assert extractive.question_parts(question)[1] == (
        "how long must the validation paperwork be archived")
    answer = _generate(question, sources=[source]).text
    assert retention in answer
    assert "at least three consecutive occasions" in answer  # the other part still answered

    monkeypatch.setattr(embeddings, "enabled", lambda: False)
    assert retention not in _generate(question, sources=[source]).text  # words alone miss it


def test_a_part_that_sets_a_scene_is_also_compared_by_what_it_asks(monkeypatch):
    """"Our assessment ... flagged that the local authorities could get at it. What extra
    protections can we add": the scene's words pull the whole part's meaning toward the
    assessment's factors (laws of the destination country, the importer's experience); its
    asking sentence alone is nearest the protections, and the nearer of the two counts."""
    import numpy as np

    from assistant.providers import extractive
    from assistant.providers.extractive import parts, selection
    from knowledge import embeddings

    raw = (LIBRARY / "privacy/eu/international-transfers.md").read_text(encoding="utf-8")
    source = SourceText(1, "International Data Transfers", raw.split("\n", 1)[1], "")
    question = ("Our assessment of sending data to an overseas vendor flagged that the local "
                "authorities could get at it. What extra protections can we add, and what if "
                "nothing is enough?")

    def embed(texts):  # the scene's meaning, the protections' meaning, and a little of neither
        rows = [[1.0 if re.search(r"authorit|overseas|laws|destination|importer|countr", t,
                                  re.I) else 0.0,
                 1.0 if re.search(r"protection|encryption|measures", t, re.I) else 0.0, 0.2]
                for t in texts]
        return np.array([np.array(r) / np.linalg.norm(r) for r in rows], dtype=np.float32)

    monkeypatch.setattr(embeddings, "enabled", lambda: True)
    monkeypatch.setattr(embeddings, "embed_texts", embed)
    monkeypatch.setattr(selection, "PARAGRAPH_WORDS", 0)  # its paragraph would bring it too
    assert parts.asking_sentences(extractive.question_parts(question)[0]) == (
        "What extra protections can we add")
    assert parts.asking_sentences("What extra protections can we add") is None
    measure = "strong encryption in transit and at rest"
    assert measure in _generate(question, sources=[source]).text

    monkeypatch.setattr(parts, "asking_sentences", lambda part: None)
    assert measure not in _generate(question, sources=[source]).text  # the scene's pull


def test_an_answer_over_the_length_cap_drops_what_it_chose_last(monkeypatch):
    """No answer runs over MAX_ANSWER_CHARS (3,000): the last section added goes, whole, until
    the answer fits; what remains is cited as before and its lead counts what remains. The
    first section is never cut, even when it alone is over the cap."""
    from assistant.providers import extractive

    question = ("What does an after-action report cover and by when is it due, and what goes "
                "into the annual test plan, and how is the plan maintained?")
    full = _generate(question).text
    assert len(full) > 900
    monkeypatch.setattr(extractive, "MAX_ANSWER_CHARS", len(full) - 1)
    shorter = _generate(question).text
    assert len(shorter) < len(full)
    assert shorter.split("\n\n")[1] == full.split("\n\n")[1]  # the first section stays
    monkeypatch.setattr(extractive, "MAX_ANSWER_CHARS", 900)
    capped = _generate(question).text
    assert len(capped) <= 900
    numbers = {int(n) for n in MARKER.findall(capped)}
    assert numbers and numbers <= set(range(1, len(SOURCES) + 1))
    for block in capped.split("\n\n")[1:]:  # no list introduction left without its items
        lines = block.splitlines()
        assert not lines[-1].rstrip().endswith(":"), block
    sources = len({n for n in numbers})
    assert f"quoted from {sources} source" in capped.split("\n\n")[0]
    monkeypatch.setattr(extractive, "MAX_ANSWER_CHARS", 50)  # one section left: kept whole
    assert _generate(question).text.split("\n\n") == capped.split("\n\n")[:2]


def test_every_part_of_a_three_part_question_gets_its_whole_list():
    """Three lists of ~90 words answer three parts: the budget of a one-part question would
    leave the last one out."""
    def section(heading: str, intro: str, items: list[str]) -> str:
        return f"## {heading}\n\n{intro}\n\n" + "\n".join(f"- {item};" for item in items)

    text = "\n\n".join([
        section("Backup Testing", "Restore backups every quarter and check each of the following:",
                [f"the {w} systems restore completely from the isolated copy within the agreed "
                 "time" for w in ("payment", "ledger", "customer", "treasury", "reporting",
                                  "identity")]),
        section("Supplier Reviews", "Reassess critical suppliers every year against the "
                "following points:",
                [f"the {w} arrangements named in the contract still match the service received"
                 for w in ("exit", "recovery", "staffing", "security", "location", "insurance")]),
        section("Plan Approval", "The board approves the continuity plan once the following are "
                "complete:",
                [f"the {w} owner has signed the section of the plan that covers their area"
                 for w in ("operations", "technology", "finance", "legal", "facilities",
                           "people")]),
    ])
    answer = _generate("What is checked when backups are restored, what are suppliers reassessed "
                       "against, and what must be complete before the board approves the plan?",
                       sources=[SourceText(1, "Continuity Programme", text)]).text
    for item in ("the identity systems restore", "the insurance arrangements",
                 "the people owner has signed"):
        assert item in answer
    assert len(answer) < 3000


def test_a_section_of_about_a_hundred_words_is_quoted_whole(monkeypatch):
    """Its other sentences finish the rule the matching one starts (who records the findings,
    when they are escalated), in words the question does not use."""
    from assistant.providers.extractive import selection

    review = ("Review the access logs every month for unusual activity. The security team "
              "records each finding in the tracker, assigns an owner and a target date, and "
              "reports open findings to the risk committee at its next meeting. Findings that "
              "suggest a compromise are escalated at once to the incident manager, who decides "
              "whether the incident response plan is invoked and who should be told. Where a "
              "finding repeats, the team looks for the underlying cause and proposes a change "
              "to the control so that the same gap does not appear again.")
    assert 90 < len(review.split()) <= selection.WHOLE_SECTION_WORDS
    source = SourceText(1, "Logging Standard", "## Access Logs\n\nHow long access logs are "
                        "kept and how often access logs are reviewed is set out below.\n\n"
                        "## Retention\n\nKeep the access logs for two years.\n\n"
                        f"## Review\n\n{review}")
    question = "How long are access logs kept, and how often are the access logs reviewed?"
    answer = _generate(question, sources=[source]).text
    assert "two years" in answer and "escalated at once to the incident manager" in answer

    monkeypatch.setattr(selection, "WHOLE_SECTION_WORDS", 90)
    assert "escalated at once" not in _generate(question, sources=[source]).text


def test_a_short_paragraph_is_quoted_whole(monkeypatch):
    """Its sentences make one point: the one that matched the question's words ("classified
    as important") is followed by the one that answers it in other words (the examples)."""
    from assistant.providers.extractive import selection

    section = (
        "Deviations classified as important are reported to the sponsor within 5 working days. "
        "Deviations classified as minor are reported in the deviation log at the next visit."
        "\n\nWrite down how deviations are classified as important before enrolment starts. "
        "Typical examples include enrolling an ineligible participant, failing to obtain valid "
        "consent and dosing errors.\n\nThe monitor checks that deviations classified as "
        "important are in the clinical study report. Sites reclassify a minor deviation as "
        "important when it recurs at the same site. The sponsor reviews important deviations "
        "across sites every month and compares the sites with each other. A rate of important "
        "deviations above three per ten participants triggers a targeted review of the site. "
        "Important deviations affecting safety are escalated to the medical monitor on the day "
        "they are found. Deviations classified as important are discussed at the data review "
        "meeting before the database is locked, and the decision on excluding data is recorded "
        "in the statistical analysis plan. The principal investigator signs the deviation log "
        "every month after reviewing it with the monitor. Training records show that every "
        "member of the site team has read the deviation procedure. Copies of the signed log "
        "are filed in the investigator site file and in the trial master file.")
    assert len(section.split()) > selection.LEAD_SECTION_WORDS  # not quoted whole
    source = SourceText(1, "Protocol Deviations", f"## Deviations\n\n{section}")
    question = "Which deviations are classified as important?"
    answer = _generate(question, sources=[source]).text
    assert ("- Write down how deviations are classified as important before enrolment starts "
            "[1].\n- Typical examples include enrolling an ineligible participant") in answer

    monkeypatch.setattr(selection, "PARAGRAPH_WORDS", 0)
    assert "Typical examples" not in _generate(question, sources=[source]).text


def test_a_list_introduction_without_quotable_items_is_quoted_itself():
    """Items too short to quote ("- Name") leave the introduction a list of its own; it is
    quoted itself, not swapped for the other sentences of its paragraph."""
    from assistant.providers.extractive import selection
    from assistant.providers.extractive.units import _source_units

    text = ("Keep the consent form on file. Staff scan it the same day. The consent form "
            "records the following fields:\n\n- Name\n- Address\n- Signature\n\n"
            "Archive the paper original after the study closes, in the locked store. The "
            "archive is checked once a year by the quality team, who compare the index with "
            "the boxes on the shelves and record any gap in the archive log. A missing form "
            "is reported to the sponsor within five working days of the check, together with "
            "the steps taken to find it and the participants whose records it held. Forms "
            "found later are filed again, and the log records where they had been and who "
            "found them, so that the next check can confirm the index is complete.")
    assert len(text.split()) > selection.WHOLE_SECTION_WORDS  # no short section to quote
    units = _source_units(0, SourceText(1, "Informed Consent", text))
    intro = next(u for u in units if u.opens_list)
    assert [u.text for u in selection._whole_list(intro, units)] == [intro.text]
    assert selection._quoted_with(intro, units, None) == [([intro], False)]

def test_a_short_section_over_the_budget_still_brings_its_list(monkeypatch):
    """The section around a chosen list item is quoted whole when the budget has room for it;
    when it has not, the list it belongs to is, rather than nothing: the deadlines the
    question asks for come without the section's closing sentences."""
    from assistant.providers.extractive import selection

    principles = (
        "Keep every message to staff, customers and regulators short and plain. Lead with "
        "what staff, customers and regulators need to do next. Be honest with staff, "
        "customers and regulators about what is not yet known. Use the same facts for staff, "
        "customers and regulators in every channel so that nobody receives conflicting "
        "accounts. Never release personal information about affected individuals to staff, "
        "customers or regulators, and correct any error as soon as it is found. Staff, "
        "customers and regulators should hear about a change of plan from us before they "
        "read about it elsewhere. Messages to staff, customers and regulators name the person "
        "to contact and the channel where the next message will appear, so that nobody has "
        "to guess where to look.")
    timing = (
        "Adopt clear timing standards:\n\n"
        "- issue a holding statement to staff within 1 hour of declaration;\n"
        "- publish a customer update within 2 hours;\n"
        "- notify the regulator within 4 hours;\n"
        "- provide updates at least every 4 hours while the incident is active.\n\n"
        "A holding statement acknowledges the incident, describes the immediate impact and "
        "says when the next update will follow. It never speculates about the cause, and it "
        "is approved by the communications lead before release.")
    assert len(timing.split()) <= selection.WHOLE_SECTION_WORDS
    source = SourceText(1, "Crisis Communications",
                        f"## Message Principles\n\n{principles}\n\n## Timing\n\n{timing}")
    question = "How quickly must we update staff, customers and regulators?"
    answer = _generate(question, sources=[source]).text
    for deadline in ("within 1 hour", "within 2 hours", "within 4 hours", "every 4 hours"):
        assert deadline in answer
    assert "Keep every message" in answer and "never speculates" not in answer

    whole_only = selection._quoted_with
    monkeypatch.setattr(selection, "_quoted_with", lambda *args: whole_only(*args)[:1])
    assert "within 1 hour" not in _generate(question, sources=[source]).text


def test_one_sentence_far_above_the_rest_does_not_shut_them_out(monkeypatch):
    """The score floor is relative to the best sentence, but to no more than twice the second
    best: a sentence holding most of the question's words would otherwise leave the ones
    that answer the rest of it (scored a third of its score) out of the answer."""
    from assistant.providers.extractive import selection
    from assistant.providers.extractive.units import _source_units

    text = ("## Investigation\n\nInvestigate critical and major deviations with a structured "
            "root cause method.\n\n## Grading\n\nGrade a deviation as critical when it can "
            "reach a patient unnoticed. Grade it as major when it can affect quality but will "
            "be caught before release. Grade it as minor when only a record is incomplete. The "
            "quality unit confirms every grade within five working days of the report, and the "
            "grade sets the depth of the investigation that follows it.\n\n## Canteen\n\n"
            "The canteen opens at noon.")
    units = _source_units(0, SourceText(1, "Deviations", text))
    rank = {"Investigate critical": 10.0, "Grade a deviation": 3.0, "Grade it as major": 2.9,
            "Grade it as minor": 2.8, "The canteen": 0.5}
    scores = {u: next((v for k, v in rank.items() if u.text.startswith(k)), 0.0) for u in units}
    budget = selection._BUDGETS["compliance"]
    chosen = " ".join(u.text for u in selection._select(units, scores, budget))
    assert "Grade it as minor when only a record is incomplete." in chosen
    assert "canteen" not in chosen

    monkeypatch.setattr(selection, "TOP_SPREAD", float("inf"))  # the floor of the best alone
    chosen = [u.text for u in selection._select(units, scores, budget)]
    assert chosen == ["Investigate critical and major deviations with a structured root cause "
                      "method."]


def test_the_answer_leads_with_the_document_that_answers_without_filler_from_another():
    register = SourceText(1, "Records Guide", "## Breach Register\n\nKeep a register of every "
                          "personal data breach, including those not notified, for five years.")
    notification = SourceText(2, "Breach Notification", "## Notifying the Authority\n\nNotify "
                              "the supervisory authority of a personal data breach within 72 "
                              "hours of becoming aware of it. Where the notification is late, "
                              "give the reasons for the delay.")
    answer = _generate("How quickly must the supervisory authority be notified of a personal "
                       "data breach?", sources=[register, notification]).text
    assert answer.split("\n\n")[0] == ("Here is what the Breach Notification guidance says on "
                                        "this, quoted from 1 source.")
    assert answer.split("\n\n")[1].startswith("**Breach Notification — Notifying the Authority**")
    assert "within 72 hours" in answer and "register" not in answer


def test_the_document_nearest_in_meaning_leads_when_the_words_point_elsewhere(monkeypatch):
    """Words favour the rights guidance (marketing, use, customer against business, interest);
    the lawful-bases guidance is far nearer the question in meaning: it leads, and the other
    document's sentences count for less."""
    import numpy as np

    from assistant.providers import extractive
    from knowledge import embeddings

    rights = SourceText(1, "Subject Rights", "## Objections\n\nStop the marketing use at once "
                        "when a customer objects.")
    bases = SourceText(2, "Lawful Bases", "## Legitimate Interests\n\nDocument a balancing "
                       "test before relying on legitimate business interests. Review the "
                       "assessment at least every two years.")
    question = ("Marketing wants to use customer data in our business interest instead of "
                "asking for consent: what do we write down?")

    def embed(texts):  # the lawful-bases sentences and the question share one meaning
        rows = [[1.0, 0.1] if re.search(r"balancing|Review the assessment|business interest", t)
                else [0.05, 1.0] for t in texts]
        return np.array([np.array(r) / np.linalg.norm(r) for r in rows], dtype=np.float32)

    monkeypatch.setattr(embeddings, "enabled", lambda: True)
    monkeypatch.setattr(embeddings, "embed_texts", embed)
    answer = _generate(question, sources=[rights, bases]).text
    assert answer.split("\n\n")[1].startswith("**Lawful Bases — Legitimate Interests**")
    assert "balancing test" in answer and "every two years" in answer

    monkeypatch.setattr(extractive, "FAVOUR_MARGIN", float("inf"))  # words alone
    assert _generate(question, sources=[rights, bases]).text.split("\n\n")[1].startswith(
        "**Subject Rights")


def test_another_document_still_answers_what_the_lead_one_does_not():
    text = _generate("How often must the BIA be refreshed, and how soon after an exercise is "
                     "the report due?", sources=_sources([(TESTING, "Conducting the Exercise"),
                                                        (BIA, "Maintenance"),
                                                        (TESTING, "After-Action Reporting")])).text
    assert "within 30 days of every exercise" in text
    assert "refresh it within 90 days" in text


def test_advisory_ends_with_a_what_to_do_list_with_markers():
    text = _generate("How should we run exercises so that findings actually get fixed?",
                     mode="advisory").text
    head, steps = text.split("**What to do**\n")
    items = steps.splitlines()
    assert 1 <= len(items) <= 5
    assert all(item.startswith("- ") and MARKER.search(item) for item in items)


def test_compliance_has_no_what_to_do_list_and_cites_at_least_as_much():
    compliance = _generate(mode="compliance").text
    advisory = _generate(mode="advisory").text
    assert "What to do" not in compliance
    quoted_advisory = advisory.split("**What to do**")[0]
    assert len(MARKER.findall(compliance)) >= len(MARKER.findall(quoted_advisory))


def test_short_follow_up_borrows_the_previous_question():
    follow_up = "And by when?"
    history = [Turn("user", "What must an after-action report include?"),
               Turn("assistant", "The report should include ... [1].")]
    alone = _generate(follow_up).text
    with_history = _generate(follow_up, history=history).text
    assert alone.startswith("None of the retrieved passages")
    assert "within 30 days" in with_history
    assert "after-action report" not in with_history.split("\n\n")[0]  # no earlier intro


def test_without_any_overlap_it_quotes_the_opening_of_the_top_source():
    text = _generate("Quantum cryptography?").text
    assert text.startswith("None of the retrieved passages answers this directly")
    assert set(MARKER.findall(text)) == {"1"}


@pytest.mark.parametrize("mode", ["compliance", "advisory"])
def test_no_sources_gives_a_sensible_text_without_markers(mode):
    generation = _generate(mode=mode, sources=[])
    assert "nothing to quote" in generation.text
    assert not MARKER.search(generation.text)
    assert len(generation.suggestions) == 3


def test_usage_counts_question_sources_history_and_output():
    generation = _generate()
    longer = _generate(history=[Turn("user", "Earlier question " * 30)])
    assert generation.usage.output_tokens == approximate_tokens(generation.text) > 0
    assert generation.usage.input_tokens > sum(len(s.text.split()) for s in SOURCES)
    assert longer.usage.input_tokens == generation.usage.input_tokens + 80
    assert approximate_tokens("one two three") == 4


@pytest.mark.parametrize("mode", ["compliance", "advisory"])
def test_stream_deltas_join_to_the_generated_text_and_end_with_one_finish(mode):
    provider = ExtractiveProvider()
    events = list(provider.stream(_request(mode=mode)))
    generation = provider.generate(_request(mode=mode))
    deltas, finish = events[:-1], events[-1]
    assert len(deltas) > 3 and all(isinstance(d, TextDelta) for d in deltas)
    assert "".join(d.text for d in deltas) == generation.text
    assert isinstance(finish, Finish)
    assert finish.usage == generation.usage and finish.suggestions == generation.suggestions


def test_stream_delay_spaces_the_deltas():
    request = _request(options={"stream_delay": 0.02})
    started = time.perf_counter()
    stream = ExtractiveProvider().stream(request)
    next(stream)
    first_at = time.perf_counter() - started
    count = 1 + sum(1 for event in stream if isinstance(event, TextDelta))
    total = time.perf_counter() - started
    assert first_at < 0.02 <= total
    assert total >= 0.02 * (count - 1) * 0.9


def test_constructor_delay_is_used_when_options_have_none():
    provider = ExtractiveProvider(delay=0.01)
    started = time.perf_counter()
    events = list(provider.stream(_request()))
    assert time.perf_counter() - started >= 0.01 * (len(events) - 2) * 0.9


# --- suggestions ---------------------------------------------------------------------------


def test_suggestions_are_three_distinct_questions_other_than_the_one_asked():
    generation = _generate()
    assert len(generation.suggestions) == 3
    assert len(set(generation.suggestions)) == 3
    assert all(s.endswith("?") for s in generation.suggestions)
    assert QUESTION not in generation.suggestions


def test_suggestions_come_from_the_sources_headings():
    answer = _generate().text
    suggestions = suggest(QUESTION, SOURCES, answer)
    assert any("Testing and Exercises" in s or "Business Impact Analysis" in s
               for s in suggestions)
    assert suggest(QUESTION, SOURCES, answer) == suggestions


def test_suggestions_skip_the_question_itself_and_respect_the_limit():
    sources = [SourceText(1, "Testing and Exercises", "Test often. Test well.", "Annual Test Plan")]
    asked = "What are the key points of the Testing and Exercises guidance?"
    suggestions = suggest(asked, sources, "[1]", limit=5)
    assert asked not in suggestions and len(suggestions) == 5
    assert suggest(asked, sources, "", limit=0) == []


def test_suggestions_without_sources_still_make_questions():
    suggestions = suggest("How long must batch records be retained?", [], "")
    assert len(suggestions) == 3 and all(s.endswith("?") for s in suggestions)
    assert any("batch records" in s for s in suggestions)


# --- text helpers --------------------------------------------------------------------------


def test_stemmer_matches_inflections():
    assert stem("tests") == stem("testing") == stem("tested") == stem("test")
    assert stem("policies") == stem("policy")
    assert stem("required") == stem("requires") == stem("require")


@pytest.mark.parametrize("question, subject", [
    ("How often must the business impact analysis be reviewed?", "the business impact analysis"),
    ("What is the deadline to respond to a subject access request?",
     "the deadline to respond to a subject access request"),
    ("We plan to move to the cloud; how should we approach the exit strategy?",
     "the exit strategy"),
    ("and how often?", ""),
])
def test_question_subject(question, subject):
    assert question_subject(question) == subject


def test_a_heading_starting_with_the_templates_preposition_reads_once():
    from assistant.suggestions import _heading_questions

    for title in ("Monitoring Plans", "Clinical Trial Monitoring Plans", "Plans", "Site Plans"):
        source = SourceText(1, title, "### On-site Monitoring\n\nVisit each site.",
                            "On-site Monitoring")
        for question in _heading_questions([source], set()):
            assert not re.search(r"\b(\w+) \1\b", question), question


def test_uploaded_documents_headings_read_as_topics():
    """An uploaded SOP's all-caps headings are lowercased but its acronyms stay ("CCTV", as
    its text writes it); its own top heading under the title it was given is not a topic;
    "Procedure" says nothing about content; an SOP is named as one."""
    text = ("### 6. RECORDS\n\nKeep the log.\n\n### CCTV\n\nCCTV cameras cover the doors.\n\n"
            "### PROCEDURE\n\nFollow the steps.")
    sources = [SourceText(1, "Sample Retention SOP", text, "4. RESPONSIBILITIES"),
               SourceText(2, "Vendor Offboarding Procedure", "Plan the exit.",
                          "Northwind Labs: Critical Supplier Offboarding Procedure")]
    questions = suggest("Who signs off?", sources, "[1] [2]", limit=10)
    topics = " | ".join(questions)
    for topic in ("responsibilities?", "records?", "CCTV?"):
        assert topic in topics, questions
    assert "the Sample Retention SOP " in topics and "SOP guidance" not in topics
    assert not re.search(r"RECORDS|RESPONSIBILITIES|cctv|Northwind|procedure\?", topics), questions
