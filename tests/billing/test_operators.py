"""Operators: credits_grant, billing_rollover, billing_sweep commands; admin actions; read-only
ledger in admin."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing import services
from billing.models import CreditAccount, LedgerEntry, Reservation
from organizations.models import Organization

Kind = LedgerEntry.Kind


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def balance(org) -> int:
    return CreditAccount.objects.get(organization=org).balance


def fresh(org):
    return Organization.objects.select_related("plan", "subscription", "credit_account").get(
        pk=org.pk)


def test_credits_grant_tops_up_and_adjusts(org):
    assert run("credits_grant", "acme", "250", "--memo", "goodwill") == \
        "acme: top_up +250, balance 5250."
    assert run("credits_grant", "acme", "-50") == "acme: adjustment -50, balance 5200."
    entry = LedgerEntry.objects.filter(kind=Kind.TOP_UP).get()
    assert entry.memo == "goodwill"
    with pytest.raises(CommandError, match="negative"):
        run("credits_grant", "acme", "-999999")
    with pytest.raises(CommandError, match="not found"):
        run("credits_grant", "nope", "5")
    assert balance(org) == 5200


def test_billing_rollover_command_rolls_over_due_organizations_once(org, owner, make_org):
    later = make_org(owner, plan="free", slug="later")
    sub = fresh(later).subscription
    sub.current_period_end = timezone.now() + timedelta(days=90)
    sub.save()
    end = fresh(org).subscription.current_period_end
    with time_machine.travel(end + timedelta(minutes=1)):
        assert run("billing_rollover") == "Rolled over 1 organization(s)."
        assert run("billing_rollover") == "Rolled over 0 organization(s)."
    assert LedgerEntry.objects.filter(organization=org, kind=Kind.EXPIRY).count() == 1
    assert not LedgerEntry.objects.filter(organization=later, kind=Kind.EXPIRY).exists()


def test_billing_sweep_respects_older_than(org):
    held = services.credits_reserve(fresh(org), 5)
    assert run("billing_sweep") == "Refunded 0 stale reservation(s)."
    with time_machine.travel(timezone.now() + timedelta(seconds=30)):
        assert run("billing_sweep", "--older-than", "60") == "Refunded 0 stale reservation(s)."
        assert run("billing_sweep", "--older-than", "10") == "Refunded 1 stale reservation(s)."
    held.refresh_from_db()
    assert held.status == Reservation.Status.REFUNDED
    assert balance(org) == 5000


def test_admin_grant_credits_action(staff, org):
    staff.post("/admin/organizations/organization/", {
        "action": "grant_credits", "_selected_action": [str(org.pk)], "amount": "300",
        "memo": "contract bonus"})
    entry = LedgerEntry.objects.get(kind=Kind.TOP_UP)
    assert (entry.amount, entry.memo, entry.actor_user.email) == (300, "contract bonus",
                                                                   "root@example.com")
    assert balance(org) == 5300


def test_admin_grant_credits_rejects_a_bad_amount(staff, org):
    staff.post("/admin/organizations/organization/", {
        "action": "grant_credits", "_selected_action": [str(org.pk)], "amount": "lots"})
    assert balance(org) == 5000


def test_admin_change_plan_action_applies_the_proration_rule(staff, org):
    staff.post("/admin/organizations/organization/", {
        "action": "change_plan", "_selected_action": [str(org.pk)], "plan": "professional"})
    assert fresh(org).plan.slug == "professional"
    assert balance(org) == 20000


@pytest.mark.parametrize("url", ["/admin/billing/ledgerentry/", "/admin/billing/creditaccount/",
                                 "/admin/billing/subscription/", "/admin/billing/reservation/",
                                 "/admin/billing/idempotencyrecord/"])
def test_billing_admin_pages_render(staff, org, url):
    response = staff.get(url)
    assert response.status_code in (200, 404)
    if "reservation" not in url:
        assert response.status_code == 200


def test_ledger_and_accounts_are_read_only_in_admin(staff, org):
    entry = LedgerEntry.objects.get()
    account = CreditAccount.objects.get()
    assert staff.get("/admin/billing/ledgerentry/add/").status_code == 403
    assert staff.post(f"/admin/billing/ledgerentry/{entry.pk}/change/",
                      {"amount": "999"}).status_code == 403
    assert staff.post(f"/admin/billing/creditaccount/{account.pk}/change/",
                      {"balance": "999"}).status_code == 403
    assert balance(org) == 5000
