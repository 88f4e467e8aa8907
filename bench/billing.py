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

  service   billing.services.credits_reserve(org, 1): the real code path (ORM, one
            transaction: UPDATE ... RETURNING, INSERT reservation, INSERT ledger entry).
  baseline  UPDATE billing_creditaccount SET balance = balance - 1 WHERE organization_id = %s,
            autocommit: the floor cost of serializing on that row, nothing else.

and, as prototypes to explain the gap (they do not change billing/services.py):

  raw-tx    the service's three statements over a raw cursor in one transaction (no ORM):
            separates Python/ORM cost from round trips made while the row lock is held.
  2-stmt    the UPDATE as it is, then both INSERTs merged into one statement (a data-modifying
            CTE), same transaction: one round trip less under the lock.
  cte       one autocommit statement, WITH moved AS (UPDATE ... RETURNING), res AS (INSERT
            reservation) INSERT ledger entry: the same rows as the service, one round trip,
            the lock held only for the statement and its commit.
  spread    credits_reserve with every worker on its OWN organization: the same code without
            row contention (the client/CPU ceiling on this machine).

It also profiles the service path (time from the account UPDATE returning, i.e. the row lock
taken, to COMMIT done, i.e. the lock released; and statements per reservation) and checks
afterwards that every organization's ledger still sums to its balance.
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


def _tables():
    from django.db import connection

    from billing.models import CreditAccount, LedgerEntry, Reservation

    q = connection.ops.quote_name
    return (q(CreditAccount._meta.db_table), q(Reservation._meta.db_table),
            q(LedgerEntry._meta.db_table))


RESERVATION_COLUMNS = ("id, organization_id, amount, status, period_start, session_id, "
                       "message_id, created_at, finished_at")
LEDGER_COLUMNS = ("organization_id, kind, amount, balance_after, period_start, actor_user_id, "
                  "actor_api_key_id, reservation_id, session_id, message_id, model, domain, "
                  "idempotency_key, memo, created_at")


def op_raw_tx(org_pk):
    """The service's statements, as the service sends them, minus the ORM."""
    import uuid

    from django.db import connection, transaction
    from django.utils import timezone

    account, reservation, ledger = _tables()
    update = (f"UPDATE {account} SET balance = balance - %s, updated_at = %s "
              f"WHERE organization_id = %s AND balance - %s >= 0 RETURNING balance, period_start")
    insert_reservation = (f"INSERT INTO {reservation} ({RESERVATION_COLUMNS}) "
                          f"VALUES (%s, %s, %s, 'reserved', %s, NULL, NULL, %s, NULL)")
    insert_entry = (f"INSERT INTO {ledger} ({LEDGER_COLUMNS}) VALUES (%s, 'query_charge', %s, "
                    f"%s, %s, NULL, NULL, %s, NULL, NULL, '', '', NULL, '', %s) RETURNING id")

    def run():
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(update, [1, now, org_pk, 1])
            balance_after, period_start = cursor.fetchone()
            rid = uuid.uuid4()
            cursor.execute(insert_reservation, [rid, org_pk, 1, period_start, now])
            cursor.execute(insert_entry, [org_pk, -1, balance_after, period_start, rid, now])

    return run


def op_two_statements(org_pk):
    """The service's UPDATE as it is, then both INSERTs as one statement, in one transaction:
    one round trip less with the row lock held."""
    from django.db import connection, transaction

    account, reservation, ledger = _tables()
    update = (f"UPDATE {account} SET balance = balance - %(amount)s, "
              f"updated_at = clock_timestamp() "
              f"WHERE organization_id = %(org)s AND balance - %(amount)s >= 0 "
              f"RETURNING balance, period_start")
    inserts = (f"WITH held AS (INSERT INTO {reservation} ({RESERVATION_COLUMNS}) "
               f"VALUES (gen_random_uuid(), %(org)s, %(amount)s, 'reserved', %(period)s, NULL, "
               f"NULL, clock_timestamp(), NULL) RETURNING id, organization_id, period_start) "
               f"INSERT INTO {ledger} ({LEDGER_COLUMNS}) "
               f"SELECT organization_id, 'query_charge', -%(amount)s, %(after)s, period_start, "
               f"NULL, NULL, id, NULL, NULL, '', '', NULL, '', clock_timestamp() FROM held "
               f"RETURNING id")

    def run():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(update, {"amount": 1, "org": org_pk})
            after, period = cursor.fetchone()
            cursor.execute(inserts, {"amount": 1, "org": org_pk, "after": after,
                                     "period": period})

    return run


# clock_timestamp(), not now(): now() is the statement's start, before it waited for the row
# lock, so created_at order would disagree with balance_after order under contention.
CTE = """
WITH moved AS (
    UPDATE {account} SET balance = balance - %(amount)s, updated_at = clock_timestamp()
    WHERE organization_id = %(org)s AND balance - %(amount)s >= 0
    RETURNING organization_id, balance, period_start
), held AS (
    INSERT INTO {reservation} ({reservation_columns})
    SELECT gen_random_uuid(), organization_id, %(amount)s, 'reserved', period_start, NULL, NULL,
           clock_timestamp(), NULL
    FROM moved
    RETURNING id
)
INSERT INTO {ledger} ({ledger_columns})
SELECT moved.organization_id, 'query_charge', -%(amount)s, moved.balance, moved.period_start,
       NULL, NULL, held.id, NULL, NULL, '', '', NULL, '', clock_timestamp()
FROM moved, held
RETURNING reservation_id, balance_after
"""


