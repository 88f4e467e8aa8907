#!/usr/bin/env python
"""Hot path benchmark: the API-key quota read (`GET /v1/billings/subscription/`) against
`GET /health/` through a real gunicorn, with wrk, and the same read for an organization that
has made 4,000 queries in the period against one that has made none (docs/benchmarks.md,
"Hot path: the quota read").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/egret_bench python bench/hotpath.py
        [--seconds 8] [--rounds 3] [--connections 16] [--queries 4000] [--keep]

Throwaway database, as bench/billing.py (`egret_bench_<pid>`, dropped at the end unless
--keep). Through tests.servers.ServedApp: `migrate`, `egret_demo --no-library`, then gunicorn
with gunicorn.conf.py as deployed (its workers and threads, JSON logs), with what a production
request does left on: the `egret.request` line of every request (LOG_LEVEL=INFO, written to
the server's log file), the Prometheus metrics, the request id, and the per-principal
throttle (its rate raised so wrk is not answered 429; with REDIS_URL set, its counters are in
Redis as in production). Not part of CI; needs `wrk` on the PATH.

Two organizations on the Professional plan, each with an API key: "fresh" has made no query
in its period; "busy" has made --queries queries (each reserved and settled through
billing.services, as a query is: one charge entry in the ledger each). Then, in --rounds
rounds, one wrk run of --seconds per endpoint, the order rotated per round:

  health        GET /health/ (one SELECT 1: HTTP, gunicorn, middleware and a round trip)
  fresh         GET /v1/billings/subscription/ with the fresh organization's key
  busy          GET /v1/billings/subscription/ with the busy organization's key

Printed: requests/s, latency p50/p99, non-2xx and the CPU time per request of gunicorn and
of the PostgreSQL backends (from /proc, as bench/query.py) per run, and two ratios per round (each
taken between runs of the same round, so a slow moment of the shared machine weighs on both
sides): fresh / health (target >= 0.7) and busy / fresh (target >= 0.9).

--against PATH serves a second checkout (e.g. a `git worktree` of main) on the same database,
Redis and settings, and measures its three runs in the same rounds as this one's, so that a
change is compared with its baseline on the same machine at the same moments.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.billing import in_throwaway_database, machine  # noqa: E402
from bench.query import HZ, CpuMeter  # noqa: E402

THROTTLE = "1000000/s"
SUBSCRIPTION = "/v1/billings/subscription/"
TARGET_HEALTH = 0.7
TARGET_BUSY = 0.9
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, seconds: float, connections: int, api_key: str | None) -> dict:
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds:g}s", "--latency"]
    if api_key:
        command += ["-H", f"Authorization: Bearer {api_key}"]
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True,
                            timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)

    def latency(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)\b", output).groups()
        return float(value) * UNITS[unit]

    return {"rps": rps, "requests": requests, "p50": latency("50"), "p99": latency("99"),
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": errors.group(1) if errors else ""}


def organization_with_key(owner, slug: str):
    from organizations import services as org_services

    organization = org_services.organization_create(owner=owner, name=f"Bench {slug}",
                                                    slug=slug, plan_slug="professional")
    _, raw = org_services.api_key_create(organization, name="bench", created_by=owner)
    return organization, raw


def make_queries(organization, api_key_raw: str, count: int) -> None:
    """`count` queries' worth of billing, through the services a query goes through."""
    from django.db import transaction

    from billing import services as billing
    from core import keyformat
    from organizations.models import ApiKey

    key = ApiKey.objects.get(digest=keyformat.digest(api_key_raw))
    billing.credits_grant(organization, count, memo="benchmark")
    with transaction.atomic():  # one commit: the figures are the same, the setup faster
        for _ in range(count):
            reservation = billing.credits_reserve(organization, 1, actor_api_key=key,
                                                  model="extractive", domain="bench")
            billing.credits_settle(reservation)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per wrk run (8)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--queries", type=int, default=4000,
                        help="queries made by the busy organization in its period (4000)")
    parser.add_argument("--workers", type=int, default=min(4, multiprocessing.cpu_count() * 2),
                        help="gunicorn workers (gunicorn.conf.py's default)")
    parser.add_argument("--threads", type=int, default=8,
                        help="threads per worker (gunicorn.conf.py's default, 8)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--database", default=None,
                        help="name of the throwaway database (egret_bench_<pid>)")
    parser.add_argument("--against", type=Path, default=None, metavar="PATH",
                        help="another checkout to serve and measure in the same rounds")
    args = parser.parse_args()
    if args.against is not None and not (args.against / "gunicorn.conf.py").is_file():
        sys.exit(f"--against {args.against}: no gunicorn.conf.py there")
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL=postgres://user@host:port/anything (PostgreSQL only; a "
                 "throwaway database is created on that server and dropped at the end).")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install wrk).")
    os.environ["THROTTLE_RATE_DEFAULT"] = THROTTLE
    return in_throwaway_database(url, args.keep, lambda: run(args), name=args.database)


