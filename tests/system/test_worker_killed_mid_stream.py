"""A gunicorn worker killed (SIGKILL) in the middle of a streamed answer (API.md 5.2): no
Python runs to refund or persist anything, so the credits stay reserved and nothing of the
answer is visible; `billing_sweep` then refunds the reservation and the balance is whole."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
import uuid

import pytest

from tests.system.support import (QUESTION, QUESTION_LIBRARY, ServedDatabase, call, serving,
                                  stream_lines, worker_pids)

pytestmark = pytest.mark.django_db

SLOW_MODEL = QUESTION_LIBRARY + (
    "from assistant.models import AIModel; AIModel.objects.filter(pk='extractive')"
    ".update(options={'stream_delay': 0.5})")


@pytest.fixture(scope="module")
def served(server_db, tmp_path_factory):
    with serving(server_db, tmp_path_factory.mktemp("killed"), setup_code=SLOW_MODEL,
                 workers=1, threads=4, library=False) as app:
        yield app


def wait_for_new_worker(app, old: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [pid for pid in worker_pids(app.process.pid) if pid != old]
        if pids and call(app.port, "GET", "/health/", timeout=5).status == 200:
            return pids[0]
        time.sleep(0.1)
    raise AssertionError("gunicorn did not replace the killed worker:\n" + app.logs())


def test_sigkill_during_a_stream_leaves_a_reservation_the_sweeper_refunds(served):
    books = ServedDatabase(served.database_url)
    start_balance = books.balance()
    assert start_balance == books.ledger_sum() > 0

    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    connection.request("POST", "/v1/query/", body=json.dumps({**QUESTION, "stream": True}),
                       headers={"Authorization": f"Bearer {served.api_key}",
                                "Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200
    events = stream_lines(response)
    sources = next(events)
    assert sources["type"] == "sources" and sources["sources"]
    assert sources["insufficient_context"] is False
    session_id = uuid.UUID(sources["session_id"])
    assert next(events)["type"] == "text_delta"  # generation has started; more is coming

    [worker] = worker_pids(served.process.pid)
    os.kill(worker, signal.SIGKILL)
    # The stream ends without a `done` (or `error`) line: the process that wrote it is gone.
    rest = []
    try:
        rest = [event["type"] for event in events]
    except (http.client.HTTPException, OSError, ValueError):
        pass
    assert "done" not in rest and "error" not in rest
    connection.close()
    wait_for_new_worker(served, worker)

    # Credits are held: one open reservation for that session, charged, not yet refunded.
    reservations = books.rows("SELECT status, amount FROM billing_reservation "
                              "WHERE session_id = %s", (session_id,))
    assert reservations == [("reserved", 1)]
    assert books.balance() == start_balance - 1 == books.ledger_sum()
    # Nothing of the answer was written: no session, no message (user's or assistant's).
    assert books.value("SELECT COUNT(*) FROM assistant_chatsession WHERE id = %s",
                       (session_id,)) == 0
    assert books.value("SELECT COUNT(*) FROM assistant_message WHERE session_id = %s",
                       (session_id,)) == 0
    recent = call(served.port, "GET", "/v1/sessions/recent/?limit=100", key=served.api_key)
    assert recent.status == 200
    assert str(session_id) not in {s["session_id"] for s in recent.json()}
    missing = call(served.port, "GET", f"/v1/sessions/{session_id}/messages/",
                   key=served.api_key)
    assert missing.status == 404 and missing.json()["detail"] == "Session not found."
    held = call(served.port, "GET", "/v1/billings/subscription/", key=served.api_key).json()
    assert held["current_quota"]["credits_reserved"] == 1

    assert "Refunded 1 stale reservation(s)." in served.manage(
        "billing_sweep", "--older-than", "0")

    assert books.rows("SELECT status FROM billing_reservation WHERE session_id = %s",
                      (session_id,)) == [("refunded",)]
    assert books.balance() == start_balance == books.ledger_sum()
    refunds = books.rows("SELECT e.amount FROM billing_ledgerentry e JOIN billing_reservation r "
                         "ON r.id = e.reservation_id WHERE r.session_id = %s AND "
                         "e.kind = 'refund'", (session_id,))
    assert refunds == [(1,)]
    quota = call(served.port, "GET", "/v1/billings/subscription/",
                 key=served.api_key).json()["current_quota"]
    assert quota["credits_reserved"] == 0 and quota["credits_remaining"] == start_balance
    # A second sweep finds nothing left to refund.
    assert "Refunded 0 stale reservation(s)." in served.manage(
        "billing_sweep", "--older-than", "0")
