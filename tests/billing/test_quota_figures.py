"""The period figures stored on the credit account (API.md 5.3): the subscription endpoint
answers byte for byte what the aggregate over the ledger answered, `billing_verify` finds
any difference, and the migration fills the figures from the ledger."""

from __future__ import annotations

import importlib
import io
from datetime import timedelta

import pytest
import time_machine
from django.apps import apps
from django.core.management import CommandError, call_command

from billing import selectors, services
from billing.models import CreditAccount, LedgerEntry, Plan
from organizations.models import Organization

pytestmark = pytest.mark.django_db
Kind = LedgerEntry.Kind
URL = "/v1/billings/subscription/"


def fresh(org: Organization) -> Organization:
    return Organization.objects.select_related("plan", "subscription", "credit_account").get(
        pk=org.pk)


def quota_from_the_ledger(organization) -> dict:
    """The endpoint's quota as it was computed before the figures were stored."""
    subscription = organization.subscription
    figures = selectors.period_figures_from_ledger(organization.pk,
                                                   subscription.current_period_start)
    remaining = organization.credit_account.balance
    return {
        "monthly_credits": subscription.monthly_credits(organization.plan),
        "credits_granted": figures["granted"],
        "credits_used": figures["used"],
        "credits_reserved": figures["reserved"],
        "credits_remaining": remaining,
        "is_exhausted": remaining <= 0,
        "period_start": subscription.current_period_start,
        "period_end": subscription.current_period_end,
    }


def assert_same_bytes(api, monkeypatch) -> bytes:
    stored = api.get(URL)
    with monkeypatch.context() as patch:
        patch.setattr(selectors, "current_quota", quota_from_the_ledger)
        aggregated = api.get(URL)
    assert stored.status_code == aggregated.status_code == 200
    assert stored.content == aggregated.content
    return stored.content


def test_subscription_answers_what_the_ledger_aggregate_answered(org, owner, make_key,
                                                                 key_client, monkeypatch):
    _, raw = make_key(org)
    api = key_client(raw)
    seen = {assert_same_bytes(api, monkeypatch)}

    def step() -> None:
        seen.add(assert_same_bytes(api, monkeypatch))
        call_command("billing_verify", stdout=io.StringIO())  # raises on a difference

    held = services.credits_reserve(fresh(org), 5)
    step()
    services.credits_settle(services.credits_reserve(fresh(org), 7))
    step()
    services.credits_settle(services.credits_reserve(fresh(org), 4), final_cost=1)
    step()
    services.credits_settle(services.credits_reserve(fresh(org), 2), final_cost=9)
    step()
    services.credits_refund(services.credits_reserve(fresh(org), 3))
    step()
    services.credits_grant(fresh(org), 40, memo="top-up")
    step()
    services.credits_grant(fresh(org), 25, kind=Kind.ADJUSTMENT)
    step()
    services.credits_grant(fresh(org), -11, kind=Kind.ADJUSTMENT)
    step()
    services.plan_change(fresh(org), Plan.objects.get(slug="professional"), actor_user=owner)
    step()
    late_settle = services.credits_reserve(fresh(org), 6)
    late_cheaper = services.credits_reserve(fresh(org), 8)
    late_dearer = services.credits_reserve(fresh(org), 2)
    with time_machine.travel(fresh(org).subscription.current_period_end + timedelta(hours=1)):
        services.ensure_current_period(fresh(org))  # rollover with reservations open
        step()
        services.credits_refund(held)  # a charge from the last period: granted now
        step()
        services.credits_settle(late_settle)
        step()
        services.credits_settle(late_cheaper, final_cost=3)
        step()
        services.credits_settle(late_dearer, final_cost=10)
        step()
        services.credits_settle(services.credits_reserve(fresh(org), 4), final_cost=0)
        step()
        assert services.reservations_sweep(older_than=timedelta(0)) == 0
        stale = services.credits_reserve(fresh(org), 12)
    with time_machine.travel(stale.created_at + timedelta(minutes=20)):
        assert services.reservations_sweep(older_than=timedelta(minutes=10)) == 1
        step()
    assert len(seen) > 10  # the figures really moved between the steps


def test_billing_verify_is_quiet_about_consistent_accounts(org, owner, make_org, capsys):
    services.credits_reserve(fresh(org), 3)
    make_org(owner, plan="free", slug="other")
    call_command("billing_verify")
    assert capsys.readouterr().out.strip() == "Every account matches its ledger."


@pytest.mark.parametrize("column, field", [("period_used", "credits_used"),
                                           ("period_granted", "credits_granted"),
                                           ("period_reserved", "credits_reserved"),
                                           ("balance", "balance")])
def test_billing_verify_reports_a_tampered_account_and_fails(org, owner, make_org, capsys,
                                                             column, field):
    services.credits_settle(services.credits_reserve(fresh(org), 20))
    services.credits_reserve(fresh(org), 1)
    make_org(owner, plan="free", slug="other")
    account = CreditAccount.objects.get(organization=org)
    stored = getattr(account, column) + 7
    CreditAccount.objects.filter(pk=account.pk).update(**{column: stored})

    with pytest.raises(CommandError, match="1 difference"):
        call_command("billing_verify")

    computed = stored - 7
    assert capsys.readouterr().out.splitlines() == [
        f"acme {field} stored={stored} computed={computed}"]


def test_the_migration_fills_the_figures_from_the_ledger(org, owner, make_org):
    services.credits_settle(services.credits_reserve(fresh(org), 20), final_cost=15)
    services.credits_reserve(fresh(org), 4)
    held = services.credits_reserve(fresh(org), 9)
    with time_machine.travel(fresh(org).subscription.current_period_end + timedelta(hours=1)):
        services.ensure_current_period(fresh(org))
        services.credits_refund(held)
        services.credits_settle(services.credits_reserve(fresh(org), 30))
        services.credits_grant(fresh(org), -100, kind=Kind.ADJUSTMENT)
    make_org(owner, plan="free", slug="other")
    expected = {a.pk: (a.period_granted, a.period_used, a.period_reserved)
                for a in CreditAccount.objects.all()}
    assert expected[fresh(org).credit_account.pk] == (5009, 130, 0)
    CreditAccount.objects.update(period_granted=0, period_used=0, period_reserved=0)

    migration = importlib.import_module("billing.migrations.0006_account_period_figures")
    migration.fill_period_figures(apps, None)

    assert {a.pk: (a.period_granted, a.period_used, a.period_reserved)
            for a in CreditAccount.objects.all()} == expected