def run(args) -> int:
    from core.models import User
    from tests.servers import ServedApp

    print(f"machine: {machine()}", flush=True)
    began = time.perf_counter()
    owner = User.objects.create_user("hotpath@bench.example", "bench-password-42")
    fresh, fresh_key = organization_with_key(owner, "bench-fresh")
    busy, busy_key = organization_with_key(owner, "bench-busy")
    started = time.perf_counter()
    make_queries(busy, busy_key, args.queries)
    print(f"busy organization: {args.queries} queries reserved and settled in "
          f"{time.perf_counter() - started:.1f}s", flush=True)

    env = {"GUNICORN_MAX_REQUESTS": "0", "THROTTLE_RATE_DEFAULT": THROTTLE,
           "LOG_LEVEL": "INFO"}
    trees = {"this": ROOT} if args.against is None else {"this": ROOT, "against": args.against}
    with tempfile.TemporaryDirectory(prefix="egret-bench-hotpath-") as tmp:
        apps = {}
        try:
            for name, root in trees.items():
                (Path(tmp) / name).mkdir()
                app = apps[name] = ServedApp(
                    Path(tmp) / name, database_url=os.environ["DATABASE_URL"], library=False,
                    workers=args.workers, threads=args.threads, env=env, root=root)
                if name == "this":
                    app.prepare()  # migrate (done) and the demo data, once for both
                app.start()
            return measure(args, apps, fresh_key, busy_key, began)
        finally:
            for app in apps.values():
                app.stop()


