#!/usr/bin/env python
"""The streaming part of an answer under two serving models, outside Django: what the CPU
of relaying N streamed answers costs with a thread per stream (gunicorn's `gthread` workers,
today's model) and with one asyncio event loop (what ASGI workers would run). It sizes what
the ASGI candidate of docs/benchmarks.md ("Streamed answers at scale") could save before it
is built.

    .venv/bin/python bench/serving.py [--streams 128] [--answer-seconds 3] [--chunks 40]
        [--rounds 3]

The stand-in model of bench/streams.py (a child process) streams `--chunks` deltas over
`--answer-seconds`. Each model runs in a fresh child process (its CPU is its own, read with
os.times) and relays `--streams` answers at once, each the way the OpenAI provider reads
one (assistant/providers/openai.py): the SDK's `with_streaming_response.create`, the
response's lines, `_server_sent_events`, `json.loads` per event, `StreamSplitter.feed` per
delta, and an NDJSON `text_delta` line written to a socket per delta (a socketpair per
stream, its buffer larger than the answer, so the write never waits).

  threads  one `openai.OpenAI` client (its httpx pool sized for the streams), a thread per
           stream, blocking reads and `sendall`: a gthread worker's streaming phase.
  asyncio  one `openai.AsyncOpenAI` client, a task per stream on one event loop,
           `aiter_lines` and the socket's transport: an ASGI worker's streaming phase.

Printed per round and model: CPU per stream (user and system), wall ÷ answer time, and
the completion p50/p95. The models alternate within each round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.streams import WORDS, start_stand_in  # noqa: E402

MESSAGES = [{"role": "system", "content": "Answer from the sources. " * 40},
            {"role": "user", "content": " ".join(WORDS * 8)}]


def _line(text: str) -> bytes:
    return json.dumps({"type": "text_delta", "text": text}).encode() + b"\n"


def _relay(data: str, splitter, write) -> bool:
    """One event's deltas through the splitter to `write` as NDJSON; False at `[DONE]`."""
    if data.startswith("[DONE]"):
        return False
    for choice in json.loads(data).get("choices") or ():
        text = splitter.feed((choice.get("delta") or {}).get("content") or "")
        if text:
            write(_line(text))
    return True


def _sinks(count: int) -> list[tuple[socket.socket, socket.socket]]:
    pairs = [socket.socketpair() for _ in range(count)]
    for writer, reader in pairs:
        writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return pairs


def _threads(base_url: str, count: int, box) -> None:
    import httpx
    import openai

    from assistant.prompting import StreamSplitter
    from assistant.providers.openai import _server_sent_events

    client = openai.OpenAI(api_key="x", base_url=base_url, max_retries=0, http_client=httpx.Client(
        limits=httpx.Limits(max_connections=count + 8, max_keepalive_connections=count + 8),
        timeout=60))
    sinks = _sinks(count)
    done: list[float] = []

    def one(sink: socket.socket, started: float) -> None:
        splitter = StreamSplitter()
        raw = client.chat.completions.with_streaming_response.create(
            model="stand-in", messages=[], extra_body={"messages": MESSAGES}, stream=True,
            stream_options={"include_usage": True}, max_tokens=400)
        with raw as response:
            for _, data in _server_sent_events(response.iter_lines()):
                if not _relay(data, splitter, sink.sendall):
                    break
        done.append(time.perf_counter() - started)

    warm_sink = _sinks(1)[0]  # both ends kept open while it is written to
    one(warm_sink[0], time.perf_counter())  # warm-up: the SDK's lazy imports, a connection
    done.clear()
    barrier = threading.Barrier(count + 1)

    def at_once(sink: socket.socket) -> None:
        barrier.wait()
        one(sink, started)

    threads = [threading.Thread(target=at_once, args=(w,)) for w, _ in sinks]
    for thread in threads:
        thread.start()
    before = os.times()
    started = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    box.put(_report(before, started, done, count))


def _asyncio(base_url: str, count: int, box) -> None:
    import httpx
    import openai

    from assistant.prompting import StreamSplitter
    from assistant.providers.openai import ServerSentEvents

    async def main() -> None:
        client = openai.AsyncOpenAI(
            api_key="x", base_url=base_url, max_retries=0, http_client=httpx.AsyncClient(
                limits=httpx.Limits(max_connections=count + 8,
                                    max_keepalive_connections=count + 8), timeout=60))
        loop = asyncio.get_running_loop()
        transports, sinks = [], _sinks(count)  # the read ends stay open until the end
        for writer, _ in sinks:
            transport, _ = await loop.create_connection(asyncio.Protocol, sock=writer)
            transports.append(transport)
        done: list[float] = []

        async def one(transport) -> None:
            splitter = StreamSplitter()
            async with client.chat.completions.with_streaming_response.create(
                    model="stand-in", messages=[], extra_body={"messages": MESSAGES},
                    stream=True, stream_options={"include_usage": True},
                    max_tokens=400) as response:
                events = ServerSentEvents()
                async for line in response.iter_lines():
                    event = events.line(line)
                    if event is not None and not _relay(event[1], splitter, transport.write):
                        break
            done.append(time.perf_counter() - started)

        warm_sinks = _sinks(1)
        warm, _ = await loop.create_connection(asyncio.Protocol, sock=warm_sinks[0][0])
        started = time.perf_counter()
        await one(warm)  # a warm-up stream: the SDK's lazy imports and a first connection
        done.clear()
        before = os.times()
        started = time.perf_counter()
        await asyncio.gather(*(one(t) for t in transports))
        box.put(_report(before, started, done, count))

    asyncio.run(main())


def _report(before, started: float, done: list[float], count: int) -> dict:
    after = os.times()
    return {"user_ms": (after.user - before.user) * 1000 / count,
            "sys_ms": (after.system - before.system) * 1000 / count,
            "wall": time.perf_counter() - started, "completed": len(done),
            "p50": statistics.median(done) if done else 0.0,
            "p95": sorted(done)[int(0.95 * (len(done) - 1))] if done else 0.0}


def run(model: str, base_url: str, count: int) -> dict:
    box = multiprocessing.Queue()
    target = _threads if model == "threads" else _asyncio
    process = multiprocessing.Process(target=target, args=(base_url, count, box))
    process.start()
    result = box.get(timeout=600)
    process.join()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=128)
    parser.add_argument("--answer-seconds", type=float, default=3.0)
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "egret.settings")
    model, port = start_stand_in(args.answer_seconds, args.chunks)
    base_url = f"http://127.0.0.1:{port}/v1"
    failed = False
    try:
        print(f"{args.streams} streams of {args.chunks} deltas over {args.answer_seconds:g} s "
              "per model and round", flush=True)
        for round_no in range(args.rounds):
            order = ("threads", "asyncio") if round_no % 2 == 0 else ("asyncio", "threads")
            for name in order:
                r = run(name, base_url, args.streams)
                failed |= r["completed"] != args.streams
                cpu = r["user_ms"] + r["sys_ms"]
                print(f"round {round_no + 1} {name:8s} CPU per stream {cpu:5.2f} ms "
                      f"(user {r['user_ms']:.2f}, system {r['sys_ms']:.2f})  wall/answer "
                      f"{r['wall'] / args.answer_seconds:.2f}  done p50/p95 {r['p50']:.2f}/"
                      f"{r['p95']:.2f} s  completed {r['completed']}/{args.streams}", flush=True)
    finally:
        model.terminate()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
