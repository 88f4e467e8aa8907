#!/usr/bin/env python
"""Webhooks benchmark: what recording events costs the charge path, events recorded per
second under query load, and delivery lag (docs/benchmarks.md).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/egret_bench python bench/webhooks.py
        [--seconds 6] [--rounds 3] [--query-workers 8] [--event-workers 2] [--keep]

A throwaway database `egret_bench_<pid>` is created, migrated and dropped as in
bench/billing.py (PostgreSQL only). Deliveries go to a local receiver (a threaded
http.server on 127.0.0.1; EGRET_WEBHOOKS_ALLOW_PRIVATE/ALLOW_HTTP are set for this process).

1. The charge path. `credits_reserve(org, 1)` with no threshold crossed (the common case),
   against the same call whose statement has the alerts part replaced by an empty one (what
   the charge cost before events existed), both measured here in interleaved slices.
2. Events under query load. `--query-workers` threads charge one organization while
   `--event-workers` threads top up other organizations by 1 credit (each top-up records a
   `credits.granted` event in its transaction) and the embedded default's background thread
   delivers them to the receiver. Reported: events recorded per second, queries per second
   against queries alone (the baseline, interleaved), and delivery lag (event created → POST
   received) p50/p95/max for the events of the run.
"""

from __future__ import annotations

import argparse
import http.server
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.billing import (in_throwaway_database, load, machine, make_orgs,  # noqa: E402
                           measure, op_service)

received: dict[str, float] = {}  # event id -> wall-clock arrival


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        received[self.headers["Egret-Event-Id"]] = time.time()
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def start_receiver() -> int:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def op_service_without_alerts(org_pk):
    """The charge statement with an `alerts` part that can never insert: the cost of the charge
    without event recording, for comparison."""
    from django.db import connection

    from billing import services

    statement = services._reserve_statement().replace(
        services._alerts_statement(), "alerts AS (SELECT 1 WHERE false)")
    org = load(org_pk)
    base = {"id": None, "org": org.pk, "amount": 1, "reserved": "reserved",
            "kind": "query_charge", "actor_user_id": None, "actor_api_key_id": None,
            "idempotency_key": None, "session_id": None, "message_id": None,
            "comparison_id": None, "model": "", "domain": "",
            "memo": ""}

    def run() -> None:
        import uuid

        with connection.cursor() as cursor:
            cursor.execute(statement, {**base, "id": uuid.uuid4()})
            assert cursor.fetchone() is not None

    return run


def op_top_up(org_pk):
    from billing import services

    org = load(org_pk)
    return lambda: services.credits_grant(org, 1, kind="top_up", memo="bench")


def slices(variants: dict, workers: int, seconds: float, rounds: int) -> dict:
    runs: dict[str, list[dict]] = {label: [] for label in variants}
    for _ in range(rounds):
        for label, (factory, orgs) in variants.items():
            runs[label].append(measure(factory, orgs, workers, seconds / rounds))
    return {label: {"ops": statistics.mean(r["ops"] for r in rs),
                    "p50": statistics.median(r["p50"] for r in rs)} for label, rs in runs.items()}


def under_load(query_org, event_orgs, args) -> dict:
    """Queries and top-ups at the same time; returns both rates and the events recorded."""
    from webhooks.models import Event

    before = Event.objects.count()
    results: dict = {}

    def queries() -> None:
        results["queries"] = measure(op_service, [query_org], args.query_workers, args.seconds)

    thread = threading.Thread(target=queries)
    thread.start()
    results["events"] = measure(op_top_up, event_orgs, args.event_workers, args.seconds)
    thread.join()
    results["recorded"] = Event.objects.count() - before
    return results


def lag_report(since) -> dict:
    from webhooks import dispatch
    from webhooks.models import Event

    deadline = time.time() + 120
    events = list(Event.objects.filter(created_at__gte=since, type="credits.granted")
                  .values_list("id", "created_at"))
    while time.time() < deadline and sum(f"evt_{e.hex}" in received for e, _ in events) < \
            len(events):
        time.sleep(0.2)
    dispatch.wait(5)
    lags = sorted(received[f"evt_{e.hex}"] - created.timestamp() for e, created in events
                  if f"evt_{e.hex}" in received)
    if not lags:
        return {"delivered": 0, "of": len(events)}

    def pct(p: float) -> float:
        return lags[min(len(lags) - 1, int(p * len(lags)))] * 1000

    return {"delivered": len(lags), "of": len(events), "p50": pct(0.5), "p95": pct(0.95),
            "max": lags[-1] * 1000}


def run(args) -> int:
    from django.utils import timezone

    from organizations.models import Organization
    from webhooks import services as webhooks

    print(f"machine: {machine()}")
    port = start_receiver()
    plain, stripped = make_orgs(1, "plain"), make_orgs(1, "stripped")
    # thresholds that a benchmark organization (10^15 credits) never reaches
    Organization.objects.update(credit_alert_thresholds=[80, 95])
    print("\n1. Charge path, no threshold crossed (credits_reserve ops/s; p50 ms)")
    for workers in (1, 8):
        r = slices({"with alerts": (op_service, plain),
                    "without (baseline)": (op_service_without_alerts, stripped)},
                   workers, args.seconds, args.rounds)
        a, b = r["with alerts"], r["without (baseline)"]
        print(f"  {workers} thread(s): with alerts {a['ops']:7.0f}/s p50 {a['p50']:.2f} ms | "
              f"baseline {b['ops']:7.0f}/s p50 {b['p50']:.2f} ms | ratio "
              f"{a['ops'] / b['ops']:.2f}")

    query_org = make_orgs(1, "load")
    event_orgs = make_orgs(args.event_workers, "events")
    for org_pk in event_orgs:
        webhooks.endpoint_create(Organization.objects.get(pk=org_pk),
                                 url=f"http://127.0.0.1:{port}/hook", events=["*"])
    print(f"\n2. {args.query_workers} query threads + {args.event_workers} event threads, "
          f"{args.seconds:g}s, deliveries by the in-process thread")
    alone = measure(op_service, query_org, args.query_workers, args.seconds)
    since = timezone.now()
    loaded = under_load(query_org[0], event_orgs, args)
    lag = lag_report(since)
    q = loaded["queries"]
    print(f"  queries alone      {alone['ops']:7.0f}/s p50 {alone['p50']:.2f} ms")
    print(f"  queries + events   {q['ops']:7.0f}/s p50 {q['p50']:.2f} ms (ratio "
          f"{q['ops'] / alone['ops']:.2f})")
    print(f"  events recorded    {loaded['recorded'] / args.seconds:7.0f}/s "
          f"(top-ups p50 {loaded['events']['p50']:.2f} ms)")
    if lag["delivered"]:
        print(f"  delivered {lag['delivered']}/{lag['of']}; lag p50 {lag['p50']:.0f} ms, "
              f"p95 {lag['p95']:.0f} ms, max {lag['max']:.0f} ms")
    else:
        print(f"  delivered 0/{lag['of']}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--query-workers", type=int, default=8)
    parser.add_argument("--event-workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    os.environ["EGRET_WEBHOOKS_ALLOW_PRIVATE"] = os.environ["EGRET_WEBHOOKS_ALLOW_HTTP"] = "1"
    os.environ["EGRET_TASKS_BACKEND"] = "immediate"
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        sys.exit("Set DATABASE_URL=postgres://user@host:port/anything.")
    return in_throwaway_database(url, args.keep, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
