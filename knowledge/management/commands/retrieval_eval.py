import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand

from knowledge import embeddings, retrieval
from knowledge.models import Category, Domain

EVAL_DIR = Path(__file__).resolve().parents[2] / "eval"


def evaluate(questions: list[dict], method: str) -> dict:
    """recall@5: an expected document is among the documents of the top 5 passages;
    MRR@10: 1 / rank of the first passage from an expected document in the top 10."""
    domains = {d.slug: d for d in Domain.objects.all()}
    categories = {(c.domain.slug, c.code): c for c in Category.objects.select_related("domain")}
    hits = reciprocal = 0.0
    misses = []
    started = time.perf_counter()
    for q in questions:
        scope = {"domain": domains[q["domain"]],
                 "category": categories[q["domain"], q["category"]], "scope": "public"}
        if method == "answer":  # what the query pipeline hands the model (passages_for)
            passages = retrieval.passages_for(q["question"], limit=10, **scope)
        else:
            passages = retrieval.search(q["question"], limit=10, method=method, **scope)
        paths = [p.document.filename for p in passages]
        expected = {Path(e).name for e in q["expected"]}
        ranks = [i for i, name in enumerate(paths) if name in expected]
        if ranks and ranks[0] < 5:
            hits += 1
        else:
            misses.append(q["id"])
        if ranks:
            reciprocal += 1.0 / (ranks[0] + 1)
    n = len(questions)
    return {"method": method, "questions": n, "recall_at_5": hits / n, "mrr_at_10": reciprocal / n,
            "ms_per_query": (time.perf_counter() - started) * 1000 / n, "misses": misses}


class Command(BaseCommand):
    help = ("Recall@5 and MRR@10 of retrieval on the evaluation questions (knowledge/eval): "
            "search() per method, and `answer`, the passages the query pipeline uses.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--questions", default=str(EVAL_DIR / "questions.json"))
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, **opts) -> None:
        questions = json.loads(Path(opts["questions"]).read_text(encoding="utf-8"))
        methods = ["lexical"] + (["semantic", "hybrid"] if embeddings.enabled() else [])
        methods.append("answer")
        results = [evaluate(questions, method) for method in methods]
        if opts["json"]:
            self.stdout.write(json.dumps(results, indent=2))
            return
        if not embeddings.enabled():
            self.stdout.write("semantic search is off (EGRET_EMBEDDINGS unset): lexical only")
        for r in results:
            self.stdout.write(f"{r['method']:>8}: recall@5 {r['recall_at_5']:.3f}  "
                              f"MRR@10 {r['mrr_at_10']:.3f}  over {r['questions']} questions  "
                              f"({r['ms_per_query']:.1f} ms/query; misses {r['misses']})")
