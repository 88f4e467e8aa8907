#!/usr/bin/env python
"""Streamed answers at scale: N concurrent `POST /v1/query/` with `"stream": true` through one
gunicorn started with gunicorn.conf.py, on PostgreSQL, against an OpenAI-compatible model
that takes a set time to answer (docs/benchmarks.md, "Streamed answers at scale").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/anything python bench/streams.py
        [--streams 256] [--answer-seconds 3] [--chunks 40] [--rounds 1]
        [--baseline-tree /path/to/other/checkout] [--env NAME=VALUE ...]
        [--database egret_streams_<pid>] [--keep]

  1. model    a stand-in OpenAI-compatible server (`StandInModel`, standard library only, in
              a child process): `POST /v1/chat/completions` with `stream: true` answers with
              Server-Sent Events, --chunks `chat.completion.chunk`s spread evenly over
              --answer-seconds (each a few words citing [1]), then a chunk with
              finish_reason "stop", one with the usage, and `data: [DONE]`.
  2. data     a throwaway database (--database, dropped at the end unless --keep) on the
              server of DATABASE_URL: `migrate`, `egret_demo` (the demo library, the org
              "demo" on `starter` and its API key), a top-up that outlasts the run, and an
              `AIModel` row `stand-in` (provider openai, options.base_url = the stand-in).
  3. serve    gunicorn -c gunicorn.conf.py from this checkout (and, with --baseline-tree,
              from that one: another checkout's code and config on the same database, for a
              before/after in the same run), access log off, throttles raised, no
              max_requests; --env adds settings to this checkout's server only. Each server
              runs alone: started for its measurement, stopped after it.
  4. load     per round and server: a warm-up of a few streams, then --streams streamed
              queries opened at once (asyncio, one connection each, the 242 library
              questions of knowledge/eval/ in turn, model `stand-in`), while /health/ is
              asked one request after the other, and pg_stat_activity is polled for the
              bench database every 20 ms. Printed: wall ÷ answer time, first line and
              completion p50/p95, /health/ p50/p95 during the load, the most connections to
              the database seen, CPU time of gunicorn's processes per answer and the
              kernel's share of it (/proc), errors (a status other than 200, a stream
              without `done`, a connection error), and
              credits charged (balance before − after) against the `credits_used` of the
              `done` lines; then no reservation may be left `reserved`, and `billing_verify`
              must find no difference.

The machine is shared: other processes' CPU during each load is printed too ("other").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HUGE = 10**9
THROTTLE = "1000000/s"
MODEL_ID = "stand-in"
EVAL = ROOT / "knowledge" / "eval"
HZ = os.sysconf("SC_CLK_TCK")
WORDS = ("The policy requires a review of the plan at least once a year and after any "
         "significant change to the business, its systems or its suppliers [1]. ").split(" ")


# --- the stand-in model ------------------------------------------------------------------------
class StandInModel:
    """An OpenAI-compatible Chat Completions server on asyncio streams (standard library):
    every request gets `chunks` content deltas spread over `seconds`, then finish and usage."""

    def __init__(self, seconds: float, chunks: int) -> None:
        self.seconds, self.chunks = seconds, chunks

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
                body = json.loads(await reader.readexactly(length)) if length else {}
                if not head.startswith(b"POST ") or b"/chat/completions" not in head.split(
                        b"\r\n", 1)[0]:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 27\r\n\r\n{\"error\":{\"message\":\"no\"}}")
                    await writer.drain()
                    continue
                if not body.get("stream"):
                    text = " ".join(WORDS[:40])
                    payload = json.dumps({
                        "id": "chatcmpl-standin", "object": "chat.completion", "created": 0,
                        "model": body.get("model", "stand-in"),
                        "choices": [{"index": 0, "finish_reason": "stop", "message": {
                            "role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 40,
                                  "total_tokens": 140}}).encode()
                    await asyncio.sleep(self.seconds)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n" % len(payload) + payload)
                    await writer.drain()
                    continue
                await self.stream(writer, body.get("model", "stand-in"))
                return
        except (asyncio.IncompleteReadError, ConnectionError, AttributeError, ValueError):
            pass
        finally:
            writer.close()

    async def stream(self, writer: asyncio.StreamWriter, model: str) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n")
        base = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 0,
                "model": model}

        def event(choices, usage=None) -> bytes:
            return b"data: " + json.dumps({**base, "choices": choices, "usage": usage}
                                          ).encode() + b"\n\n"

        loop = asyncio.get_running_loop()
        started = loop.time()
        step = self.seconds / self.chunks
        for i in range(self.chunks):
            words = WORDS[(i * 3) % len(WORDS):(i * 3) % len(WORDS) + 3] or WORDS[:3]
            delta = {"content": " ".join(words) + " "}
            if i == 0:
                delta["role"] = "assistant"
            wait = started + step * (i + 1) - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(event([{"index": 0, "delta": delta, "finish_reason": None}]))
            await writer.drain()
        writer.write(event([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
        writer.write(event([], {"prompt_tokens": 100, "completion_tokens": self.chunks * 3,
                                "total_tokens": 100 + self.chunks * 3}))
        writer.write(b"data: [DONE]\n\n")
        await writer.drain()

    def start_in_thread(self) -> tuple[int, Callable[[], None]]:
        """Serve from a daemon thread of this process; returns the port and a stop function."""
        ready = threading.Event()
        box: dict = {}

        async def main():
            server = await asyncio.start_server(self.handle, "127.0.0.1", 0, backlog=4096)
            box["port"] = server.sockets[0].getsockname()[1]
            box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()
            ready.set()
            async with server:
                await box["stop"].wait()

        thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        thread.start()
        if not ready.wait(10):
            raise RuntimeError("the stand-in model did not start")

        def stop() -> None:
            box["loop"].call_soon_threadsafe(box["stop"].set)
            thread.join(10)

        return box["port"], stop

    def serve(self, port_box) -> None:
        async def main():
            server = await asyncio.start_server(self.handle, "127.0.0.1", 0, backlog=4096)
            port_box.value = server.sockets[0].getsockname()[1]
            async with server:
                await server.serve_forever()

        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        asyncio.run(main())


def start_stand_in(seconds: float, chunks: int) -> tuple[multiprocessing.Process, int]:
    port = multiprocessing.Value("i", 0)
    process = multiprocessing.Process(target=StandInModel(seconds, chunks).serve, args=(port,),
                                      daemon=True)
    process.start()
    deadline = time.monotonic() + 10
    while not port.value and time.monotonic() < deadline:
        time.sleep(0.02)
    if not port.value:
        raise RuntimeError("the stand-in model did not start")
    return process, port.value


# --- database ----------------------------------------------------------------------------------
def admin_connection(url: str):
    import psycopg

    return psycopg.connect(urlunsplit(urlsplit(url)._replace(path="/postgres")), autocommit=True)


def prepare_database(url: str, name: str, model_port: int, reuse: bool) -> tuple[str, str]:
    """Create and fill the bench database (or, with `reuse`, bring a kept one up to date);
    returns its URL and a fresh demo API key."""
    from psycopg import sql

    with admin_connection(url) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                               (name,)).fetchone()
        if not (reuse and exists):
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    bench_url = urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "egret.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 50)
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("EGRET_VAR_DIR", tempfile.mkdtemp(prefix="egret-bench-streams-"))
    import io

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    out = io.StringIO()
    call_command("egret_demo", stdout=out)
    api_key = re.search(r"Demo API key:\s+(\S+)", out.getvalue()).group(1)

    from assistant.models import AIModel
    from billing import services as billing
    from billing.models import LedgerEntry
    from organizations.models import Organization

    billing.credits_grant(Organization.objects.get(slug="demo"), HUGE,
                          kind=LedgerEntry.Kind.TOP_UP, memo="benchmark")
    AIModel.objects.update_or_create(id=MODEL_ID, defaults={
        "name": "Stand-in model", "provider": "openai", "provider_model": "stand-in",
        "tier": "standard", "credits_per_query": 1,
        "options": {"base_url": f"http://127.0.0.1:{model_port}/v1", "max_tokens": 400}})
    from django.db import connections

    connections.close_all()
    return bench_url, api_key


def books(url: str) -> dict:
    import psycopg

    for attempt in range(60):  # the server may be out of connections for a moment
        try:
            db = psycopg.connect(url, autocommit=True)
            break
        except psycopg.OperationalError:
            if attempt == 59:
                raise
            time.sleep(1)
    with db:
        balance = db.execute(
            "SELECT balance FROM billing_creditaccount WHERE organization_id = "
            "(SELECT id FROM organizations_organization WHERE slug = 'demo')").fetchone()[0]
        reserved = db.execute("SELECT COUNT(*) FROM billing_reservation "
                              "WHERE status = 'reserved'").fetchone()[0]
    return {"balance": balance, "reserved": reserved}


class ConnectionWatch(threading.Thread):
    """The most connections to `database` seen in pg_stat_activity, polled every 20 ms from
    a connection to another database (so it does not count itself)."""

    def __init__(self, url: str, database: str) -> None:
        super().__init__(daemon=True)
        self.url, self.database = url, database
        self.most = 0
        self.running = threading.Event()
        self.stopped = threading.Event()

    def run(self) -> None:
        with admin_connection(self.url) as admin:
            while not self.stopped.is_set():
                if self.running.is_set():
                    count = admin.execute("SELECT COUNT(*) FROM pg_stat_activity "
                                          "WHERE datname = %s", (self.database,)).fetchone()[0]
                    self.most = max(self.most, count)
                time.sleep(0.02)


# --- the server under test -----------------------------------------------------------------------
class Server:
    def __init__(self, tree: Path, database_url: str, env: dict, var_dir: Path,
                 label: str) -> None:
        self.tree, self.label = tree, label
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        self.env.update({
            "DATABASE_URL": database_url, "SECRET_KEY": "bench-only-" + "x" * 50, "DEBUG": "0",
            "SECURE_SSL_REDIRECT": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "EGRET_VAR_DIR": str(var_dir), "LOG_LEVEL": "WARNING",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}", "GUNICORN_ACCESSLOG": "",
            "GUNICORN_MAX_REQUESTS": "0", "THROTTLE_RATE_QUERY": THROTTLE,
            "THROTTLE_RATE_DEFAULT": THROTTLE, "PYTHONUNBUFFERED": "1", **env})
        self.log_path = var_dir / f"gunicorn-{label}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"], cwd=self.tree,
            env=self.env, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(self.log_path.read_text()[-3000:])
            try:
                status, _ = asyncio.run(get(self.port, "/health/"))
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not become healthy")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cpu_jiffies(self) -> tuple[int, int]:
        """(utime + stime, stime) of the master and every process below it."""
        total, system, children = 0, 0, {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(
                (int(entry.name), int(fields[11]) + int(fields[12]), int(fields[12])))
        todo = [self.process.pid]
        with open(f"/proc/{self.process.pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            system += int(fields[12])
        while todo:
            for pid, jiffies, kernel in children.get(todo.pop(), []):
                total += jiffies
                system += kernel
                todo.append(pid)
        return total, system


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def machine_busy() -> int:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return sum(values[:8]) - values[3] - values[4]


# --- the client ----------------------------------------------------------------------------------
async def read_body(reader: asyncio.StreamReader, headers: bytes):
    """Yield the body's bytes as they arrive (chunked or until close)."""
    if re.search(rb"(?i)transfer-encoding:\s*chunked", headers):
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                return
            yield await reader.readexactly(size)
            await reader.readexactly(2)
    match = re.search(rb"(?i)content-length:\s*(\d+)", headers)
    if match:
        yield await reader.readexactly(int(match.group(1)))
        return
    while True:
        data = await reader.read(65536)
        if not data:
            return
        yield data


