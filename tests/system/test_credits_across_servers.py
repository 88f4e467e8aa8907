"""Two gunicorn instances on one PostgreSQL database (API.md 5.2, DESIGN.md "Scale-out"):
300 concurrent queries against an organization holding exactly 100 credits are answered
exactly 100 times, whichever server takes them; the other 200 get 402, nothing fails, and
the ledger still sums to the balance."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from tests.servers import ServedApp
from tests.system.support import DEMO_SLUG, QUESTION, ServedDatabase, call, serving

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

CREDITS = 100
QUERIES = 300
CLIENTS = 50
CREDITS_EXHAUSTED = "Credit quota exhausted. Upgrade your plan or wait for your quota to reset."
# Throttles are courtesy (API.md 11) and would otherwise answer 429 to this burst.
NO_THROTTLE = {"THROTTLE_RATE_QUERY": "100000/min", "THROTTLE_RATE_DEFAULT": "100000/min"}


@pytest.fixture(scope="module")
def two_servers(server_db, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("two-servers")
    with serving(server_db, tmp_path / "a", workers=2, threads=6,
                 env=NO_THROTTLE) as first:
        (tmp_path / "b").mkdir()
        second = ServedApp(tmp_path / "b", database_url=first.database_url, workers=2,
                           threads=6, env=NO_THROTTLE)
        second.api_key = first.api_key  # same database, same demo organization and key
        try:
            second.start()
            yield first, second
        finally:
            second.stop()


def test_three_hundred_queries_on_two_servers_spend_exactly_one_hundred_credits(two_servers):
    first, second = two_servers
    assert first.port != second.port
    books = ServedDatabase(first.database_url)
    adjustment = CREDITS - books.balance()
    if adjustment:
        first.manage("credits_grant", DEMO_SLUG, str(adjustment), "--memo", "system test")
    assert books.balance() == CREDITS == books.ledger_sum()

    replies: list[tuple[int, int, dict | None]] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(CLIENTS)
    lock = threading.Lock()

    def client(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            for n in range(index, QUERIES, CLIENTS):
                server = (first, second)[n % 2]
                reply = call(server.port, "POST", "/v1/query/", body=QUESTION,
                             key=first.api_key, timeout=120)
                body = reply.json() if reply.is_json_error or reply.status == 200 else None
                with lock:
                    replies.append((server.port, reply.status, body))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not failures, failures
    assert len(replies) == QUERIES

    statuses = Counter(status for _, status, _ in replies)
    assert statuses == {200: CREDITS, 402: QUERIES - CREDITS}, (
        statuses, first.logs()[-2000:], second.logs()[-2000:])
    # Both servers took part in answering, not one of them only.
    answered_by = Counter(port for port, status, _ in replies if status == 200)
    assert set(answered_by) == {first.port, second.port}, answered_by
    for _, status, body in replies:
        if status == 200:
            assert body["credits_used"] == 1 and body["insufficient_context"] is False
        else:
            assert body["detail"] == CREDITS_EXHAUSTED

    assert books.balance() == 0 == books.ledger_sum()
    settled = books.rows(
        "SELECT status, COUNT(*) FROM billing_reservation WHERE organization_id = "
        f"{ServedDatabase.ORG} GROUP BY status", (DEMO_SLUG,))
    assert dict(settled) == {"settled": CREDITS}
    charges = books.value(
        "SELECT COUNT(*) FROM billing_ledgerentry WHERE kind = 'query_charge' AND "
        f"organization_id = {ServedDatabase.ORG}", (DEMO_SLUG,))
    assert charges == CREDITS
    assert books.count("assistant_chatsession") == CREDITS
    quota = call(second.port, "GET", "/v1/billings/subscription/",
                 key=first.api_key).json()["current_quota"]
    assert quota["credits_remaining"] == 0 and quota["credits_reserved"] == 0
    assert quota["is_exhausted"] is True
