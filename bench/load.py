#!/usr/bin/env python
"""Load benchmark: many concurrent clients mixing queries, subscription reads and session
lists through a real gunicorn, next to a GET /health/ baseline measured in the same run
(docs/benchmarks.md, "Load: mixed traffic").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/egret_bench python bench/load.py
        [--clients 64] [--seconds 60] [--rounds 2] [--workers 4] [--threads 16]
        [--mix query=2,subscription=1,sessions=1] [--keep]

Throwaway database, as bench/billing.py (`egret_bench_<pid>`, dropped at the end unless
--keep). Through tests.servers.ServedApp: `migrate`, `egret_demo` (36-document demo library,
org "demo" and its API key), then gunicorn with gunicorn.conf.py (gthread). The demo org is
topped up so it never runs out; throttles are raised out of the way (credits, not throttles,
are what this measures around). Not part of CI.

Each of --clients threads keeps one keep-alive connection and sends requests back to back,
each one drawn (seeded) from the mix:
  query         POST /v1/query/ (extractive model, a question of knowledge/eval/questions.json
                in its own domain/category; every fifth continues the client's last session)
  subscription  GET /v1/billings/subscription/
  sessions      GET /v1/sessions/recent/
The --seconds are split into --rounds slices alternating with equally long slices where the
same clients send only GET /health/ (the baseline: the cost of HTTP, gunicorn and Django's
middleware with one cheap SQL statement). Printed: requests, errors (non-2xx or connection
errors), requests/s, p50/p95/p99 ms per kind and overall, and the ratios to the baseline.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.billing import in_throwaway_database, machine  # noqa: E402
from bench.retrieval import pct  # noqa: E402

HUGE = 10**12
THROTTLE = "1000000/s"
QUESTIONS = ROOT / "knowledge" / "eval" / "questions.json"


class Client:
    """One connection and what it needs to build its requests."""

    def __init__(self, port: int, api_key: str, questions: list[dict], mix: list[str],
                 seed: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.auth = {"Authorization": f"Bearer {api_key}"}
        self.questions, self.mix = questions, mix
        self.rng = random.Random(seed)
        self.sessions: dict[tuple[str, str], str] = {}

    def request(self, kind: str) -> tuple[int, bytes]:
        headers, body, method = dict(self.auth), None, "GET"
        if kind == "health":
            path, headers = "/health/", {}
        elif kind == "subscription":
            path = "/v1/billings/subscription/"
        elif kind == "sessions":
            path = "/v1/sessions/recent/"
        else:
            path, method = "/v1/query/", "POST"
            q = self.rng.choice(self.questions)
            payload = {"query": q["question"], "domain": q["domain"],
                       "category": q["category"], "mode": "compliance"}
            session = self.sessions.get((q["domain"], q["category"]))
            if session and self.rng.random() < 0.2:
                payload["session_id"] = session
            body = json.dumps(payload)
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            return 0, b""
        if kind == "query" and response.status == 200:
            self.sessions[q["domain"], q["category"]] = json.loads(data)["session_id"]
        return response.status, data


def run_slice(clients: list[Client], seconds: float, baseline: bool) -> dict:
    """All clients back to back for `seconds` after a common start; returns
    {kind: [(latency ms, status)]}."""
    barrier = threading.Barrier(len(clients) + 1)
    deadline = [time.perf_counter() + 3600]
    results: list[list[tuple[str, float, int]]] = [[] for _ in clients]

    def work(i: int) -> None:
        client = clients[i]
        client.request("health")  # the connection is open and warm before the start
        barrier.wait(timeout=120)
        while True:
            kind = "health" if baseline else client.rng.choice(client.mix)
            started = time.perf_counter()
            status, _ = client.request(kind)
            ended = time.perf_counter()
            if ended > deadline[0]:
                break
            results[i].append((kind, (ended - started) * 1000, status))

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        futures = [pool.submit(work, i) for i in range(len(clients))]
        barrier.wait(timeout=180)
        deadline[0] = time.perf_counter() + seconds
        for future in futures:
            future.result()
    by_kind: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for rows in results:
        for kind, latency, status in rows:
            by_kind[kind].append((latency, status))
    return by_kind


def stats(rows: list[tuple[float, int]], seconds: float) -> dict:
    latencies = [latency for latency, _ in rows]
    return {"count": len(rows), "errors": sum(1 for _, s in rows if not 200 <= s < 300),
            "rps": len(rows) / seconds, "p50": pct(latencies, .50), "p95": pct(latencies, .95),
            "p99": pct(latencies, .99)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="mixed traffic in total; the baseline gets as long (60)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=min(4, multiprocessing.cpu_count() * 2))
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--mix", default="query=2,subscription=1,sessions=1")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL=postgres://user@host:port/anything (PostgreSQL only; a "
                 "throwaway database is created on that server and dropped at the end).")
    for name in ("THROTTLE_RATE_QUERY", "THROTTLE_RATE_DEFAULT"):
        os.environ[name] = THROTTLE
    os.environ["EGRET_EMBEDDINGS"] = ""
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    return in_throwaway_database(url, args.keep, lambda: run(args))


def run(args) -> int:
    from billing import services as billing
    from organizations.models import Organization
    from tests.servers import ServedApp

    mix: list[str] = []
    for part in args.mix.split(","):
        kind, weight = part.split("=")
        if kind not in ("query", "subscription", "sessions"):
            sys.exit(f"unknown kind in --mix: {kind}")
        mix += [kind] * int(weight)
    questions = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    print(f"machine: {machine()}", flush=True)
    env = {"GUNICORN_MAX_REQUESTS": "0", "THROTTLE_RATE_QUERY": THROTTLE,
           "THROTTLE_RATE_DEFAULT": THROTTLE, "EGRET_EMBEDDINGS": ""}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="egret-bench-load-") as tmp, \
            ServedApp(Path(tmp), database_url=os.environ["DATABASE_URL"], workers=args.workers,
                      threads=args.threads, env=env) as app:
        billing.credits_grant(Organization.objects.get(slug="demo"), HUGE, memo="benchmark")
        print(f"gunicorn gthread: {args.workers} workers x {args.threads} threads; "
              f"{args.clients} clients; mix {args.mix}; {args.seconds:g}s mixed + "
              f"{args.seconds:g}s baseline in {args.rounds} alternating slices each",
              flush=True)
        clients = [Client(app.port, app.api_key, questions, mix, args.seed + i)
                   for i in range(args.clients)]
        run_slice(clients, 3.0, baseline=False)  # warm-up
        slice_seconds = args.seconds / args.rounds
        mixed: dict[str, list] = defaultdict(list)
        baseline: list = []
        for r in range(args.rounds):
            order = [False, True] if r % 2 == 0 else [True, False]
            for is_baseline in order:
                result = run_slice(clients, slice_seconds, is_baseline)
                if is_baseline:
                    baseline += result["health"]
                else:
                    for kind, rows in result.items():
                        mixed[kind] += rows
        for client in clients:
            client.conn.close()
    base = stats(baseline, args.seconds)
    every = [row for rows in mixed.values() for row in rows]
    print(f"\n{'kind':<14}| requests | errors |   req/s |  p50 ms |  p95 ms |  p99 ms | "
          f"p50/health p50")
    lines = [("health (base)", base)] + [(k, stats(v, args.seconds))
                                         for k, v in sorted(mixed.items())]
    lines.append(("mixed, all", stats(every, args.seconds)))
    for label, s in lines:
        print(f"{label:<14}| {s['count']:>8} | {s['errors']:>6} | {s['rps']:>7.1f} | "
              f"{s['p50']:>7.1f} | {s['p95']:>7.1f} | {s['p99']:>7.1f} | "
              f"{s['p50'] / base['p50']:>6.2f}")
    total = stats(every, args.seconds)
    print(f"\nmixed throughput {total['rps']:.1f} req/s = {total['rps'] / base['rps']:.2f} x "
          f"the health baseline's {base['rps']:.1f} req/s; errors {total['errors']}")
    print(f"benchmark ran {time.perf_counter() - began:.0f}s")
    return 1 if total["errors"] or base["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