async def request(port: int, method: str, path: str, body: bytes = b"",
                  headers: dict | None = None):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    await writer.drain()
    response_head = await reader.readuntil(b"\r\n\r\n")
    status = int(response_head.split(b" ", 2)[1])
    return reader, writer, status, response_head


async def get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer, status, head = await request(port, "GET", path)
    try:
        body = b"".join([part async for part in read_body(reader, head)])
    finally:
        writer.close()
    return status, body


@dataclass
class Stream:
    first_line: float | None = None
    done: float | None = None
    error: str = ""
    credits: int = 0
    insufficient: bool = False


async def one_stream(port: int, api_key: str, question: dict, started: float) -> Stream:
    result = Stream()
    body = json.dumps({"query": question["question"], "domain": question["domain"],
                       "category": question["category"], "mode": "compliance",
                       "model": MODEL_ID, "stream": True}).encode()
    writer = None
    try:
        reader, writer, status, head = await request(
            port, "POST", "/v1/query/", body,
            {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"})
        if status != 200:
            result.error = f"HTTP {status}"
            return result
        pending = b""
        last = None
        async for data in read_body(reader, head):
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if not line:
                    continue
                if result.first_line is None:
                    result.first_line = time.perf_counter() - started
                last = json.loads(line)
                if last["type"] == "sources":
                    result.insufficient = last["insufficient_context"]
        if last is None or last["type"] != "done":
            result.error = f"stream ended with {last and last['type']}"
        else:
            result.done = time.perf_counter() - started
            result.credits = last["credits_used"]
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        result.error = repr(exc)
    finally:
        if writer is not None:
            writer.close()
    return result


async def health_loop(port: int, stop: asyncio.Event, latencies: list, errors: list) -> None:
    while not stop.is_set():
        began = time.perf_counter()
        try:
            status, _ = await asyncio.wait_for(get(port, "/health/"), 60)
            if status != 200:
                errors.append(status)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            errors.append(repr(exc))
        latencies.append(time.perf_counter() - began)
        await asyncio.sleep(0.02)


async def load(port: int, api_key: str, questions: list, count: int, offset: int):
    stop = asyncio.Event()
    health: list[float] = []
    health_errors: list = []
    started = time.perf_counter()
    poller = asyncio.create_task(health_loop(port, stop, health, health_errors))
    streams = await asyncio.gather(*(
        one_stream(port, api_key, questions[(offset + i) % len(questions)], started)
        for i in range(count)))
    wall = time.perf_counter() - started
    stop.set()
    await poller
    return streams, wall, health, health_errors


# --- the report ------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


@dataclass
class Result:
    label: str
    wall: float
    answer_seconds: float
    first: list = field(default_factory=list)
    done: list = field(default_factory=list)
    health: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    health_errors: list = field(default_factory=list)
    connections: int = 0
    cpu_ms: float = 0.0
    system_ms: float = 0.0
    other_cpu: float = 0.0
    answers: int = 0
    grounded: int = 0
    charged: int = 0
    credits_reported: int = 0
    left_reserved: int = 0
    verify: str = ""

    def line(self) -> str:
        ms = lambda v: f"{v * 1000:.0f}"  # noqa: E731
        errors = len(self.errors)
        sample = f" ({self.errors[0]})" if self.errors else ""
        return (f"{self.label:<9} wall/answer {self.wall / self.answer_seconds:5.2f}  "
                f"first line p50/p95 {ms(pct(self.first, 50))}/{ms(pct(self.first, 95))} ms  "
                f"done p50/p95 {pct(self.done, 50):.2f}/{pct(self.done, 95):.2f} s  "
                f"/health/ p50/p95 {ms(pct(self.health, 50))}/{ms(pct(self.health, 95))} ms "
                f"(n={len(self.health)}, errors {len(self.health_errors)})  "
                f"db connections max {self.connections}  "
                f"server CPU/answer {self.cpu_ms:.1f} ms (system {self.system_ms:.1f})  "
                f"other CPU {self.other_cpu:.0%}  "
                f"answers {self.answers} (grounded {self.grounded})  errors {errors}{sample}  "
                f"credits charged {self.charged} / reported {self.credits_reported}  "
                f"left reserved {self.left_reserved}  billing_verify {self.verify}")


def billing_verify(tree: Path, env: dict) -> str:
    result = subprocess.run([sys.executable, "manage.py", "billing_verify"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    if tree != ROOT and result.returncode and "Unknown command" in result.stderr:
        return "n/a"
    return "ok" if result.returncode == 0 else "DIFFERENCES: " + (
        result.stdout + result.stderr)[-300:]


def measure(server: Server, args, api_key: str, questions: list, watch: ConnectionWatch,
            database_url: str, offset: int) -> Result:
    asyncio.run(load(server.port, api_key, questions, min(8, args.streams), offset + 1000))
    before_books = books(database_url)
    cpu_before, busy_before = server.cpu_jiffies(), machine_busy()
    watch.most = 0
    watch.running.set()
    streams, wall, health, health_errors = asyncio.run(
        load(server.port, api_key, questions, args.streams, offset))
    watch.running.clear()
    time.sleep(0.3)  # let every stream's last statements finish before reading the books
    cpu, system = (after - before for after, before in zip(server.cpu_jiffies(), cpu_before))
    busy = machine_busy() - busy_before
    after_books = books(database_url)
    answered = [s for s in streams if s.done is not None and not s.error]
    result = Result(
        label=server.label, wall=wall, answer_seconds=args.answer_seconds,
        first=[s.first_line for s in streams if s.first_line is not None],
        done=[s.done for s in answered], health=health,
        errors=[s.error for s in streams if s.error], health_errors=health_errors,
        connections=watch.most, cpu_ms=cpu / HZ * 1000 / max(1, len(answered)),
        system_ms=system / HZ * 1000 / max(1, len(answered)),
        other_cpu=max(0, busy - cpu) / HZ / max(wall, 1e-9) / (os.cpu_count() or 1),
        answers=len(answered), grounded=sum(1 for s in answered if not s.insufficient),
        charged=before_books["balance"] - after_books["balance"],
        credits_reported=sum(s.credits for s in answered),
        left_reserved=after_books["reserved"] - before_books["reserved"])
    result.verify = billing_verify(server.tree, server.env)
    return result


def distinct_questions() -> list[dict]:
    """The library questions of both evaluation sets (242), each once: a question asked
    again finds its embedding remembered by the worker, and real traffic repeats little."""
    found: dict[str, dict] = {}
    for name in ("questions.json", "keyfacts.json"):
        for question in json.loads((EVAL / name).read_text()):
            if not question.get("private"):
                found.setdefault(question["question"], question)
    return list(found.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=256)
    parser.add_argument("--answer-seconds", type=float, default=3.0)
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--baseline-tree", type=Path, default=None,
                        help="another checkout served the same way, in the same rounds")
    parser.add_argument("--baseline-streams", type=int, default=None,
                        help="streams for the baseline (default: --streams)")
    parser.add_argument("--env", action="append", default=[],
                        help="NAME=VALUE for this checkout's server (repeatable)")
    parser.add_argument("--database", default=f"egret_streams_{os.getpid()}")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument("--reuse", action="store_true",
                        help="use --database as left by --keep (skips loading the library; "
                             "implies --keep)")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL=postgres://user@host:port/anything (the bench database "
                 "--database is created on that server and dropped at the end).")
    extra_env = dict(item.split("=", 1) for item in args.env)
    os.environ["LOG_LEVEL"] = "WARNING"

    model, model_port = start_stand_in(args.answer_seconds, args.chunks)
    servers: list[Server] = []
    try:
        began = time.perf_counter()
        database_url, api_key = prepare_database(url, args.database, model_port, args.reuse)
        print(f"database {args.database} ready in {time.perf_counter() - began:.1f}s; stand-in "
              f"model on port {model_port}: {args.chunks} chunks over {args.answer_seconds:g}s",
              flush=True)
        questions = distinct_questions()
        watch = ConnectionWatch(url, args.database)
        watch.start()
        var_dir = Path(tempfile.mkdtemp(prefix="egret-bench-streams-"))
        servers.append(Server(ROOT, database_url, extra_env, var_dir, "this"))
        if args.baseline_tree:
            servers.append(Server(args.baseline_tree.resolve(), database_url, {}, var_dir,
                                  "baseline"))
        print(f"{args.streams} concurrent streamed queries per round"
              + (f" ({args.baseline_streams} for the baseline)" if args.baseline_streams
                 else "") + (f"; env {extra_env}" if extra_env else ""), flush=True)
        failed = False
        for round_no in range(args.rounds):
            for server in servers:
                count = args.streams
                if server.label == "baseline" and args.baseline_streams:
                    count = args.baseline_streams
                run_args = argparse.Namespace(**{**vars(args), "streams": count})
                # One server at a time: the database's connections are all its own.
                server.start()
                try:
                    result = measure(server, run_args, api_key, questions, watch,
                                     database_url, round_no * 7)
                finally:
                    server.stop()
                print(f"round {round_no + 1} {result.line()}", flush=True)
                failed |= bool(result.errors or result.charged != result.credits_reported
                               or result.left_reserved or result.verify not in ("ok", "n/a"))
        watch.stopped.set()
        return 1 if failed else 0
    finally:
        for server in servers:
            server.stop()
        model.terminate()
        from django.db import connections

        connections.close_all()
        if not (args.keep or args.reuse):
            from psycopg import sql

            with admin_connection(url) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(args.database)))


if __name__ == "__main__":
    sys.exit(main())
