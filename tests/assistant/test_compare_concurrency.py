"""Credits hold under concurrent comparisons through HTTP (API.md 12, 5.2): an organization
with 9 credits sends 20 parallel comparisons of 2 categories (2 credits each) → exactly 4
answered, 16 × 402, balance 1, and the ledger agrees with the account (billing_verify)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from assistant.models import Comparison
from billing.models import LedgerEntry, Reservation
from tests.assistant.conftest import balance
from tests.assistant.test_compare import QUESTION, on_plan
from tests.parallel import post_at_once

pytestmark = [pytest.mark.postgres,
              pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PARALLEL = 20
CREDITS = 9


def test_twenty_parallel_comparisons_with_nine_credits(live_server, org, library, make_key):
    on_plan(org, "professional", credits=CREDITS)
    _, raw = make_key(org)
    # Both categories answer it (tests/assistant/test_compare.py), so none is refunded.
    results = post_at_once(f"{live_server.url}/v1/compare/", raw, {
        "query": QUESTION, "domain": "business-continuity", "categories": ["us", "sg"],
        "mode": "compliance"}, PARALLEL)
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
