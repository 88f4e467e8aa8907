"""How complete and grounded the answers are on the evaluation sets (assistant/evaluation.py).

By default: the key-fact questions of knowledge/eval/keyfacts.json (public library and the
private sample documents of knowledge/eval/private/, loaded into a throwaway organization
that is rolled back afterwards) and the off-topic questions of knowledge/eval/off_topic.json.
Every figure is given per split: `tune` (what the retrieval and answers were tuned on) and
`held-out` (set aside before any tuning). No credits move.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from assistant.evaluation import EVAL_DIR, EvalOrganization, evaluate

KEYFACTS = EVAL_DIR / "keyfacts.json"
QUESTIONS = EVAL_DIR / "questions.json"  # retrieval questions: top source and markers only
OFF_TOPIC = EVAL_DIR / "off_topic.json"
PRIVATE = EVAL_DIR / "private" / "documents.json"


def load(path: Path | str) -> list[dict]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


class Command(BaseCommand):
    help = ("Key-fact recall (answer and context), questions with every fact, top source, "
            "answer length, valid markers and off-topic refusals, per split of the "
            "evaluation set.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--questions", default=str(KEYFACTS),
                            help=f"question file (default {KEYFACTS.name}; "
                                 f"{QUESTIONS.name} has no key facts)")
        parser.add_argument("--split", choices=["tune", "held-out"], default=None,
                            help="only this part of the set")
        parser.add_argument("--model", default=None, help="model id (default: the default)")
        parser.add_argument("--mode", default="auto",
                            choices=["auto", "compliance", "advisory"])
        parser.add_argument("--no-off-topic", action="store_true")
        parser.add_argument("--details", action="store_true",
                            help="list the missing facts and wrong top sources by question")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts) -> None:
        questions = load(opts["questions"])
        if opts["split"]:
            questions = [q for q in questions if q.get("split") == opts["split"]]
        off_topic = [] if opts["no_off_topic"] else load(OFF_TOPIC)
        private = [q for q in questions if q.get("private")]
        scope = EvalOrganization(load(PRIVATE)) if private else nullcontext()
        try:
            with scope as organization:
                result = evaluate(questions, model_id=opts["model"], mode=opts["mode"],
                                  organization=organization, off_topic=off_topic)
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        if opts["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(f"model {result['model']}, mode {result['mode']}, "
                          f"{result['ms_per_question']} ms/question")
        for name in ("tune", "held-out", "all"):
            if name in result:
                self._report(name, result[name], opts["details"])
        off = result["off_topic"]
        if off["questions"]:
            self.stdout.write(f"off-topic: {off['insufficient']}/{off['questions']} answered "
                              f"insufficient_context; answered anyway: {off['answered']}")

    def _report(self, name: str, r: dict, details: bool) -> None:
        def pct(value) -> str:
            return "n/a" if value is None else f"{value:.1%}"

        self.stdout.write(
            f"{name:>8}: {r['questions']} questions, {r['answered']} answered | facts in "
            f"answer {pct(r['fact_recall_answer'])}, in context "
            f"{pct(r['fact_recall_context'])} | every fact {pct(r['every_fact'])} | top "
            f"source {pct(r['top_source_right'])} | markers valid {pct(r['markers_valid'])} | "
            f"chars median {r['answer_chars_median']}, max {r['answer_chars_max']} | "
            f"insufficient {r['insufficient']}")
        if details and name != "all":
            self.stdout.write(f"          wrong top source: {r['wrong_top_source']}")
            for qid, missing in r["missing_facts"].items():
                self.stdout.write(f"          {qid}: missing {missing}")