def measure(args, apps: dict, fresh_key: str, busy_key: str, began: float) -> int:
    served = apps["this"].env()
    print(f"gunicorn -c gunicorn.conf.py: {served['GUNICORN_WORKERS']} workers x "
          f"{served['GUNICORN_THREADS']} threads; throttle counters in "
          f"{'Redis' if served.get('REDIS_URL') else 'local memory'}; request log on "
          f"(LOG_LEVEL=INFO); wrk -t2 -c{args.connections}, {args.seconds:g}s per run",
          flush=True)
    if "against" in apps:
        print(f"served side by side: this = {ROOT} ({revision(ROOT)}), against = "
              f"{args.against} ({revision(args.against)})", flush=True)
    for tree, app in apps.items():
        bodies = {}
        for label, key in (("fresh", fresh_key), ("busy", busy_key)):
            request = urllib.request.Request(app.url + SUBSCRIPTION,
                                             headers={"Authorization": f"Bearer {key}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                bodies[label] = json.loads(response.read())["current_quota"]
        print(f"quota read ({tree}): fresh credits_used={bodies['fresh']['credits_used']}, "
              f"busy credits_used={bodies['busy']['credits_used']}")
        if bodies["busy"]["credits_used"] != args.queries:
            sys.exit(f"busy organization shows {bodies['busy']['credits_used']} credits used, "
                     f"not {args.queries}")
    targets = {}
    for tree, app in apps.items():
        prefix = "" if len(apps) == 1 else f"{tree}:"
        targets.update({f"{prefix}health": (app, "/health/", None),
                        f"{prefix}fresh": (app, SUBSCRIPTION, fresh_key),
                        f"{prefix}busy": (app, SUBSCRIPTION, busy_key)})
    for app, path, key in targets.values():  # warm-up: every worker, every path
        wrk(app.url + path, 2, args.connections, key)
    runs: dict[str, list[dict]] = {label: [] for label in targets}
    order = list(targets)
    meters = {id(app): CpuMeter(app.process.pid) for app in apps.values()}
    width = max(len(label) for label in targets) + 1
    print(f"\nround | {'run':<{width}}|    req/s |  p50 ms |  p99 ms | non-2xx | CPU ms/request "
          f"(gunicorn + PostgreSQL) | other processes' share")
    for r in range(args.rounds):
        shift = r % len(order)
        for label in order[shift:] + order[:shift]:
            app, path, key = targets[label]
            meter = meters[id(app)]
            before = meter.snapshot()
            result = wrk(app.url + path, args.seconds, args.connections, key)
            cpu = CpuMeter.delta(before, meter.snapshot())
            total = sum(cpu.values()) or 1
            result["cpu_ms"] = ((cpu["app"] + cpu["db"]) / HZ * 1000
                                / max(1, result["requests"]))
            runs[label].append(result)
            print(f"{r + 1:>5} | {label:<{width}}| {result['rps']:8.0f} | {result['p50']:7.2f} | "
                  f"{result['p99']:7.2f} | {result['non_2xx']:>7} | "
                  f"{result['cpu_ms']:14.3f} | {cpu['other'] / total:5.0%} "
                  f"{result['socket_errors']}", flush=True)
    met = True
    for tree in apps:
        prefix = "" if len(apps) == 1 else f"{tree}:"
        if prefix:
            print(f"\n{tree}:")
        met &= summary({name: runs[prefix + name] for name in ("health", "fresh", "busy")},
                       args.queries)
    if len(apps) > 1:
        both = [t["rps"] / a["rps"] for t, a in zip(runs["this:fresh"], runs["against:fresh"])]
        print(f"\nquota read, this / against: median {statistics.median(both):.2f} (rounds "
              f"{', '.join(f'{x:.2f}' for x in both)})")
    errors = sum(x["non_2xx"] for rows in runs.values() for x in rows)
    print(f"non-2xx responses: {errors}; benchmark ran {time.perf_counter() - began:.0f}s")
    return 1 if errors else 0


def summary(runs: dict[str, list[dict]], queries: int) -> bool:
    fresh_ratio = [f["rps"] / h["rps"] for f, h in zip(runs["fresh"], runs["health"])]
    busy_ratio = [b["rps"] / f["rps"] for b, f in zip(runs["busy"], runs["fresh"])]
    print(f"mean req/s: health {statistics.mean(x['rps'] for x in runs['health']):.0f}, "
          f"fresh {statistics.mean(x['rps'] for x in runs['fresh']):.0f}, "
          f"busy {statistics.mean(x['rps'] for x in runs['busy']):.0f}")
    met_health = statistics.median(fresh_ratio) >= TARGET_HEALTH
    met_busy = statistics.median(busy_ratio) >= TARGET_BUSY
    print(f"subscription / health: median {statistics.median(fresh_ratio):.2f} (rounds "
          f"{', '.join(f'{x:.2f}' for x in fresh_ratio)}); target >= {TARGET_HEALTH}: "
          f"{'met' if met_health else 'MISSED'}")
    print(f"busy ({queries} queries) / fresh: median {statistics.median(busy_ratio):.2f} "
          f"(rounds {', '.join(f'{x:.2f}' for x in busy_ratio)}); target >= {TARGET_BUSY}: "
          f"{'met' if met_busy else 'MISSED'}")
    cpu = {label: statistics.median(x["cpu_ms"] for x in rows) for label, rows in runs.items()}
    print(f"CPU per request (gunicorn + PostgreSQL backends, median of the runs): health "
          f"{cpu['health']:.3f} ms, fresh {cpu['fresh']:.3f} ms, busy {cpu['busy']:.3f} ms; "
          f"health/fresh {cpu['health'] / cpu['fresh']:.2f}, fresh/busy "
          f"{cpu['fresh'] / cpu['busy']:.2f} (the throughput ratios a machine to itself would "
          f"give; wrk and Redis not counted)")
    return met_health and met_busy


def revision(root: Path) -> str:
    result = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h"],
                            capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                            "--untracked-files=no"], capture_output=True, text=True).stdout
    return (result.stdout.strip() or "?") + ("+changes" if dirty.strip() else "")


if __name__ == "__main__":
    sys.exit(main())
