"""Credits hold under concurrent comparisons through HTTP (API.md 12, 5.2): an organization
with 9 credits sends 20 parallel comparisons of 2 categories (2 credits each) → exactly 4
answered, 16 × 402, balance 1, and the ledger agrees with the account (billing_verify)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from io import StringIO

import pytest
from django.core.management import call_command

from assistant.models import Comparison
from billing.models import LedgerEntry, Reservation
from tests.assistant.conftest import balance
from tests.assistant.test_compare import QUESTION, on_plan

pytestmark = [pytest.mark.postgres,
              pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PARALLEL = 20
CREDITS = 9


def post(url: str, raw_key: str, results: list, barrier: threading.Barrier) -> None:
    # Both categories answer it (tests/assistant/test_compare.py), so none is refunded.
    body = json.dumps({"query": QUESTION,
                       "domain": "business-continuity", "categories": ["us", "sg"],
                       "mode": "compliance"}).encode()
    request = urllib.request.Request(f"{url}/v1/compare/", data=body, method="POST", headers={
        "Authorization": f"Bearer {raw_key}", "Content-Type": "application/json",
        "X-Forwarded-Proto": "https"})  # the live server predates the per-test settings
    barrier.wait()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            results.append((response.status, json.loads(response.read())))
    except urllib.error.HTTPError as error:
        results.append((error.code, json.loads(error.read())))


def test_twenty_parallel_comparisons_with_nine_credits(live_server, org, library, make_key):
    on_plan(org, "professional", credits=CREDITS)
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
    assert statuses == [200] * 4 + [402] * (PARALLEL - 4), results
    assert all(body["credits_used"] == 2 for status, body in results if status == 200)
    assert {body["detail"] for status, body in results if status == 402} == {
        "Credit quota exhausted. Upgrade your plan or wait for your quota to reset."}
    assert balance(org) == 1
    entries = LedgerEntry.objects.filter(organization=org)
    assert sum(entries.values_list("amount", flat=True)) == 1
    assert Reservation.objects.filter(organization=org, status="settled").count() == 4
    assert Comparison.objects.filter(organization=org).count() == 4
    out = StringIO()
    call_command("billing_verify", stdout=out)
    assert "Every account matches its ledger." in out.getvalue()
