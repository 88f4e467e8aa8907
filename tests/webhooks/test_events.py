"""Events are written in the transaction of the change that causes them (API.md 13): charges
crossing thresholds, exhaustion, grants, rollovers, ingestion results, expiring keys."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import services as billing
from billing.models import CreditAccount
from knowledge import services as knowledge
from organizations.models import Organization
from tests.knowledge.files import corrupt_pdf
from webhooks.models import Event, EventType

pytestmark = pytest.mark.django_db
T = EventType


def fresh(org) -> Organization:
    return Organization.objects.select_related("subscription", "plan").get(pk=org.pk)


def use(org, credits: int) -> None:
    """A negative adjustment: `credits` count as used in the period."""
    billing.credits_grant(fresh(org), -credits, kind="adjustment", memo="test")


def of_type(event_type: str) -> list[Event]:
    return list(Event.objects.filter(type=event_type).order_by("created_at"))


def test_a_charge_crossing_a_threshold_records_it_once(org):
    use(org, 3999)  # 5,000 granted on the starter plan: 79.98 % used
    assert not Event.objects.exists()
    billing.credits_reserve(fresh(org), 1)  # 80 %
    billing.credits_reserve(fresh(org), 1)
    (event,) = of_type(T.THRESHOLD_REACHED)
    subscription = fresh(org).subscription
    assert event.data == {"threshold_percent": 80, "credits_used": 4000,
                          "credits_granted": 5000, "credits_remaining": 1000,
                          "period_end": subscription.current_period_end.isoformat().replace(
                              "+00:00", "Z")}
    assert event.dedupe_key == (f"credits.threshold_reached:80:"
                                f"{int(subscription.current_period_start.timestamp())}")


def test_one_change_crossing_several_thresholds_records_each(org):
    use(org, 4800)  # 96 %: past 80 and 95
    assert sorted(e.data["threshold_percent"] for e in of_type(T.THRESHOLD_REACHED)) == [80, 95]
    assert not of_type(T.EXHAUSTED)


def test_custom_thresholds_are_used(org):
    Organization.objects.filter(pk=org.pk).update(credit_alert_thresholds=[10, 50])
    use(org, 600)
    assert [e.data["threshold_percent"] for e in of_type(T.THRESHOLD_REACHED)] == [10]


def test_a_threshold_is_not_recorded_twice_in_a_period_after_a_refund(org):
    use(org, 3999)
    reservation = billing.credits_reserve(fresh(org), 1)
    billing.credits_refund(reservation)  # back under 80 %
    billing.credits_reserve(fresh(org), 1)  # crosses again
    assert len(of_type(T.THRESHOLD_REACHED)) == 1


def test_reaching_zero_records_exhausted_once(org):
    use(org, 4998)
    billing.credits_reserve(fresh(org), 2)
    with pytest.raises(billing.CreditsExhausted):
        billing.credits_reserve(fresh(org), 1)
    (event,) = of_type(T.EXHAUSTED)
    assert (event.data["credits_remaining"], event.data["credits_used"]) == (0, 5000)


def test_a_refused_charge_records_exhausted_even_with_credits_left(org):
    use(org, 4998)
    with pytest.raises(billing.CreditsExhausted):
        billing.credits_reserve(fresh(org), 5)
    (event,) = of_type(T.EXHAUSTED)
    assert event.data["credits_remaining"] == 2


def test_a_charge_that_rolls_back_records_nothing(org):
    use(org, 3999)
    assert not Event.objects.exists()
    with pytest.raises(RuntimeError), transaction.atomic():
        billing.credits_reserve(fresh(org), 1001)  # 80 %, 95 % and zero at once
        assert len(Event.objects.all()) == 3
        raise RuntimeError("the request failed after charging")
    assert not Event.objects.exists()
    assert CreditAccount.objects.get(organization=org).balance == 1001


def test_a_plain_charge_adds_no_query(org):
    """Recording alerts costs a charge nothing when no threshold is crossed: on PostgreSQL the
    charge stays one statement (even when it does record one), on SQLite no statement touches
    the events table."""
    organization = fresh(org)
    with CaptureQueriesContext(connection) as plain:
        billing.credits_reserve(organization, 1)
    assert not any("webhooks_event" in q["sql"] for q in plain.captured_queries) or \
        connection.vendor == "postgresql"
    use(org, 3998)
    organization = fresh(org)
    with CaptureQueriesContext(connection) as crossing:
        billing.credits_reserve(organization, 1)
    assert len(of_type(T.THRESHOLD_REACHED)) == 1
    if connection.vendor == "postgresql":
        assert (len(plain), len(crossing)) == (1, 1)
    else:
        assert len(crossing) == len(plain) + 1  # the event's INSERT


def test_a_larger_final_cost_can_cross_a_threshold(org):
    use(org, 3998)
    reservation = billing.credits_reserve(fresh(org), 1)
    assert not of_type(T.THRESHOLD_REACHED)
    billing.credits_settle(reservation, final_cost=3)
    assert [e.data["threshold_percent"] for e in of_type(T.THRESHOLD_REACHED)] == [80]


def test_top_ups_and_positive_adjustments_record_granted(org):
    billing.credits_grant(fresh(org), 500, kind="top_up", memo="bought more")
    billing.credits_grant(fresh(org), 20, kind="adjustment", memo="goodwill")
    assert [e.data for e in of_type(T.GRANTED)] == [
        {"kind": "top_up", "amount": 500, "credits_remaining": 5500, "memo": "bought more"},
        {"kind": "adjustment", "amount": 20, "credits_remaining": 5520, "memo": "goodwill"}]


def test_a_rollover_records_period_renewed_once(org):
    use(org, 1000)
    end = fresh(org).subscription.current_period_end
    with time_machine.travel(end + timedelta(minutes=1)):
        assert billing.period_rollover(fresh(org))
        assert not billing.period_rollover(fresh(org))
    (event,) = of_type(T.PERIOD_RENEWED)
    assert (event.data["credits_granted"], event.data["credits_expired"]) == (5000, 4000)
    assert event.data["period_start"] == end.isoformat().replace("+00:00", "Z")


def test_ingestion_results_are_recorded(org):
    good = knowledge.document_create(data=b"# Audits\n\nAudit every vendor once a year.",
                                     filename="audits.md", organization=org)
    bad = knowledge.document_create(data=corrupt_pdf(), filename="broken.pdf", organization=org)
    knowledge.document_ingest(good.pk)
    knowledge.document_ingest(bad.pk)
    (ready,) = of_type(T.DOCUMENT_READY)
    (failed,) = of_type(T.DOCUMENT_FAILED)
    assert ready.data == {"document_id": str(good.pk), "title": "audits.md", "status": "ready"}
    assert failed.data["document_id"] == str(bad.pk) and failed.data["status"] == "failed"
    assert "damaged" in failed.data["error"]


def test_expiring_keys_are_announced_once_by_the_periodic_command(org, make_key):
    soon, _ = make_key(org, name="soon", expires_at=timezone.now() + timedelta(days=6))
    make_key(org, name="later", expires_at=timezone.now() + timedelta(days=8))
    make_key(org, name="never")
    for _ in range(2):
        output = io.StringIO()
        call_command("webhooks_deliver", stdout=output)
    assert output.getvalue().startswith("1 key(s) expiring within 7 days")
    (event,) = of_type(T.API_KEY_EXPIRING)
    assert event.data == {"api_key_id": str(soon.pk), "name": "soon",
                          "key_prefix": soon.key_prefix,
                          "expires_at": soon.expires_at.isoformat().replace("+00:00", "Z")}


def test_purge_deletes_events_older_than_30_days_with_their_deliveries(org):
    from webhooks.models import Delivery, Endpoint

    endpoint = Endpoint.objects.create(organization=org, url="https://hooks.example.com/",
                                       events=["*"], secret="whsec_x")
    old = Event.objects.create(organization=org, type=T.GRANTED,
                               created_at=timezone.now() - timedelta(days=31))
    recent = Event.objects.create(organization=org, type=T.GRANTED,
                                  created_at=timezone.now() - timedelta(days=29))
    Delivery.objects.create(endpoint=endpoint, event=old)
    Delivery.objects.create(endpoint=endpoint, event=recent)
    output = io.StringIO()
    call_command("webhooks_purge", stdout=output)
    assert output.getvalue().strip() == "Deleted 2 row(s) (events, deliveries and attempts)."
    assert list(Event.objects.all()) == [recent]
    assert list(Delivery.objects.values_list("event_id", flat=True)) == [recent.pk]
