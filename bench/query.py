#!/usr/bin/env python
"""Assistant benchmark: latency and throughput of POST /v1/query/ through a real gunicorn
(docs/benchmarks.md, "Assistant: query latency through gunicorn").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/egret_bench python bench/query.py
        [--chunks 50000] [--clients 1,2,4,8] [--seconds 10] [--rounds 3] [--workers 4]
        [--threads 8] [--queries 200] [--mode compliance] [--seed 42] [--skip-synthetic]
        [--profile] [--keep]

Throwaway database, as bench/billing.py: the database named in DATABASE_URL is never used;
`egret_bench_<pid>` is created on that server, migrated, and dropped at the end (`--keep`
keeps it). PostgreSQL only. Embeddings are switched off (EGRET_EMBEDDINGS=""): lexical
retrieval, the default. The model is `extractive` (the default model: no network).

  1. data     unless --skip-synthetic, the 50,000-chunk corpus of bench/retrieval.py
              (build_corpus: domain `bench-continuity`, categories `us`/`sg`); then, through
              tests.servers.ServedApp, `migrate` and `egret_demo` (the 36-document demo
              library, the org "demo" on `professional` and its API key) and a gunicorn started with
              gunicorn.conf.py (gthread; GUNICORN_WORKERS/THREADS from --workers/--threads,
              access log off, GUNICORN_MAX_REQUESTS=0 so no worker is recycled mid-run). The
              demo org gets a top-up that outlasts the run; the throttles are raised to
              1000000/s (a one-second window keeps their history as short as in production).
  2. sets     demo         the 84 questions of knowledge/eval/questions.json, each against
                           its own domain/category
              synthetic    --queries make_queries() (2-5 random terms) on bench-continuity/us
              chunk-words  --queries queries of 3 words taken from one random public chunk of
                           bench-continuity/us each: the terms co-occur as in a real question,
                           so retrieval mostly stops at its AND step and the answer is
                           grounded (not insufficient_context)
  3. load     per set and concurrency level of --clients (threads of this process, one
              keep-alive http.client connection each), after a warm-up: GET /health/ (the
              baseline) and POST /v1/query/ alternate in --rounds slices of
              --seconds/--rounds each, so both see the same machine. Printed: requests,
              errors (non-2xx or connection errors), requests/s, p50/p95/p99 ms, the ratios
              query/health, the share of insufficient_context answers, the medians of the
              response's retrieval_ms / generation_ms / total_latency_ms, and the CPU time
              per request (from /proc, over exactly the timed window) of gunicorn, of the
              PostgreSQL backends of the benchmark database and of this client, with the share
              of the machine other processes took meanwhile (a shared host is noisy).
  4. split    30 queries per set run in this process through django.test.Client (no HTTP,
              no concurrency): wall time, SQL statements (COMMIT included) and SQL time per
              request, so Python time = wall - SQL; then the same 30 again (wall time only),
              when the extractive provider's per-process memo of passages already holds them.
              --profile adds a cProfile of the last set, the statements of its median request
              and EXPLAIN (ANALYZE, BUFFERS) of its slowest retrieval statement.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import json
import multiprocessing
import os
import pstats
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.billing import in_throwaway_database, machine, throwaway_server_url  # noqa: E402
from bench.retrieval import STOPWORDS as ZIPF_STOPWORDS  # noqa: E402
from bench.retrieval import build_corpus, make_queries, pct  # noqa: E402

TARGET_P50_MS = 60.0  # query p50 on the 50,000-chunk library, shown per concurrency level
HUGE = 10**12  # credits granted to the demo organization: never exhausted
THROTTLE = "1000000/s"
WARMUP_SECONDS = 3.0  # per set and client count, untimed
WARMUP_PER_CONNECTION = 2  # untimed requests on each fresh connection before the barrier
SPLIT_QUERIES = 30
QUESTIONS = ROOT / "knowledge" / "eval" / "questions.json"


# --- CPU accounting (Linux /proc) -------------------------------------------------------------
HZ = os.sysconf("SC_CLK_TCK")
GROUPS = ("app", "db", "client")


class CpuMeter:
    """CPU time (jiffies) of the gunicorn master and workers (app), of the PostgreSQL backends
    connected to the benchmark database (db), of this process (client: the load generator),
    and of the whole machine, so that what every other process took (other) is known too."""

    def __init__(self, gunicorn_pid: int) -> None:
        self.gunicorn_pid = gunicorn_pid
        self.own_pid = os.getpid()

    def _db_pids(self) -> set[int]:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid()")
            return {row[0] for row in cursor.fetchall()}

    def snapshot(self) -> dict:
        db_pids = self._db_pids()
        per_pid: dict[int, tuple[str, int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            pid, ppid = int(entry.name), int(fields[1])
            group = ("app" if self.gunicorn_pid in (pid, ppid) else "db" if pid in db_pids
                     else "client" if pid == self.own_pid else None)
            if group:
                per_pid[pid] = (group, int(fields[11]) + int(fields[12]))  # utime + stime
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        busy = sum(values[:8]) - values[3] - values[4]  # all but idle and iowait
        return {"busy": busy, "pids": per_pid}

    @staticmethod
    def delta(before: dict, after: dict) -> dict:
        out = dict.fromkeys(GROUPS, 0)
        for pid, (group, jiffies) in after["pids"].items():
            # a process that started during the interval counts from zero
            out[group] += jiffies - before["pids"].get(pid, (group, 0))[1]
        out["other"] = max(0, after["busy"] - before["busy"] - sum(out.values()))
        return out


# --- Load generation --------------------------------------------------------------------------
@dataclass
class Endpoint:
    label: str
    method: str
    path: str
    bodies: list[bytes | None]  # cycled through; [None] for a GET
    headers: dict
    parse: bool = False  # keep the JSON body of 2xx responses (query timing fields)
    cursor: int = 0  # where the next phase starts in `bodies`


@dataclass
class Phase:
    seconds: float
    latencies: list[float] = field(default_factory=list)  # ms, successful and failed
    statuses: dict = field(default_factory=dict)  # status (0 = connection error) -> count
    payloads: list[dict] = field(default_factory=list)
    cpu: dict = field(default_factory=dict)  # jiffies per group during the timed window

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)


def send(conn: http.client.HTTPConnection, endpoint: Endpoint, body) -> tuple[int, bytes]:
    try:
        conn.request(endpoint.method, endpoint.path, body=body, headers=endpoint.headers)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        conn.close()  # the next request opens a new connection
        return 0, b""


def run_phase(port: int, endpoint: Endpoint, clients: int, seconds: float,
              meter: CpuMeter | None = None) -> Phase:
    """`clients` threads, one keep-alive connection each, sending `endpoint` back to back for
    `seconds` after a common start; a request that ends after the deadline is not counted.
    With a `meter`, the CPU time of each group over exactly that window."""
    barrier = threading.Barrier(clients + 1)
    deadline = [time.perf_counter() + 3600]  # set once everyone is connected and warm
    bodies = endpoint.bodies
    start = endpoint.cursor
    per_thread: list[list[tuple[float, int, bytes]]] = [[] for _ in range(clients)]

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        position = start + i * max(1, len(bodies) // clients)
        try:
            for _ in range(WARMUP_PER_CONNECTION):
                send(conn, endpoint, bodies[position % len(bodies)])
                position += 1
            barrier.wait(timeout=120)
            mine = per_thread[i]
            clock = time.perf_counter
            while True:
                body = bodies[position % len(bodies)]
                position += 1
                started = clock()
                status, data = send(conn, endpoint, body)
                ended = clock()
                if ended > deadline[0]:
                    break
                mine.append(((ended - started) * 1000, status,
                             data if endpoint.parse and 200 <= status < 300 else b""))
        except BaseException:
            barrier.abort()
            raise
        finally:
            conn.close()

    cpu: dict = {}
    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [pool.submit(client, i) for i in range(clients)]
        try:
            barrier.wait(timeout=180)
            deadline[0] = time.perf_counter() + seconds
            if meter:
                before, opened = meter.snapshot(), time.perf_counter()
                time.sleep(max(0.0, deadline[0] - time.perf_counter()))
                cpu = CpuMeter.delta(before, meter.snapshot())
                cpu["wall"] = time.perf_counter() - opened
        except threading.BrokenBarrierError:
            pass
        for future in futures:
            future.result()
    endpoint.cursor = start + 7919  # the next phase starts elsewhere in the list
    phase = Phase(seconds, cpu=cpu)
    for rows in per_thread:
        for latency, status, data in rows:
            phase.latencies.append(latency)
            phase.statuses[status] = phase.statuses.get(status, 0) + 1
            if data:
                phase.payloads.append(json.loads(data))
    return phase


def merge(phases: list[Phase]) -> dict:
    latencies = [x for p in phases for x in p.latencies]
    seconds = sum(p.seconds for p in phases)
    statuses: dict = {}
    for p in phases:
        for status, n in p.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    rates = [p.count / p.seconds for p in phases]
    cpu = {group: sum(p.cpu.get(group, 0) for p in phases) for group in (*GROUPS, "other")}
    capacity = sum(p.cpu.get("wall", p.seconds) for p in phases) * HZ * (os.cpu_count() or 1)
    return {
        "cpu_ms": {group: jiffies * 1000 / HZ / max(1, len(latencies))
                   for group, jiffies in cpu.items() if group != "other"},
        "other_share": cpu["other"] / capacity,
        "busy_share": sum(cpu.values()) / capacity,
        "count": len(latencies), "errors": sum(p.errors for p in phases),
        "statuses": statuses, "rps": len(latencies) / seconds,
        "rps_range": (min(rates), max(rates)),
        "p50": pct(latencies, .50), "p95": pct(latencies, .95), "p99": pct(latencies, .99),
        "payloads": [x for p in phases for x in p.payloads],
    }


def measure_pair(port: int, health: Endpoint, query: Endpoint, clients: int, seconds: float,
                 rounds: int, meter: CpuMeter) -> tuple[dict, dict]:
    """Warm-up, then health and query alternating in `rounds` slices (the first endpoint of a
    slice alternates too, so neither always follows the other)."""
    run_phase(port, query, clients, WARMUP_SECONDS)
    run_phase(port, health, clients, 1.0)
    slices: dict[str, list[Phase]] = {"health": [], "query": []}
    for r in range(rounds):
        order = [("health", health), ("query", query)]
        for label, endpoint in (order if r % 2 == 0 else order[::-1]):
            slices[label].append(run_phase(port, endpoint, clients, seconds / rounds, meter))
    return merge(slices["health"]), merge(slices["query"])


# --- Query sets -------------------------------------------------------------------------------
def demo_set() -> list[dict]:
    questions = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    return [{"query": q["question"], "domain": q["domain"], "category": q["category"]}
            for q in questions]


def synthetic_set(corpus: dict, rng: random.Random, count: int) -> list[dict]:
    domain, category = corpus["domain"].slug, corpus["categories"][0].code
    return [{"query": q, "domain": domain, "category": category}
            for q in make_queries(rng, corpus["words"], count)]


def chunk_words_set(corpus: dict, rng: random.Random, count: int) -> list[dict]:
    """Three distinct non-stopwords of one random public chunk per query."""
    from knowledge.models import Chunk
    from knowledge.retrieval import STOPWORDS

    domain, category = corpus["domain"], corpus["categories"][0]
    ids = sorted(Chunk.objects.filter(domain=domain, category=category,
                                      organization__isnull=True).values_list("id", flat=True))
    picked = rng.sample(ids, min(count, len(ids)))
    texts = Chunk.objects.in_bulk(picked)
    skip = set(STOPWORDS) | set(ZIPF_STOPWORDS)
    queries = []
    for pk in picked:
        words = sorted({w for w in re.findall(r"[a-z]+", texts[pk].text.lower())
                        if len(w) > 2 and w not in skip})
        queries.append({"query": " ".join(rng.sample(words, 3)), "domain": domain.slug,
                        "category": category.code})
    return queries


def query_endpoint(label: str, items: list[dict], api_key: str, mode: str) -> Endpoint:
    bodies = [json.dumps({**item, "mode": mode}).encode() for item in items]
    return Endpoint(label, "POST", "/v1/query/", bodies,
                    {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
                    parse=True)


# --- In-process split: SQL vs Python ----------------------------------------------------------
class SqlLog:
    """connection.execute_wrapper: every statement with its parameters and duration."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, object, float]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.rows.append((sql, params, (time.perf_counter() - started) * 1000))


