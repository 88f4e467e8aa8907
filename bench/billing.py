#!/usr/bin/env python
"""Billing benchmark: credit reservations per second under concurrency (docs/benchmarks.md).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/egret_bench python bench/billing.py
        [--seconds 4] [--rounds 2] [--workers 1,8,32] [--no-prototypes] [--keep]

Throwaway database: the database named in DATABASE_URL is never used (it need not exist).
The script connects to the server's `postgres` maintenance database with the same
credentials, creates `egret_bench_<pid>`, runs `migrate` on it, benchmarks, and drops it at
the end, also after an error or Ctrl-C (`--keep` keeps it for inspection). The role needs
CREATEDB. PostgreSQL only: the point is row-lock contention.

What it measures, for each number of worker threads (each thread has its own connection, all
of them hammer the SAME organization's credit account, for a fixed time after a barrier):

  service      billing.services.credits_reserve(org, 1): the real code path. On PostgreSQL
               one autocommit statement (WITH moved AS (UPDATE ... RETURNING), held AS
               (INSERT reservation) INSERT ledger entry): the row lock is held for one round
               trip and the commit.
  baseline     UPDATE billing_creditaccount SET balance = balance - 1 WHERE organization_id
               = %s, autocommit: the floor cost of serializing on that row, nothing else.

and, for comparison:

  transaction  the same rows written as three statements in one transaction (the path SQLite
               uses): the row lock is also held across two INSERT round trips and the COMMIT.
  spread       credits_reserve with every worker on its OWN organization: the same code
               without row contention (the client/CPU ceiling on this machine).

Afterwards it checks that every organization's ledger still sums to its balance and that
each reservation has exactly one charge entry.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HUGE = 10**15  # credits granted to each benchmark organization: never exhausted
WARMUP_OPS = 20  # per thread, before the start barrier


# --- The throwaway database -------------------------------------------------------------------
def admin_connection(url: str):
    import psycopg

    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        sys.exit("bench/billing.py needs DATABASE_URL=postgres://... (PostgreSQL only).")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    return psycopg.connect(admin_url, autocommit=True)


def create_database(url: str, name: str) -> str:
    from psycopg import sql

    with admin_connection(url) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def drop_database(url: str, name: str) -> None:
    from psycopg import sql

    with admin_connection(url) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "egret.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 50)
    os.environ["DEBUG"] = "0"  # DEBUG would record every query in memory
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


# --- Fixtures ---------------------------------------------------------------------------------
def make_orgs(count: int, prefix: str) -> list:
    from billing import services
    from billing.models import LedgerEntry
    from core.models import User
    from organizations import services as org_services

    owner = User.objects.create_user(f"{prefix}@bench.example", "bench-password-42")
    orgs = []
    for i in range(count):
        org = org_services.organization_create(owner=owner, name=f"{prefix} {i}",
                                               slug=f"{prefix}-{i}", plan_slug="starter")
        services.credits_grant(org, HUGE, kind=LedgerEntry.Kind.TOP_UP, memo="benchmark")
        orgs.append(org.pk)
    return orgs


def load(org_pk):
    from organizations.models import Organization

    return Organization.objects.select_related("subscription", "plan").get(pk=org_pk)


# --- The operations (each factory runs once per thread and returns the per-op callable) -------
def op_service(org_pk):
    from billing import services

    org = load(org_pk)
    return lambda: services.credits_reserve(org, 1)


def op_baseline(org_pk):
    from django.db import connection

    from billing.models import CreditAccount

    table = connection.ops.quote_name(CreditAccount._meta.db_table)
    statement = f"UPDATE {table} SET balance = balance - 1 WHERE organization_id = %s"

    def run():
        with connection.cursor() as cursor:
            cursor.execute(statement, [org_pk])
            assert cursor.rowcount == 1

    return run


def op_transaction(org_pk):
    """The reservation as three statements in one transaction (the SQLite path, and what
    PostgreSQL used before the single statement): the row lock is held across two more round
    trips and the COMMIT."""
    from billing import services

    org = load(org_pk)
    return lambda: services._reserve_in_transaction(org, 1, {})


# --- Running ----------------------------------------------------------------------------------
def measure(factory, org_pks: list, workers: int, seconds: float) -> dict:
    """`workers` threads, thread i on org_pks[i % len(org_pks)], each running its op in a loop
    for `seconds` after a common start. Returns ops/s and latency percentiles (ms)."""
    from django.db import connection

    barrier = threading.Barrier(workers + 1)
    counts = [0] * workers
    latencies: list[list[float]] = [[] for _ in range(workers)]
    deadline = [0.0]

    def worker(i: int) -> None:
        try:
            op = factory(org_pks[i % len(org_pks)])
            for _ in range(WARMUP_OPS):
                op()
            barrier.wait(timeout=60)
            mine = latencies[i]
            clock = time.perf_counter
            while True:
                started = clock()
                op()
                ended = clock()
                if ended > deadline[0]:
                    break
                mine.append(ended - started)
            counts[i] = len(mine)
        except BaseException:
            barrier.abort()
            raise
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(worker, i) for i in range(workers)]
        try:
            deadline[0] = time.perf_counter() + 3600  # set properly once everyone is ready
            barrier.wait(timeout=120)
            deadline[0] = time.perf_counter() + seconds
        except threading.BrokenBarrierError:
            pass
        for future in futures:
            future.result()
    all_latencies = sorted(x for per_thread in latencies for x in per_thread)
    total = sum(counts)

    def pct(p: float) -> float:
        return all_latencies[min(len(all_latencies) - 1, int(p * len(all_latencies)))] * 1000

    return {"ops": total / seconds, "count": total, "p50": pct(0.50), "p99": pct(0.99)}


def round_trip_ms() -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        for _ in range(50):
            cursor.execute("SELECT 1")
        started = time.perf_counter()
        for _ in range(500):
            cursor.execute("SELECT 1")
            cursor.fetchone()
    return (time.perf_counter() - started) / 500 * 1000


def conservation_report(org_pks: list) -> list[str]:
    from django.db.models import Sum

    from billing.models import CreditAccount, LedgerEntry, Reservation

    problems = []
    for pk in org_pks:
        balance = CreditAccount.objects.get(organization_id=pk).balance
        total = LedgerEntry.objects.filter(organization_id=pk).aggregate(s=Sum("amount"))["s"]
        charges = LedgerEntry.objects.filter(organization_id=pk, kind="query_charge").count()
        reservations = Reservation.objects.filter(organization_id=pk).count()
        if balance != total or charges != reservations:
            problems.append(f"{pk}: balance {balance} ledger {total} charges {charges} "
                            f"reservations {reservations}")
    return problems


def machine() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version'), "
                       "current_setting('synchronous_commit'), current_setting('fsync')")
        version, sync, fsync = cursor.fetchone()
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
            f"PostgreSQL {version} on the same host (synchronous_commit={sync}, fsync={fsync})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="per variant and thread count (4)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="slices each measurement is split into, interleaved (2)")
    parser.add_argument("--workers", default="1,8,32", help="thread counts (1,8,32)")
    parser.add_argument("--no-prototypes", action="store_true",
                        help="only the service and the baseline")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",")]

    url = throwaway_server_url()
    return in_throwaway_database(url, args.keep, lambda: run(args, worker_counts))


def throwaway_server_url() -> str:
    """DATABASE_URL, or exit with how to set it: the server the throwaway database goes on."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        sys.exit("Set DATABASE_URL=postgres://user@host:port/anything (a throwaway database "
                 "egret_bench_<pid> is created on that server and dropped at the end).")
    return url


