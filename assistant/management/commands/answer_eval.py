"""Grounding of answers on the evaluation questions (knowledge/eval/questions.json).

For every question the real pipeline retrieves from the public library and generates with
the chosen model (no organization, no credits). Reported, over the answered questions (not
`insufficient_context`): the share whose every [n] marker points to an existing source and
the share that cite at least one; over all questions: the share whose first source is an
expected document (the target is at least 80 %)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from types import SimpleNamespace

from django.core.management.base import BaseCommand, CommandError

from assistant import selectors
from assistant.pipeline import Answering, Query
from knowledge.models import Category

QUESTIONS = Path(__file__).resolve().parents[3] / "knowledge" / "eval" / "questions.json"
MARKER = re.compile(r"\[(\d+)\]")


def evaluate(questions: list[dict], *, model_id: str | None = None, mode: str = "auto") -> dict:
    model = selectors.model_get(model_id)
    categories = {(c.domain.slug, c.code): c for c in Category.objects.select_related("domain")}
    acting = SimpleNamespace(organization=None, user=None, api_key=None)
    valid = cited = top_hits = insufficient = 0
    misses: list[int] = []
    started = time.perf_counter()
    for q in questions:
        category = categories.get((q["domain"], q["category"]))
        if category is None:
            raise CommandError(f"{q['domain']}/{q['category']} is not loaded; run "
                               "`manage.py egret_demo` first.")
        answering = Answering(Query(acting=acting, question=q["question"],
                                    domain=category.domain, category=category, mode=mode,
                                    model=model, stream=False, session=None, scope="public",
                                    max_sources=5))
        answering.retrieve()
        if answering.grounding.insufficient:
            insufficient += 1
            misses.append(q["id"])
            continue
        text, sources, _, _ = answering.draft()
        numbers = {int(n) for n in MARKER.findall(text)}
        if numbers <= set(range(1, len(sources) + 1)):
            valid += 1
        if numbers:
            cited += 1
        expected = {Path(e).name for e in q["expected"]}
        if sources and sources[0]["filename"] in expected:
            top_hits += 1
        else:
            misses.append(q["id"])
    n = len(questions)
    answered = n - insufficient
    return {"model": model.id, "mode": mode, "questions": n, "answered": answered,
            "markers_valid": valid / max(answered, 1), "cited": cited / max(answered, 1),
            "top_source_expected": top_hits / n, "insufficient": insufficient,
            "ms_per_question": (time.perf_counter() - started) * 1000 / n, "misses": misses}


class Command(BaseCommand):
    help = ("Share of answers whose [n] markers all point to a source and whose top source is "
            "the expected document, on knowledge/eval/questions.json.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--questions", default=str(QUESTIONS))
        parser.add_argument("--model", default=None, help="model id (default: the default)")
        parser.add_argument("--mode", default="auto",
                            choices=["auto", "compliance", "advisory"])
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts) -> None:
        questions = json.loads(Path(opts["questions"]).read_text(encoding="utf-8"))
        result = evaluate(questions, model_id=opts["model"], mode=opts["mode"])
        if opts["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(
            f"{result['model']} ({result['mode']}): {result['questions']} questions, "
            f"{result['answered']} answered; every marker points to a source in "
            f"{result['markers_valid']:.1%} of answers, {result['cited']:.1%} cite at least "
            f"one; top source expected in "
            f"{result['top_source_expected']:.1%} (target 80%); insufficient context "
            f"{result['insufficient']}; {result['ms_per_question']:.1f} ms/question; "
            f"misses {result['misses']}")
