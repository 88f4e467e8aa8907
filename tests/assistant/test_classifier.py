"""The `auto` mode classifier: measured on knowledge/eval/modes.json, plus clear-cut cases."""

from __future__ import annotations

from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command

from assistant.classifier import classify, evaluate, explain, load_examples

MIN_ACCURACY = 0.85


def test_accuracy_on_the_labelled_examples():
    examples = load_examples()
    result = evaluate(examples)
    print(f"\nmode classifier accuracy: {result['accuracy']:.3f} on {result['examples']} "
          f"examples; errors: {result['errors']}")
    assert result["examples"] == len(examples) >= 60
    assert result["accuracy"] >= MIN_ACCURACY, result["errors"]


def test_evaluation_reports_precision_and_recall_per_label():
    result = evaluate([
        {"question": "Is a DPIA mandatory?", "mode": "compliance"},
        {"question": "What is the best way to train staff?", "mode": "advisory"},
        {"question": "How should we plan the audit?", "mode": "compliance"},  # mislabelled
    ])
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["labels"]["compliance"] == {"precision": 1.0, "recall": 0.5, "support": 2}
    assert result["labels"]["advisory"] == {"precision": 0.5, "recall": 1.0, "support": 1}
    assert result["errors"] == [{"question": "How should we plan the audit?",
                                 "expected": "compliance", "predicted": "advisory"}]


@pytest.mark.parametrize("question", [
    "Is encryption of portable devices mandatory?",
    "How long must training records be retained?",
    "What is the deadline for reporting a breach to the authority?",
    "Within how many days must a complaint be answered?",
    "What does the policy say about visitor logs?",
    "Are we required to appoint a data protection officer?",
])
def test_rule_questions_are_compliance(question):
    assert classify(question) == "compliance"


@pytest.mark.parametrize("question", [
    "How should we roll out the new retention schedule across regions?",
    "What is the best way to train new monitors?",
    "Would you recommend outsourcing our internal audit?",
    "What approach should we take to prioritise remediation work?",
    "Any tips for improving attendance at tabletop exercises?",
])
def test_how_to_questions_are_advisory(question):
    assert classify(question) == "advisory"


def test_a_question_without_cues_goes_to_compliance_the_conservative_mode():
    result = explain("Tell me about backups.")
    assert result["mode"] == "compliance" and result["tie_break"] is True
    assert result["scores"] == {"compliance": 0.0, "advisory": 0.0}


def test_explain_shows_the_matched_cues_and_scores():
    result = explain("How should we prioritise what must be retained?")
    assert "how should we" in result["cues"]["advisory"]
    assert "must" in result["cues"]["compliance"]
    assert result["scores"]["advisory"] > result["scores"]["compliance"]
    assert result["mode"] == "advisory"


@pytest.mark.skipif(not apps.is_installed("assistant"), reason="assistant app not installed")
def test_mode_eval_command_prints_precision_recall_and_accuracy():
    out = StringIO()
    call_command("mode_eval", stdout=out)
    printed = out.getvalue()
    assert "accuracy" in printed and "precision" in printed and "recall" in printed
    assert "compliance" in printed and "advisory" in printed
