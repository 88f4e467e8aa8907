"""Credits hold under concurrent queries through HTTP (API.md 5.2): an organization with 5
credits sends 20 parallel queries → exactly 5 answers, 15 × 402, balance 0."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from billing.models import LedgerEntry, Reservation
from tests.assistant.conftest import balance, set_balance

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PARALLEL = 20
CREDITS = 5


def post(url: str, raw_key: str, results: list, barrier: threading.Barrier) -> None:
    body = json.dumps({"query": "How often must we review the business impact analysis?",
                       "domain": "business-continuity", "category": "us",
                       "mode": "compliance"}).encode()
    request = urllib.request.Request(f"{url}/v1/query/", data=body, method="POST", headers={
        "Authorization": f"Bearer {raw_key}", "Content-Type": "application/json",
        # The live server started before the per-test settings: it redirects plain HTTP
        # unless the request says it came through a TLS-terminating proxy.
        "X-Forwarded-Proto": "https"})
    barrier.wait()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            results.append((response.status, json.loads(response.read())))
    except urllib.error.HTTPError as error:
        results.append((error.code, json.loads(error.read())))


def test_twenty_parallel_queries_with_five_credits(live_server, org, library, make_key):
    set_balance(org, CREDITS)
    _, raw = make_key(org)
    results: list = []
    barrier = threading.Barrier(PARALLEL)
    threads = [threading.Thread(target=post, args=(live_server.url, raw, results, barrier))
               for _ in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * CREDITS + [402] * (PARALLEL - CREDITS), results
    assert balance(org) == 0
    entries = LedgerEntry.objects.filter(organization=org)
    assert sum(entries.values_list("amount", flat=True)) == 0
    assert Reservation.objects.filter(organization=org, status="settled").count() == CREDITS
