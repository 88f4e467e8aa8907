"""Alerts under real concurrency (API.md 13), PostgreSQL only: each threshold and exhaustion
fire once per organization and period however many requests cross the line at once. The
charge's statement decides under the account's row lock; the unique index on the event's
dedupe key is the last guard."""

from __future__ import annotations

import json
import threading

import pytest

from billing import services as billing
from billing.models import CreditAccount
from tests.billing.test_concurrency import fresh, run_in_threads, split
from tests.parallel import post_at_once
from webhooks.models import Event, EventType

pytestmark = [pytest.mark.postgres,
              pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PARALLEL = 50
# Requests the test server works on at once (each holds a PostgreSQL connection, and the
# server's 100 are shared with other test runs): the 50 clients send at once and wait their
# turn as they would behind gunicorn's bounded threads.
SERVING = 12


@pytest.fixture
def bounded_server(monkeypatch):
    from django.core.handlers.wsgi import WSGIHandler

    gate = threading.BoundedSemaphore(SERVING)
    serve = WSGIHandler.__call__

    def bounded(self, environ, start_response):
        with gate:
            return serve(self, environ, start_response)

    monkeypatch.setattr(WSGIHandler, "__call__", bounded)


def test_fifty_parallel_queries_crossing_80_percent_fire_one_event(
        bounded_server, live_server, org, library, make_key, receiver, endpoint_for):
    endpoint_for(receiver.url(), ["credits.threshold_reached"])
    billing.credits_grant(fresh(org.pk), -3975, kind="adjustment", memo="79.5 % used")
    _, raw = make_key(org)
    results = post_at_once(f"{live_server.url}/v1/query/", raw, {
        "query": "How often must we review the business impact analysis?",
        "domain": "business-continuity", "category": "us", "mode": "compliance"}, PARALLEL,
        reconnect=True)
    assert [status for status, _ in results] == [200] * PARALLEL
    account = CreditAccount.objects.get(organization=org)
    assert account.period_used + account.period_reserved == 3975 + PARALLEL
    (event,) = Event.objects.filter(organization=org, type=EventType.THRESHOLD_REACHED)
    assert event.data["threshold_percent"] == 80
    assert 4000 <= event.data["credits_used"] < 4000 + PARALLEL
    assert not Event.objects.filter(type=EventType.EXHAUSTED).exists()
    (received,) = receiver.wait_for(1)
    assert json.loads(received.body)["data"]["threshold_percent"] == 80


def test_exhaustion_under_concurrency_fires_one_event(org):
    billing.credits_grant(fresh(org.pk), -4990, kind="adjustment", memo="10 left")
    # that one adjustment crossed both default thresholds: one event each
    assert sorted(Event.objects.filter(type=EventType.THRESHOLD_REACHED).values_list(
        "data__threshold_percent", flat=True)) == [80, 95]
    results = run_in_threads([lambda state: billing.credits_reserve(state, 1)] * PARALLEL,
                             per_thread=lambda: fresh(org.pk), workers=SERVING)
    charged, refused = split(results)
    assert (len(charged), len(refused)) == (10, PARALLEL - 10)
    (event,) = Event.objects.filter(organization=org, type=EventType.EXHAUSTED)
    assert event.data["credits_remaining"] == 0
    assert Event.objects.filter(organization=org).count() == 3


def test_a_rolled_back_charge_sends_nothing(org, receiver, endpoint_for):
    from django.db import transaction

    endpoint_for(receiver.url())
    billing.credits_grant(fresh(org.pk), -3999, kind="adjustment", memo="79.98 % used")
    with pytest.raises(RuntimeError), transaction.atomic():
        billing.credits_reserve(fresh(org.pk), 1)
        raise RuntimeError("failed after the charge")
    assert not Event.objects.filter(type=EventType.THRESHOLD_REACHED).exists()
    assert receiver.requests == []