def op_cte(org_pk):
    """One statement, autocommit: UPDATE ... RETURNING feeding both INSERTs."""
    from django.db import connection

    account, reservation, ledger = _tables()
    statement = CTE.format(account=account, reservation=reservation, ledger=ledger,
                           reservation_columns=RESERVATION_COLUMNS,
                           ledger_columns=LEDGER_COLUMNS)

    def run():
        with connection.cursor() as cursor:
            cursor.execute(statement, {"amount": 1, "org": org_pk})
            if cursor.fetchone() is None:
                raise RuntimeError("credits exhausted")  # the service would raise 402

    return run


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


def profile_service(org_pk, workers: int, seconds: float) -> dict:
    """Per reservation through the service: statements sent, time with the row lock held
    (account UPDATE returned -> COMMIT finished) and wall time, at `workers` threads."""
    from django.db import connection, transaction

    from billing.models import CreditAccount

    table = CreditAccount._meta.db_table
    holds: list[float] = []
    statements = [0]
    ops = [0]
    lock = threading.Lock()

    def factory(pk):
        run = op_service(pk)

        def wrapper(execute, sql, params, many, context):
            result = execute(sql, params, many, context)
            with lock:
                statements[0] += 1
            if sql.startswith("UPDATE") and table in sql:
                taken = time.perf_counter()
                transaction.on_commit(
                    lambda: holds.append(time.perf_counter() - taken))
            return result

        def op():
            with connection.execute_wrapper(wrapper):
                run()
            with lock:
                ops[0] += 1

        return op

    result = measure(factory, [org_pk], workers, seconds)
    result.update(
        hold_ms=statistics.mean(holds) * 1000,
        hold_p99_ms=sorted(holds)[int(0.99 * len(holds))] * 1000,
        statements=statements[0] / max(1, ops[0]),
    )
    return result


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

    url = os.environ.get("DATABASE_URL", "")
    if not url:
        sys.exit("Set DATABASE_URL=postgres://user@host:port/anything (a throwaway database "
                 "egret_bench_<pid> is created on that server and dropped at the end).")
    name = f"egret_bench_{os.getpid()}"
    admin_connection(url).close()  # fail early on a wrong URL
    bench_url = create_database(url, name)
    print(f"database {name} created (dropped at the end{'; --keep' if args.keep else ''})")
    try:
        started = time.perf_counter()
        setup_django(bench_url)
        print(f"migrated in {time.perf_counter() - started:.1f}s")
        return run(args, worker_counts)
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"kept database {name}")
        else:
            drop_database(url, name)
            print(f"database {name} dropped")


def run(args, worker_counts: list[int]) -> int:
    started = time.perf_counter()
    widest = max(worker_counts)
    variants = {
        "service": (op_service, make_orgs(1, "service")),
        "baseline": (op_baseline, make_orgs(1, "baseline")),
    }
    if not args.no_prototypes:
        variants.update({
            "raw-tx": (op_raw_tx, make_orgs(1, "rawtx")),
            "2-stmt": (op_two_statements, make_orgs(1, "twostmt")),
            "cte": (op_cte, make_orgs(1, "cte")),
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
            print(f"  {label:>8} x{workers:<3} {r['ops']:7.0f} ops/s "
                  f"(slices {r['spread'][0]:.0f}..{r['spread'][1]:.0f})   "
                  f"p50 {r['p50']:6.2f} ms   p99 {r['p99']:7.2f} ms", flush=True)

    print("\nworkers | service ops/s | baseline ops/s | ratio")
    print("--------|---------------|----------------|------")
    for workers in worker_counts:
        s, b = results["service", workers]["ops"], results["baseline", workers]["ops"]
        print(f"{workers:7d} | {s:13.0f} | {b:14.0f} | {s / b:5.0%}")

    if not args.no_prototypes:
        labels = ("raw-tx", "2-stmt", "cte", "spread")
        print("\nprototypes, ops/s (ratio to the baseline):")
        print("workers | " + " | ".join(f"{label:>13}" for label in labels))
        print("--------|" + "|".join("-" * 15 for _ in labels))
        for workers in worker_counts:
            b = results["baseline", workers]["ops"]
            cells = []
            for label in labels:
                ops = results[label, workers]["ops"]
                cells.append(f"{ops:6.0f} ({ops / b:4.0%})")
            print(f"{workers:7d} | " + " | ".join(f"{cell:>13}" for cell in cells))

        print("\nprofile of the service path (row lock held = account UPDATE returned -> "
              "COMMIT done):")
        profile_org = make_orgs(1, "profile")[0]
        for workers in sorted({1, 8} | {w for w in worker_counts if w <= 8}):
            p = profile_service(profile_org, workers, min(args.seconds, 2.0))
            print(f"  x{workers:<3} {p['ops']:7.0f} ops/s  lock held mean {p['hold_ms']:.3f} ms "
                  f"(p99 {p['hold_p99_ms']:.3f})  "
                  f"1/hold = {1000 / p['hold_ms']:6.0f}/s  "
                  f"statements/op {p['statements']:.2f} (+ BEGIN, COMMIT)")

    problems = conservation_report([pk for label, (_, orgs) in variants.items()
                                    if label != "baseline" for pk in orgs])
    print("\nledger == balance for every organization the service or a prototype charged: "
          + ("yes" if not problems else "NO\n  " + "\n  ".join(problems)))
    print(f"benchmark ran {time.perf_counter() - started:.0f}s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