def split_in_process(items: list[dict], api_key: str, mode: str) -> dict:
    """Each query once through the whole Django stack in this thread, every SQL statement
    timed; then, for --profile, the same queries again under cProfile (timed separately: the
    profiler slows Python several times over)."""
    from django.db import DEFAULT_DB_ALIAS, connection, connections
    from django.test import Client

    client = Client(SERVER_NAME="localhost", HTTP_AUTHORIZATION=f"Bearer {api_key}")

    def post(item: dict):
        response = client.post("/v1/query/", data={**item, "mode": mode},
                               content_type="application/json", secure=True)
        if response.status_code != 200:
            raise RuntimeError(f"in-process query answered {response.status_code}: "
                               f"{response.content[:300]!r}")
        return response

    for item in items[:5]:  # warm-up
        post(item)
    # COMMIT does not go through a cursor: time it by wrapping this thread's connection.
    wrapper = connections[DEFAULT_DB_ALIAS]
    current: list[SqlLog] = []

    def timed_commit(commit=wrapper._commit):
        started = time.perf_counter()
        try:
            return commit()
        finally:
            if current:
                current[-1].rows.append(("COMMIT", None,
                                         (time.perf_counter() - started) * 1000))

    wrapper._commit = timed_commit
    requests = []
    try:
        for item in items[:SPLIT_QUERIES]:
            log = SqlLog()
            current.append(log)
            with connection.execute_wrapper(log):
                started = time.perf_counter()
                response = post(item)
                wall = (time.perf_counter() - started) * 1000
            requests.append({"wall": wall, "sql": log.rows, "body": response.json()})
    finally:
        del wrapper._commit  # the class's method again
    # The pass above met most passages for the first time in this process; the same queries
    # again find their passages' analysis remembered (the extractive provider's memo), as
    # the load phases, which cycle through their query set, mostly do.
    again = []
    for item in items[:SPLIT_QUERIES]:
        started = time.perf_counter()
        post(item)
        again.append((time.perf_counter() - started) * 1000)
    return {"requests": requests, "again": again, "items": items[:SPLIT_QUERIES], "post": post}


