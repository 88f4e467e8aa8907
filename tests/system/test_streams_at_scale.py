"""64 streamed answers open at once on one instance started with gunicorn.conf.py's own
defaults (the serving model as deployed: workers, threads, connection pool), from an
OpenAI-compatible model that takes one second per answer (bench/streams.py's stand-in):
every stream ends with `done`, each answer is charged exactly one credit, `billing_verify`
finds no difference, no reservation is left open, and on PostgreSQL the instance never holds
more connections than its pools allow — fewer than the streams it serves. Timings are
bench/streams.py's business, not asserted here."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bench.streams import MODEL_ID, StandInModel, one_stream
from tests.system.support import (QUESTION, QUESTION_LIBRARY, ServedDatabase, call, serving,
                                  worker_pids)

pytestmark = pytest.mark.django_db

STREAMS = 64
POOL = 4  # DATABASE_POOL_MAX_SIZE per worker: far fewer connections than streams


# Of the demo library only the documents the question needs, and the stand-in model's row.
SETUP = QUESTION_LIBRARY + """
from assistant.models import AIModel
AIModel.objects.create(id="%s", name="Stand-in", provider="openai",
                       provider_model="stand-in", options={"base_url": "http://127.0.0.1:%%d/v1"})
""" % MODEL_ID


@pytest.fixture(scope="module")
def model():
    port, stop = StandInModel(seconds=1.0, chunks=20).start_in_thread()
    yield port
    stop()


@pytest.fixture(scope="module")
def served(server_db, tmp_path_factory, model):
    with serving(server_db, tmp_path_factory.mktemp("streams"), setup_code=SETUP % model,
                 workers=None, threads=None, library=False,
                 # A long wait for a pooled connection: on a busy machine the 64 requests'
                 # retrievals queue for the pool, and this test is about correctness.
                 env={"DATABASE_POOL_MAX_SIZE": str(POOL), "DATABASE_POOL_TIMEOUT": "120",
                      "THROTTLE_RATE_QUERY": "1000/s",
                      "THROTTLE_RATE_DEFAULT": "1000/s"}) as app:
        app.manage("credits_grant", "demo", "1000")
        yield app


class ConnectionWatch(threading.Thread):
    """The most connections to the instance's PostgreSQL database, polled every 20 ms."""

    def __init__(self, books: ServedDatabase) -> None:
        super().__init__(daemon=True)
        self.books, self.most, self.polls = books, 0, 0
        self.stopped = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.books.url, autocommit=True) as db:
            while not self.stopped.is_set():
                count = db.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = "
                                   "current_database() AND pid <> pg_backend_pid()"
                                   ).fetchone()[0]
                self.most, self.polls = max(self.most, count), self.polls + 1
                time.sleep(0.02)


async def open_streams(port: int, key: str) -> list:
    question = {"question": QUESTION["query"], "domain": QUESTION["domain"],
                "category": QUESTION["category"]}
    started = time.perf_counter()
    return await asyncio.wait_for(asyncio.gather(*(
        one_stream(port, key, question, started) for _ in range(STREAMS))), 300)


def test_many_open_streams_all_complete_with_exact_credits_and_bounded_connections(served):
    books = ServedDatabase(served.database_url)
    before = books.balance()
    assert before == books.ledger_sum() > STREAMS
    watch = ConnectionWatch(books) if not books.sqlite else None
    if watch:
        watch.start()

    streams = asyncio.run(open_streams(served.port, served.api_key))
    if watch:
        watch.stopped.set()
        watch.join(5)

    assert [s.error for s in streams if s.error] == [], served.logs()
    assert all(s.done is not None and not s.insufficient for s in streams)
    assert [s.credits for s in streams] == [1] * STREAMS
    assert books.balance() == before - STREAMS == books.ledger_sum()
    assert books.value("SELECT COUNT(*) FROM billing_reservation WHERE status = 'reserved'") == 0
    assert books.value("SELECT COUNT(*) FROM billing_reservation WHERE status = 'settled'") \
        == STREAMS
    assert books.value("SELECT COUNT(*) FROM assistant_message WHERE sender = 'assistant' "
                       "AND model = %s", (MODEL_ID,)) == STREAMS
    assert "Every account matches its ledger." in served.manage("billing_verify")
    quota = call(served.port, "GET", "/v1/billings/subscription/",
                 key=served.api_key).json()["current_quota"]
    assert quota["credits_reserved"] == 0
    if watch:
        # Each worker: at most its pool, plus the one connection /health/ uses.
        workers = len(worker_pids(served.process.pid))
        assert watch.polls > 10
        assert 0 < watch.most <= workers * (POOL + 1) < STREAMS, watch.most
