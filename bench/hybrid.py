#!/usr/bin/env python
"""Hybrid candidates without pgvector: what the nearest-vector half of the answer pool costs
on a 50,000-chunk library (docs/benchmarks.md, "Answers: a fourth set").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/egret_bench python bench/hybrid.py
        [--chunks 50000] [--queries 200] [--seed 42] [--keep]

Throwaway database as bench/retrieval.py, with its synthetic corpus; every chunk gets a
seeded random 384-wide unit vector in `embedding` (the width of all-MiniLM-L6-v2). The
question's embedding is a seeded random vector too: the model's own cost per question
(7-8 ms, once per query whatever the method) is measured in docs/benchmarks.md, "The
built-in encoder", and left out here. Per query, after a warm-up pass, interleaved:

  lexical   search(method="lexical", limit=20): the pool before, the baseline of the ratios
  hybrid    search(method="hybrid", limit=20): 50 lexical and the 50 nearest vectors fused;
            the scope's vectors kept in memory (one aggregate per query checks them)
  cold      the same with the kept vectors dropped before each query: every vector of the
            scope read from the table, as an exact search did before they were kept
  stamp     the aggregate alone
  answer    passages_for(limit=5) with the hybrid pool: what the query pipeline runs
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.billing import in_throwaway_database, machine, throwaway_server_url  # noqa: E402
from bench.retrieval import build_corpus, make_queries, pct  # noqa: E402

WIDTH = 384


def unit(rng: random.Random):
    import numpy as np

    vector = np.array([rng.gauss(0.0, 1.0) for _ in range(WIDTH)], dtype=np.float32)
    return vector / np.linalg.norm(vector)


def embed_every_chunk(rng: random.Random) -> int:
    from django.db import connection

    from knowledge import embeddings
    from knowledge.models import Chunk

    ids = list(Chunk.objects.order_by("id").values_list("id", flat=True))
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 2000):
            cursor.executemany("UPDATE knowledge_chunk SET embedding = %s WHERE id = %s",
                               [(embeddings.to_bytes(unit(rng)), pk)
                                for pk in ids[start:start + 2000]])
        cursor.execute("VACUUM (ANALYZE) knowledge_chunk")
    return len(ids)


def measure(corpus: dict, queries: list[str], rng: random.Random) -> dict:
    from knowledge import embeddings, retrieval

    domain, category = corpus["domain"], corpus["categories"][0]
    vectors = {query: unit(rng) for query in queries}
    current: dict = {}
    embeddings.embed_query = lambda text: current["vector"]  # the model is not measured

    def scope(i: int) -> dict:
        return {"domain": domain, "category": category,
                "organization": corpus["orgs"][i % 2], "scope": "all"}

    def run_lexical(query, i):
        return retrieval.search(query, limit=20, method="lexical", **scope(i))

    def run_hybrid(query, i):
        return retrieval.search(query, limit=20, method="hybrid", **scope(i))

    def run_cold(query, i):
        kept = dict(retrieval._SCOPES)
        retrieval._SCOPES.clear()
        try:
            return retrieval.search(query, limit=20, method="hybrid", **scope(i))
        finally:
            retrieval._SCOPES.clear()
            retrieval._SCOPES.update(kept)  # the other paths find what they kept

    def run_stamp(query, i):  # as retrieval._semantic_exact() reads it
        organization = corpus["orgs"][i % 2]
        parts = [retrieval._filters(domain, category, organization, part)
                 for part in ("public", "private")]
        return retrieval._stamps(parts)

    def run_answer(query, i):
        return retrieval.passages_for(query, limit=5, **scope(i))

    variants = {"lexical": run_lexical, "hybrid": run_hybrid, "cold": run_cold,
                "stamp": run_stamp, "answer": run_answer}
    for i, query in enumerate(queries[:20]):  # warm-up
        current["vector"] = vectors[query]
        for run in variants.values():
            run(query, i)
    times: dict[str, list[float]] = {label: [] for label in variants}
    order = list(variants.items())
    found_by_meaning = 0
    for i, query in enumerate(queries):
        current["vector"] = vectors[query]
        k = i % len(order)
        for label, run in order[k:] + order[:k]:
            started = time.perf_counter()
            result = run(query, i)
            times[label].append((time.perf_counter() - started) * 1000)
            if label == "hybrid":
                lexical = {p.chunk.pk for p in run_lexical(query, i)}
                found_by_meaning += sum(p.chunk.pk not in lexical for p in result)
    return {"times": times, "found_by_meaning": found_by_meaning}


def run(args) -> int:
    print(f"machine: {machine()}", flush=True)
    rng = random.Random(args.seed)
    started = time.perf_counter()
    corpus = build_corpus(args.chunks, rng)
    embedded = embed_every_chunk(random.Random(f"{args.seed}-vectors"))
    print(f"corpus: {corpus['indexed']} chunks in {corpus['documents']} documents, {embedded} "
          f"with a {WIDTH}-wide vector; built in {time.perf_counter() - started:.0f}s",
          flush=True)
    queries = make_queries(random.Random(f"{args.seed}-queries"), corpus["words"],
                           args.queries)
    result = measure(corpus, queries, random.Random(f"{args.seed}-questions"))
    times = result["times"]
    print(f"\n{len(queries)} queries (domain + category + organization, scope all), after a "
          "warm-up pass, interleaved:")
    print("  path     |   p50 ms |   p95 ms |  mean ms")
    for label, t in times.items():
        print(f"  {label:<8} | {pct(t, .5):8.2f} | {pct(t, .95):8.2f} | "
              f"{statistics.mean(t):8.2f}")
    base = pct(times["lexical"], .5)
    print(f"  p50 ratios to lexical: hybrid {pct(times['hybrid'], .5) / base:.2f}, cold "
          f"{pct(times['cold'], .5) / base:.2f}")
    print(f"  hybrid pools: {result['found_by_meaning'] / len(queries):.1f} of 20 candidates "
          "per query found by meaning alone")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=50_000, help="corpus size (50000)")
    parser.add_argument("--queries", type=int, default=200, help="query count (200)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    args = parser.parse_args()
    url = throwaway_server_url()
    os.environ["EGRET_EMBEDDINGS"] = "minilm"
    os.environ["EGRET_SEARCH_METHOD"] = ""
    return in_throwaway_database(url, args.keep, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