def in_throwaway_database(url: str, keep: bool, body, name: str | None = None) -> int:
    """Create `name` (egret_bench_<pid> by default) next to the database of `url`, migrate
    it, run `body`, and drop it at the end (also after an error or Ctrl-C) unless `keep`."""
    name = name or f"egret_bench_{os.getpid()}"
    admin_connection(url).close()  # fail early on a wrong URL
    bench_url = create_database(url, name)
    print(f"database {name} created (dropped at the end{'; --keep' if keep else ''})")
    try:
        started = time.perf_counter()
        setup_django(bench_url)
        print(f"migrated in {time.perf_counter() - started:.1f}s")
        return body()
    finally:
        from django.db import connections

        connections.close_all()
        if keep:
            print(f"kept database {name}")
        else:
            drop_database(url, name)
            print(f"database {name} dropped")


COMPARISONS = ("transaction", "spread")


def run(args, worker_counts: list[int]) -> int:
    started = time.perf_counter()
    widest = max(worker_counts)
    variants = {
        "service": (op_service, make_orgs(1, "service")),
        "baseline": (op_baseline, make_orgs(1, "baseline")),
    }
    if not args.no_prototypes:
        variants.update({
            "transaction": (op_transaction, make_orgs(1, "transaction")),
            "spread": (op_service, make_orgs(widest, "spread")),
        })
    print(f"machine: {machine()}")
    print(f"round trip (SELECT 1): {round_trip_ms():.3f} ms")
    print(f"{args.seconds:g}s per measurement in {args.rounds} interleaved slices; threads in "
          f"one process, one connection each\n")

    # Each measurement is split into `rounds` slices, the variants interleaved, so a slow
    # moment of a shared machine does not land on one variant only.
    results: dict[tuple[str, int], dict] = {}
    slice_seconds = args.seconds / args.rounds
    for workers in worker_counts:
        slices: dict[str, list[dict]] = {label: [] for label in variants}
        for _ in range(args.rounds):
            for label, (factory, orgs) in variants.items():
                slices[label].append(measure(factory, orgs, workers, slice_seconds))
        for label, runs in slices.items():
            r = results[label, workers] = {
                "ops": statistics.mean(x["ops"] for x in runs),
                "p50": statistics.median(x["p50"] for x in runs),
                "p99": max(x["p99"] for x in runs),
                "spread": (min(x["ops"] for x in runs), max(x["ops"] for x in runs)),
            }
            print(f"  {label:>11} x{workers:<3} {r['ops']:7.0f} ops/s "
                  f"(slices {r['spread'][0]:.0f}..{r['spread'][1]:.0f})   "
                  f"p50 {r['p50']:6.2f} ms   p99 {r['p99']:7.2f} ms", flush=True)

    print("\nworkers | service ops/s | baseline ops/s | ratio")
    print("--------|---------------|----------------|------")
    for workers in worker_counts:
        s, b = results["service", workers]["ops"], results["baseline", workers]["ops"]
        print(f"{workers:7d} | {s:13.0f} | {b:14.0f} | {s / b:5.0%}")

    if not args.no_prototypes:
        print("\nfor comparison, ops/s (ratio to the baseline):")
        print("workers | " + " | ".join(f"{label:>13}" for label in COMPARISONS))
        print("--------|" + "|".join("-" * 15 for _ in COMPARISONS))
        for workers in worker_counts:
            b = results["baseline", workers]["ops"]
            cells = []
            for label in COMPARISONS:
                ops = results[label, workers]["ops"]
                cells.append(f"{ops:6.0f} ({ops / b:4.0%})")
            print(f"{workers:7d} | " + " | ".join(f"{cell:>13}" for cell in cells))

    problems = conservation_report([pk for label, (_, orgs) in variants.items()
                                    if label != "baseline" for pk in orgs])
    print("\nledger == balance for every organization the service or a prototype charged: "
          + ("yes" if not problems else "NO\n  " + "\n  ".join(problems)))
    print(f"benchmark ran {time.perf_counter() - started:.0f}s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
