"""How well comparisons cite and quote their sources (assistant/comparison_eval.py), on the
questions of knowledge/eval/compare.json over the demo library. No credits move."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from assistant.comparison_eval import QUESTIONS, TARGETS, evaluate, load


class Command(BaseCommand):
    help = ("Share of valid [code:n] markers, of table rows whose every cell cites a source, "
            "and of cells whose figure appears in the source they cite, per domain.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--questions", default=str(QUESTIONS),
                            help=f"question file (default {QUESTIONS.name})")
        parser.add_argument("--model", default=None, help="model id (default: the default "
                                                          "model)")
        parser.add_argument("--check", action="store_true",
                            help="exit with an error when a share is below its target "
                                 "(valid markers 100 %%, rows cited and figures found 90 %%)")

    def handle(self, *args, **opts) -> None:
        questions = load(opts["questions"])
        results = evaluate(questions, model_id=opts["model"])
        for key in ["all", *sorted(k for k in results if k != "all")]:
            r = results[key]
            self.stdout.write(
                f"{key:22} questions {r['questions']:3}  "
                f"valid markers {_pct(r['markers_valid_share'])} ({r['markers_valid']}/"
                f"{r['markers']})  rows fully cited {_pct(r['rows_cited_share'])} "
                f"({r['rows_cited']}/{r['rows']})  figures found "
                f"{_pct(r['figures_found_share'])} ({r['figures_found']}/{r['figures']})  "
                f"with a table {r['comparisons_with_table']} (with figures "
                f"{r['comparisons_with_figures']})  "
                f"insufficient categories {r['categories_insufficient']}")
        if opts["check"]:
            below = [name for name, floor in TARGETS.items()
                     if (results["all"][f"{name}_share"] or 0) < floor]
            if below:
                raise CommandError(f"below target: {', '.join(below)}")


def _pct(share: float | None) -> str:
    return "   n/a" if share is None else f"{share * 100:5.1f} %"
