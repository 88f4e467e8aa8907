"""Credits hold under concurrent queries through HTTP (API.md 5.2): an organization with 5
credits sends 20 parallel queries → exactly 5 answers, 15 × 402, balance 0."""

from __future__ import annotations

import pytest

from billing.models import LedgerEntry, Reservation
from tests.assistant.conftest import balance, set_balance
from tests.parallel import post_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PARALLEL = 20
CREDITS = 5


def test_twenty_parallel_queries_with_five_credits(live_server, org, library, make_key):
    set_balance(org, CREDITS)
    _, raw = make_key(org)
    results = post_at_once(f"{live_server.url}/v1/query/", raw, {
        "query": "How often must we review the business impact analysis?",
        "domain": "business-continuity", "category": "us", "mode": "compliance"}, PARALLEL,
        timeout=60)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * CREDITS + [402] * (PARALLEL - CREDITS), results
    assert balance(org) == 0
    entries = LedgerEntry.objects.filter(organization=org)
    assert sum(entries.values_list("amount", flat=True)) == 0
    assert Reservation.objects.filter(organization=org, status="settled").count() == CREDITS