def profile_in_process(split: dict) -> cProfile.Profile:
    profiler = cProfile.Profile()
    for item in split["items"]:
        profiler.enable()
        split["post"](item)
        profiler.disable()
    return profiler


def explain(sql: str, params) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def shape(sql: str) -> str:
    """A statement shortened for a listing."""
    sql = " ".join(sql.split())
    return sql if len(sql) <= 110 else sql[:107] + "..."


# --- Main -------------------------------------------------------------------------------------
def client_counts_arg(text: str) -> list[int]:
    try:
        counts = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of integers") from None
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError("client counts are positive integers")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=50_000,
                        help="synthetic corpus size (50000)")
    parser.add_argument("--clients", type=client_counts_arg, default=[1, 2, 4, 8],
                        help="concurrency levels, comma-separated (1,2,4,8)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="per endpoint, set and client count (10)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="slices each measurement is split into, alternating (3)")
    parser.add_argument("--workers", type=int,
                        default=min(4, multiprocessing.cpu_count() * 2),
                        help="gunicorn workers (gunicorn.conf.py's default here)")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads (8)")
    parser.add_argument("--queries", type=int, default=200,
                        help="queries per synthetic set (200)")
    parser.add_argument("--mode", default="compliance",
                        choices=("compliance", "advisory", "auto"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-synthetic", action="store_true",
                        help="demo library only (no 50,000-chunk corpus)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile + SQL listing + EXPLAIN of one set, in process")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    args = parser.parse_args()

    url = throwaway_server_url()
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/query.py needs DATABASE_URL=postgres://... (PostgreSQL only).")
    # Read by the settings of this process (in-process split) and, through ServedApp's
    # environment, of gunicorn.
    os.environ["EGRET_EMBEDDINGS"] = ""
    os.environ["THROTTLE_RATE_QUERY"] = THROTTLE
    os.environ["THROTTLE_RATE_DEFAULT"] = THROTTLE
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # no "query answered" line per request
    return in_throwaway_database(url, args.keep, lambda: run(args))


def run(args) -> int:
    from billing import services as billing
    from billing.models import LedgerEntry
    from organizations.models import Organization
    from tests.servers import ServedApp

    began = time.perf_counter()
    print(f"machine: {machine()}", flush=True)
    rng = random.Random(args.seed)
    corpus = None
    if not args.skip_synthetic:
        started = time.perf_counter()
        corpus = build_corpus(args.chunks, rng)
        print(f"synthetic corpus: {corpus['indexed']} chunks in {corpus['documents']} "
              f"documents (domain {corpus['domain'].slug}, categories "
              f"{'/'.join(c.code for c in corpus['categories'])}); table "
              f"{corpus['sizes'][0]}, GIN {corpus['sizes'][1]}; built in "
              f"{time.perf_counter() - started:.1f}s", flush=True)

    env = {"GUNICORN_MAX_REQUESTS": "0", "EGRET_EMBEDDINGS": "",
           "THROTTLE_RATE_QUERY": THROTTLE, "THROTTLE_RATE_DEFAULT": THROTTLE}
    with tempfile.TemporaryDirectory(prefix="egret-bench-query-") as tmp, \
            ServedApp(Path(tmp), database_url=os.environ["DATABASE_URL"], workers=args.workers,
                      threads=args.threads, env=env, library=True) as app:
        demo = Organization.objects.get(slug="demo")
        billing.credits_grant(demo, HUGE, kind=LedgerEntry.Kind.TOP_UP, memo="benchmark")
        print(f"gunicorn gthread on port {app.port}: {args.workers} workers x {args.threads} "
              f"threads, access log off, no max_requests; demo library loaded, demo org "
              f"topped up; throttles {THROTTLE}; model extractive, mode {args.mode}",
              flush=True)

        sets = {"demo": demo_set()}
        if corpus is not None:
            sets["synthetic"] = synthetic_set(corpus, rng, args.queries)
            sets["chunk-words"] = chunk_words_set(corpus, rng, args.queries)
        health = Endpoint("health", "GET", "/health/", [None], {})
        client_counts = args.clients
        print(f"{args.seconds:g}s per endpoint, set and client count, in {args.rounds} "
              f"alternating slices, after {WARMUP_SECONDS:g}s of warm-up\n", flush=True)

        meter = CpuMeter(app.process.pid)
        results: dict[tuple[str, int], tuple[dict, dict]] = {}
        for label, items in sets.items():
            query = query_endpoint(label, items, app.api_key, args.mode)
            for clients in client_counts:
                h, q = measure_pair(app.port, health, query, clients, args.seconds,
                                    args.rounds, meter)
                results[label, clients] = (h, q)
                report_pair(label, len(items), clients, h, q)
        splits = {label: split_in_process(items, app.api_key, args.mode)
                  for label, items in sets.items()}
        profiled = None
        if args.profile:
            label = list(splits)[-1]
            profiled = (label, splits[label], profile_in_process(splits[label]))
        gunicorn_log = app.logs()

    summary(results, client_counts, args)
    report_splits(splits)
    if profiled:
        report_profile(*profiled)
    errors = [line for line in gunicorn_log.splitlines() if "ERROR" in line or "Traceback" in line]
    if errors:
        print(f"\ngunicorn log: {len(errors)} error lines, e.g. {errors[0][:200]}")
    print(f"\nbenchmark ran {time.perf_counter() - began:.0f}s")
    return 1 if any(q["errors"] or h["errors"] for h, q in results.values()) else 0


def timing_medians(payloads: list[dict]) -> dict:
    if not payloads:
        return {}
    fields = ("total_latency_ms", "retrieval_ms", "generation_ms")
    out = {f: statistics.median(p[f] for p in payloads) for f in fields}
    out["rest_ms"] = statistics.median(p["total_latency_ms"] - p["retrieval_ms"]
                                       - p["generation_ms"] for p in payloads)
    out["insufficient"] = sum(1 for p in payloads if p["insufficient_context"]) / len(payloads)
    return out


def report_pair(label: str, size: int, clients: int, h: dict, q: dict) -> None:
    print(f"[{label}: {size} queries] {clients} client{'s' if clients > 1 else ''}")
    print("  endpoint | requests | errors |   req/s (slices)      |  p50 ms |  p95 ms |  p99 ms")
    for name, r in (("health", h), ("query", q)):
        low, high = r["rps_range"]
        print(f"  {name:<8} | {r['count']:8d} | {r['errors']:6d} | {r['rps']:7.1f} "
              f"({low:6.1f}..{high:6.1f}) | {r['p50']:7.2f} | {r['p95']:7.2f} | "
              f"{r['p99']:7.2f}")
        bad = {s: n for s, n in r["statuses"].items() if not 200 <= s < 300}
        if bad:
            print(f"           non-2xx statuses: {bad}")
    print(f"  query/health: p50 x{q['p50'] / h['p50']:.1f}, p95 x{q['p95'] / h['p95']:.1f}, "
          f"req/s {q['rps'] / h['rps']:.3f}")
    for name, r in (("health", h), ("query", q)):
        c = r["cpu_ms"]
        print(f"  CPU ms per {name} request: gunicorn {c['app']:.2f} + postgres {c['db']:.2f} + "
              f"client {c['client']:.2f} = {sum(c.values()):.2f}; machine busy "
              f"{r['busy_share']:.0%}, other processes {r['other_share']:.0%} of its CPUs")
    t = timing_medians(q["payloads"])
    if t:
        print(f"  query responses: insufficient_context {t['insufficient']:.0%}; medians "
              f"total_latency_ms {t['total_latency_ms']:.0f} = retrieval {t['retrieval_ms']:.0f}"
              f" + generation {t['generation_ms']:.0f} + rest {t['rest_ms']:.0f}; outside the "
              f"pipeline (client p50 - total) {q['p50'] - t['total_latency_ms']:.1f} ms")
    print(flush=True)


def summary(results: dict, client_counts: list[int], args) -> None:
    print("summary (p50 / p95 ms, req/s; ratio = query / health in the same block):")
    print("  set         | clients | health p50 | query p50 | query p95 | query req/s | "
          "p50 ratio | req/s ratio | insufficient")
    for (label, clients), (h, q) in results.items():
        t = timing_medians(q["payloads"])
        print(f"  {label:<11} | {clients:7d} | {h['p50']:10.2f} | {q['p50']:9.2f} | "
              f"{q['p95']:9.2f} | {q['rps']:11.1f} | {q['p50'] / h['p50']:9.1f} | "
              f"{q['rps'] / h['rps']:11.3f} | {t.get('insufficient', 0):11.0%}")
    for (label, clients), (_, q) in results.items():
        if label != "demo":
            verdict = "met" if q["p50"] <= TARGET_P50_MS else "MISSED"
            print(f"  target query p50 <= {TARGET_P50_MS:g} ms on the {args.chunks}-chunk "
                  f"library ({label}, {clients} client{'s' if clients > 1 else ''}): "
                  f"{q['p50']:.1f} ms, {verdict}")


def report_splits(splits: dict) -> None:
    print(f"\nin process (django.test.Client, 1 thread, no HTTP), {SPLIT_QUERIES} queries per "
          f"set, medians:")
    print("  set         | wall ms | SQL stmts | SQL ms | Python ms | retrieval_ms | "
          "generation_ms | wall ms, 2nd pass  (SQL: statements + COMMITs, round trips "
          "included; 2nd pass: the same queries again, passages already analysed)")
    for label, split in splits.items():
        reqs = split["requests"]
        walls = [r["wall"] for r in reqs]
        sql_ms = [sum(ms for _, _, ms in r["sql"]) for r in reqs]
        stmts = [len(r["sql"]) for r in reqs]
        python = [w - s for w, s in zip(walls, sql_ms)]
        print(f"  {label:<11} | {statistics.median(walls):7.1f} | "
              f"{statistics.median(stmts):5.0f} ({min(stmts)}-{max(stmts)}) | "
              f"{statistics.median(sql_ms):6.1f} | {statistics.median(python):9.1f} | "
              f"{statistics.median(r['body']['retrieval_ms'] for r in reqs):12.0f} | "
              f"{statistics.median(r['body']['generation_ms'] for r in reqs):13.0f} | "
              f"{statistics.median(split['again']):17.1f}")


def report_profile(label: str, split: dict, profiler: cProfile.Profile) -> None:
    reqs = split["requests"]
    ordered = sorted(reqs, key=lambda r: r["wall"])
    median = ordered[len(ordered) // 2]
    print(f"\n[{label}] statements of the median request ({median['wall']:.1f} ms wall, "
          f"{len(median['sql'])} statements):")
    for sql, _, ms in median["sql"]:
        print(f"  {ms:7.2f} ms  {shape(sql)}")
    slowest = max(((sql, params, ms) for r in reqs for sql, params, ms in r["sql"]
                   if "ts_rank_cd" in sql), key=lambda row: row[2])
    print(f"\n[{label}] EXPLAIN (ANALYZE, BUFFERS) of the slowest retrieval statement "
          f"({slowest[2]:.1f} ms; params {str(slowest[1])[:160]}):")
    print("  " + explain(slowest[0], slowest[1]).replace("\n", "\n  "))
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(
        r"/(assistant|knowledge|billing|core|organizations)/", 30)
    stats.sort_stats("tottime").print_stats(15)
    print(f"\n[{label}] cProfile of {len(reqs)} in-process requests (profiler overhead "
          f"included):")
    print(out.getvalue())


if __name__ == "__main__":
    sys.exit(main())
