"""The evaluation sets on the demo library, through the real pipeline: grounding on the
retrieval questions, and completeness on the key-fact questions (per split)."""

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command

from assistant.evaluation import EvalOrganization, evaluate, found, normal
from assistant.management.commands.answer_eval import (KEYFACTS, OFF_TOPIC, PRIVATE,
                                                       QUESTIONS, load)
from knowledge.library import demo_library_load


@pytest.fixture
def library(db, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    demo_library_load()


def test_answers_on_the_retrieval_questions_are_grounded(library):
    questions = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    assert len(questions) >= 80
    for mode in ("compliance", "advisory"):
        result = evaluate(questions, mode=mode)["all"]
        assert result["markers_valid"] == 1.0 and result["cited"] == 1.0
        assert result["top_source_right"] >= 0.80
        assert len(result["insufficient"]) <= 2


def test_every_fact_is_word_for_word_in_its_document():
    root = KEYFACTS.parent
    library = root.parent / "fixtures" / "library"
    for question in load(KEYFACTS):
        text = " ".join(normal(_visible((library if not question.get("private") else root)
                                        / path)) for path in question["expected"])
        for fact in question["facts"]:
            assert found([fact[0]], text), (question["id"], fact[0])
    assert len(load(KEYFACTS)) >= 80


def _visible(path) -> str:
    import re

    text = path.read_text(encoding="utf-8")
    return re.sub(r"<[^>]+>", " ", text) if path.suffix == ".html" else text


def test_the_held_out_part_is_set_aside():
    """30 % of the first set (ids below 300) was drawn before any code was tuned; questions
    written later, once tuning had begun, can only be tuned on."""
    questions = load(KEYFACTS)
    first = [q for q in questions if q["id"] < 300]
    held_out = [q for q in first if q["split"] == "held-out"]
    assert {q["split"] for q in questions} == {"tune", "held-out"}
    assert 0.28 <= len(held_out) / len(first) <= 0.32
    assert all(q["split"] == "tune" for q in questions if q["id"] >= 300)


def test_fact_matching_ignores_case_emphasis_markers_and_spacing():
    answer = normal("Notify **within  72 Hours** [1] of becoming aware [2].")
    assert found(["within 72 hours"], answer)
    assert found(["seventy-two hours", "72 hours of becoming"], normal("72 hours [3] of becoming"))
    assert not found(["within 48 hours"], answer)


def test_answer_eval_reports_each_split_and_rolls_back_the_private_documents(library):
    from knowledge.models import Document
    from organizations.models import Organization

    out = StringIO()
    call_command("answer_eval", "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert result["tune"]["questions"] + result["held-out"]["questions"] == len(load(KEYFACTS))
    assert result["off_topic"]["questions"] == len(load(OFF_TOPIC))
    assert result["all"]["markers_valid"] == 1.0
    # Floors under today's figures (docs/benchmarks.md), on both databases: a change that
    # loses facts, lengthens answers or answers off-topic questions fails here.
    held_out = result["held-out"]
    assert held_out["fact_recall_context"] >= 0.95 and held_out["fact_recall_answer"] >= 0.87
    assert held_out["every_fact"] >= 0.75 and held_out["top_source_right"] >= 0.86
    tune = result["tune"]
    assert tune["fact_recall_context"] >= 0.965 and tune["fact_recall_answer"] >= 0.825
    assert tune["every_fact"] >= 0.68 and tune["top_source_right"] >= 0.94
    # The target holds on the held-out split; the tune split also holds ids 601–640,
    # 701–740, 801–840, 901–940, 1001–1040, 1041–1080 and 1081–1120, most of which ask two
    # to four things at once and get room for each part (each set's answers run 1,600–2,100
    # characters at the median).
    assert result["held-out"]["answer_chars_median"] <= 1500
    assert tune["answer_chars_median"] <= 1750
    for split in ("tune", "held-out"):
        assert result[split]["answer_chars_max"] <= 3000
    assert result["off_topic"]["insufficient"] == result["off_topic"]["questions"]
    assert not Organization.objects.filter(slug=EvalOrganization.SLUG).exists()
    assert not Document.objects.filter(organization__isnull=False).exists()
    text = StringIO()
    call_command("answer_eval", "--split", "held-out", "--no-off-topic", stdout=text)
    assert "held-out: 29 questions" in text.getvalue()
    assert len(load(PRIVATE)) == 4


LEAD = re.compile(
    r"^(?:Here is what (?:the [A-Z][^.]*? guidance|the [A-Z][^.]*|the cited guidance) says on "
    r"this, quoted from \d+ sources?(?: in \d+ documents)?\.|Here is how (?:the [A-Z][^.]*?|"
    r"the cited guidance) bears on this, drawn from \d+ sources?(?: in \d+ documents)?, with "
    r"practical steps at the end\.|None of the retrieved passages answers this directly; the "
    r"closest source opens as follows\.)$")
SUGGESTION = re.compile(
    r"^(?:(?:What does|How does) the [A-Z][^?]* (?:say about|expect on|deal with) "
    r"[a-zA-Z0-9][^?]*|What are the key points of the [A-Z][^?]*|What else does the [A-Z][^?]* "
    r"cover|Who should own [^?]+ in our organisation|What evidence shows compliance for [^?]+|"
    r"How often should [^?]+ be reviewed|Which documents in the library cover [^?]+)\?$")


def test_every_lead_and_suggestion_on_the_evaluation_sets_is_well_formed(library):
    """Leads and suggested follow-ups are built from fixed sentences and the sources' own
    headings, never from fragments of the question; checked on every evaluation question,
    those over the uploaded sample documents included."""
    from assistant import selectors
    from knowledge.models import Category

    model = selectors.model_get(None)
    categories = {(c.domain.slug, c.code): c for c in Category.objects.select_related("domain")}
    questions = [q for q in load(KEYFACTS) if not q.get("private")] + load(QUESTIONS)
    with EvalOrganization(load(PRIVATE)) as organization:
        private = [q for q in load(KEYFACTS) if q.get("private")]
        _check_leads_and_suggestions(private, model, categories, organization)
    _check_leads_and_suggestions(questions, model, categories, None)


def _check_leads_and_suggestions(questions, model, categories, organization):
    """Uploaded documents bring headings of their own: in capitals, numbered, and a top
    heading ("Northwind Labs: ...") other than the title they were given, never a topic."""
    from assistant.evaluation import ask
    from assistant.providers.extractive import ExtractiveProvider

    for mode in ("compliance", "advisory"):
        for question in questions:
            category = categories[question["domain"], question["category"]]
            answering, text, _ = ask(question, model=model, category=category,
                                     organization=organization, mode=mode)
            if answering.grounding.insufficient:
                continue
            lead = text.split("\n\n")[0]
            assert LEAD.match(lead), (question["id"], lead)
            generation = answering.generation_request()
            suggestions = ExtractiveProvider().generate(generation).suggestions
            assert len(suggestions) == 3, question["id"]
            for suggestion in suggestions:
                assert SUGGESTION.match(suggestion), (question["id"], suggestion)
                assert "  " not in suggestion and not re.search(r"\b(\w+) \1\b", suggestion)
                assert question["question"].rstrip("?") not in suggestion
                assert ":" not in suggestion, (question["id"], suggestion)
