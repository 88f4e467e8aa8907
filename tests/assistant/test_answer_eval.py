"""Grounding on the demo library: every [n] marker points to a source, and the top source is
an expected document for at least 80 % of the evaluation questions."""

import json
from io import StringIO

from django.core.management import call_command

from assistant.management.commands.answer_eval import QUESTIONS, evaluate
from knowledge.library import demo_library_load


def test_answers_on_the_demo_library_are_grounded(db, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    demo_library_load()
    questions = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    assert len(questions) >= 80
    for mode in ("compliance", "advisory"):
        result = evaluate(questions, mode=mode)
        print(f"{mode}: top source expected {result['top_source_expected']:.3f}")
        assert result["markers_valid"] == 1.0 and result["cited"] == 1.0
        assert result["top_source_expected"] >= 0.80
        assert result["insufficient"] <= 2
    out = StringIO()
    call_command("answer_eval", stdout=out)
    assert "top source expected in" in out.getvalue()
