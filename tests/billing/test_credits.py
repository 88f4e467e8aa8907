"""billing.services: grant, reserve, settle, refund, rollover, sweep and the quota arithmetic."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from billing import selectors, services
from billing.models import CreditAccount, LedgerEntry, Plan, Reservation
from organizations.models import Organization

Kind = LedgerEntry.Kind


def fresh(org: Organization) -> Organization:
    return Organization.objects.select_related("plan", "subscription", "credit_account").get(
        pk=org.pk)


def balance(org: Organization) -> int:
    return CreditAccount.objects.get(organization=org).balance


def ledger_sum(org: Organization) -> int:
    return LedgerEntry.objects.filter(organization=org).aggregate(s=Sum("amount"))["s"] or 0


def quota(org: Organization) -> dict:
    return selectors.current_quota(fresh(org))


def assert_identity(org: Organization) -> dict:
    q = quota(org)
    assert q["credits_granted"] - q["credits_used"] - q["credits_reserved"] == q["credits_remaining"]
    assert q["credits_remaining"] == balance(org) == ledger_sum(org)
    # The stored period figures are what the period's ledger says.
    computed = selectors.period_figures_from_ledger(org.pk, q["period_start"])
    assert computed == {"granted": q["credits_granted"], "used": q["credits_used"],
                        "reserved": q["credits_reserved"]}
    return q


def test_new_organization_gets_its_plan_allowance(org):
    assert balance(org) == 5000
    entry = LedgerEntry.objects.get(organization=org)
    assert (entry.kind, entry.amount, entry.balance_after) == (Kind.MONTHLY_GRANT, 5000, 5000)
    q = assert_identity(org)
    assert q["credits_granted"] == 5000 and q["monthly_credits"] == 5000


def test_balance_cannot_go_negative_even_bypassing_services(org):
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditAccount.objects.filter(organization=org).update(balance=-1)


def test_reserve_charges_at_once_and_402_when_it_cannot_cover(owner, make_org):
    org = make_org(owner, plan="free", slug="tiny")  # 50 credits
    held = services.credits_reserve(fresh(org), 30)
    assert balance(org) == 20 and held.status == Reservation.Status.RESERVED
    with pytest.raises(services.CreditsExhausted) as caught:
        services.credits_reserve(fresh(org), 21)
    assert caught.value.status_code == 402
    assert str(caught.value.detail) == (
        "Credit quota exhausted. Upgrade your plan or wait for your quota to reset.")
    assert balance(org) == 20
    assert LedgerEntry.objects.filter(organization=org, kind=Kind.QUERY_CHARGE).count() == 1


def test_quota_arithmetic_across_grant_reserve_settle_refund(org):
    a = services.credits_reserve(fresh(org), 3)
    b = services.credits_reserve(fresh(org), 5)
    c = services.credits_reserve(fresh(org), 7)
    q = assert_identity(org)
    assert (q["credits_used"], q["credits_reserved"], q["credits_remaining"]) == (0, 15, 4985)
    services.credits_settle(a)
    services.credits_refund(b)
    q = assert_identity(org)
    assert (q["credits_used"], q["credits_reserved"], q["credits_remaining"]) == (3, 7, 4990)
    services.credits_grant(fresh(org), 100, kind=Kind.TOP_UP, memo="bonus")
    services.credits_grant(fresh(org), -40, kind=Kind.ADJUSTMENT, memo="correction")
    q = assert_identity(org)
    assert q["credits_granted"] == 5100
    assert (q["credits_used"], q["credits_reserved"], q["credits_remaining"]) == (43, 7, 5050)
    services.credits_settle(c, final_cost=4)  # 3 back
    q = assert_identity(org)
    assert (q["credits_used"], q["credits_reserved"], q["credits_remaining"]) == (47, 0, 5053)


def test_settle_with_a_higher_final_cost_charges_the_difference(org):
    held = services.credits_reserve(fresh(org), 2)
    services.credits_settle(held, final_cost=5)
    assert balance(org) == 4995
    extra = LedgerEntry.objects.filter(reservation=held).order_by("id").last()
    assert (extra.kind, extra.amount) == (Kind.QUERY_CHARGE, -3)
    assert assert_identity(org)["credits_used"] == 5


def test_settle_above_the_balance_charges_only_what_is_left(owner, make_org):
    org = make_org(owner, plan="free", slug="tiny")
    held = services.credits_reserve(fresh(org), 45)
    services.credits_settle(held, final_cost=60)
    assert balance(org) == 0
    assert assert_identity(org)["credits_used"] == 50


def test_state_machine_allows_one_transition_only(org):
    settled = services.credits_reserve(fresh(org), 1)
    services.credits_settle(settled)
    with pytest.raises(services.ReservationFinished):
        services.credits_refund(settled)
    with pytest.raises(services.ReservationFinished):
        services.credits_settle(settled)

    refunded = services.credits_reserve(fresh(org), 1)
    services.credits_refund(refunded)
    with pytest.raises(services.ReservationFinished):
        services.credits_settle(refunded)
    with pytest.raises(services.ReservationFinished):
        services.credits_refund(refunded)
    # A stale in-memory copy cannot finish it either: the database decides.
    stale = Reservation.objects.get(pk=refunded.pk)
    stale.status = Reservation.Status.RESERVED
    with pytest.raises(services.ReservationFinished):
        services.credits_refund(stale)
    assert balance(org) == 4999
    assert LedgerEntry.objects.filter(kind=Kind.REFUND).count() == 1
    assert_identity(org)


def test_sweep_refunds_only_reservations_older_than_the_threshold(org):
    old = services.credits_reserve(fresh(org), 4)
    young = services.credits_reserve(fresh(org), 6)
    # Aged in the database: on PostgreSQL created_at is the database's clock.
    Reservation.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(seconds=700))
    assert services.reservations_sweep(older_than=timedelta(seconds=600)) == 1
    old.refresh_from_db()
    young.refresh_from_db()
    assert old.status == Reservation.Status.REFUNDED
    assert young.status == Reservation.Status.RESERVED
    assert balance(org) == 4994
    # The request that held `old` finally comes back: it may not settle any more.
    with pytest.raises(services.ReservationFinished):
        services.credits_settle(old)
    assert services.reservations_sweep(older_than=timedelta(seconds=600)) == 0
    assert_identity(org)


def test_rollover_expires_what_is_left_and_grants_once(org):
    services.credits_settle(services.credits_reserve(fresh(org), 100))
    end = fresh(org).subscription.current_period_end
    with time_machine.travel(end + timedelta(minutes=5)):
        assert services.period_rollover(fresh(org)) is True
        assert services.period_rollover(fresh(org)) is False
        services.ensure_current_period(fresh(org))
        entries = LedgerEntry.objects.filter(organization=org).order_by("id")
        kinds = [(e.kind, e.amount) for e in entries]
        assert kinds == [(Kind.MONTHLY_GRANT, 5000), (Kind.QUERY_CHARGE, -100),
                         (Kind.EXPIRY, -4900), (Kind.MONTHLY_GRANT, 5000)]
        q = assert_identity(org)
        assert (q["credits_granted"], q["credits_used"], q["credits_remaining"]) == (5000, 0, 5000)
        sub = fresh(org).subscription
        assert sub.current_period_start == end
        assert q["period_start"] == end


def test_rollover_after_several_missed_periods_happens_once(org):
    start = fresh(org).subscription.current_period_start
    with time_machine.travel(services.add_months(start, 3) + timedelta(days=2)):
        services.ensure_current_period(fresh(org))
        assert LedgerEntry.objects.filter(kind=Kind.EXPIRY).count() == 1
        assert LedgerEntry.objects.filter(kind=Kind.MONTHLY_GRANT).count() == 2
        sub = fresh(org).subscription
        assert sub.current_period_start == services.add_months(start, 3)
        assert sub.current_period_end == services.add_months(start, 4)


def test_reserve_after_the_period_end_rolls_over_first(owner, make_org):
    org = make_org(owner, plan="free", slug="tiny")
    services.credits_reserve(fresh(org), 50)
    with pytest.raises(services.CreditsExhausted):
        services.credits_reserve(fresh(org), 1)
    end = fresh(org).subscription.current_period_end
    with time_machine.travel(end + timedelta(seconds=1)):
        services.credits_reserve(fresh(org), 1)
        assert balance(org) == 49
        assert_identity(org)


def test_unique_constraint_guards_a_second_grant_for_the_same_period(org):
    account = CreditAccount.objects.get(organization=org)
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(organization=org, kind=Kind.MONTHLY_GRANT, amount=1,
                                   balance_after=account.balance + 1,
                                   period_start=account.period_start)


def test_refund_of_a_charge_from_the_previous_period_keeps_the_identity(org):
    held = services.credits_reserve(fresh(org), 10)
    end = fresh(org).subscription.current_period_end
    with time_machine.travel(end + timedelta(seconds=1)):
        services.ensure_current_period(fresh(org))
        services.credits_refund(held)
        q = assert_identity(org)
        assert q["credits_granted"] == 5010 and q["credits_remaining"] == 5010


def test_negative_adjustment_never_goes_below_zero(owner, make_org):
    org = make_org(owner, plan="free", slug="tiny")
    with pytest.raises(services.NegativeBalance):
        services.credits_grant(fresh(org), -51, kind=Kind.ADJUSTMENT)
    assert balance(org) == 50
    with pytest.raises(ValueError):
        services.credits_grant(fresh(org), -5, kind=Kind.TOP_UP)


@pytest.mark.parametrize("start_plan, target, expected", [
    ("starter", "professional", 5000 - 100 + 15000),  # upgrade: the difference at once
    ("professional", "starter", 5000),                # downgrade: capped at the new allowance
    ("starter", "free", 50),
])
def test_plan_change_mid_period_follows_the_proration_rule(owner, make_org, start_plan, target,
                                                          expected):
    org = make_org(owner, plan=start_plan, slug="p")
    services.credits_settle(services.credits_reserve(fresh(org), 100))
    services.plan_change(fresh(org), Plan.objects.get(slug=target))
    assert fresh(org).plan.slug == target
    assert balance(org) == expected
    assert_identity(org)


def test_downgrade_below_the_allowance_keeps_the_balance(owner, make_org):
    org = make_org(owner, plan="professional", slug="p")
    services.credits_settle(services.credits_reserve(fresh(org), 19000))
    services.plan_change(fresh(org), Plan.objects.get(slug="starter"))
    assert balance(org) == 1000
    assert not LedgerEntry.objects.filter(organization=org, kind=Kind.ADJUSTMENT).exists()


def test_enterprise_override_is_granted_at_rollover(owner, make_org):
    org = make_org(owner, plan="enterprise", slug="big")
    assert balance(org) == 0
    sub = fresh(org).subscription
    sub.monthly_credits_override = 100000
    sub.save()
    with time_machine.travel(sub.current_period_end + timedelta(seconds=1)):
        services.ensure_current_period(fresh(org))
        assert balance(org) == 100000
        assert quota(org)["monthly_credits"] == 100000


def test_add_months_clamps_to_the_end_of_shorter_months():
    from datetime import datetime, timezone as tz

    jan31 = datetime(2027, 1, 31, 12, 0, tzinfo=tz.utc)
    assert services.add_months(jan31, 1) == datetime(2027, 2, 28, 12, 0, tzinfo=tz.utc)
    assert services.add_months(jan31, 13) == datetime(2028, 2, 29, 12, 0, tzinfo=tz.utc)
    start, end = services.period_containing(jan31, datetime(2027, 3, 30, tzinfo=tz.utc))
    assert (start.month, start.day, end.month, end.day) == (2, 28, 3, 31)
