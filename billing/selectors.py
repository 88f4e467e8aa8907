from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from billing.models import CreditAccount, LedgerEntry, Plan, Reservation

Kind = LedgerEntry.Kind


def plans_public() -> QuerySet[Plan]:
    return Plan.objects.order_by("sort_order", "slug")


def current_quota(organization) -> dict:
    """API.md 5.3 from the account row (no query of its own when the request loaded it): the
    period's figures are kept there by billing.services with every movement, so the cost does
    not grow with the ledger. granted - used - reserved = remaining, because the balance is
    the sum of this period's entries (what was left of the last period expired at rollover)."""
    subscription = organization.subscription
    account = organization.credit_account
    remaining = account.balance
    return {
        "monthly_credits": subscription.monthly_credits(organization.plan),
        "credits_granted": account.period_granted,
        "credits_used": account.period_used,
        "credits_reserved": account.period_reserved,
        "credits_remaining": remaining,
        "is_exhausted": remaining <= 0,
        "period_start": subscription.current_period_start,
        "period_end": subscription.current_period_end,
    }


def period_figures_from_ledger(organization_id, period_start) -> dict[str, int]:
    """The period's granted, used and reserved recomputed from the ledger and reservations
    (what `billing_verify` compares the stored figures with; one aggregate over the period)."""
    earlier_charge = Q(reservation__period_start__lt=period_start)
    sums = LedgerEntry.objects.filter(organization_id=organization_id,
                                      period_start=period_start).aggregate(
        grants=Sum("amount", filter=Q(kind__in=[Kind.MONTHLY_GRANT, Kind.TOP_UP])
                   | Q(kind=Kind.ADJUSTMENT, amount__gt=0)),
        # A refund of a charge made in an earlier period gives credits to this one.
        late_refunds=Sum("amount", filter=Q(kind=Kind.REFUND) & earlier_charge),
        refunds=Sum("amount", filter=Q(kind=Kind.REFUND) & ~earlier_charge),
        charges=Sum("amount", filter=Q(kind=Kind.QUERY_CHARGE)),
        open_charges=Sum("amount", filter=Q(kind=Kind.QUERY_CHARGE,
                                            reservation__status=Reservation.Status.RESERVED)),
        debits=Sum("amount", filter=Q(kind=Kind.ADJUSTMENT, amount__lt=0)),
    )
    value = {k: v or 0 for k, v in sums.items()}
    reserved = -value["open_charges"]
    return {
        "granted": value["grants"] + value["late_refunds"],
        "used": -value["charges"] - value["refunds"] - reserved - value["debits"],
        "reserved": reserved,
    }


@dataclass(frozen=True)
class Difference:
    organization: str
    field: str
    stored: int
    computed: int


def account_differences() -> Iterator[Difference]:
    """Every account's balance and period figures against what the ledger and reservations
    say. Each account is read under its row lock together with its ledger, so a movement
    committing meanwhile cannot show up as a difference."""
    for pk in CreditAccount.objects.order_by("pk").values_list("pk", flat=True).iterator():
        with transaction.atomic():
            account = CreditAccount.objects.select_for_update(of=("self",)).select_related(
                "organization__subscription").get(pk=pk)
            found = list(_differences(account))
        yield from found


def _differences(account: CreditAccount) -> Iterator[Difference]:
    organization = account.organization
    computed = period_figures_from_ledger(organization.pk,
                                          organization.subscription.current_period_start)
    computed["balance"] = LedgerEntry.objects.filter(organization_id=organization.pk).aggregate(
        total=Sum("amount"))["total"] or 0
    stored = {"balance": account.balance, "granted": account.period_granted,
              "used": account.period_used, "reserved": account.period_reserved}
    for field in ("balance", "granted", "used", "reserved"):
        if stored[field] != computed[field]:
            name = field if field == "balance" else f"credits_{field}"
            yield Difference(organization.slug, name, stored[field], computed[field])


def usage(organization, *, start: date, end: date, group_by: str) -> dict:
    """Kept query charges, net of refunds, between two dates (inclusive), grouped."""
    lower = datetime.combine(start, time.min).replace(tzinfo=_utc())
    entries = LedgerEntry.objects.filter(
        organization=organization, kind__in=[Kind.QUERY_CHARGE, Kind.REFUND],
        created_at__gte=lower,
    )
    if end < date.max:  # the day after 9999-12-31 is no date: then there is no upper bound
        upper = datetime.combine(end + timedelta(days=1), time.min).replace(tzinfo=_utc())
        entries = entries.filter(created_at__lt=upper)
    column = {"day": TruncDate("created_at"), "api_key": F("actor_api_key_id"),
              "model": F("model"), "domain": F("domain")}[group_by]
    rows = (
        entries.annotate(group=column).values("group").order_by("group").annotate(
            net=Sum("amount"),
            queries=Count("reservation", distinct=True,
                          filter=Q(kind=Kind.QUERY_CHARGE,
                                   reservation__status=Reservation.Status.SETTLED)),
        )
    )
    out = [
        {"key": _key(row["group"]), "credits": -(row["net"] or 0), "queries": row["queries"]}
        for row in rows
    ]
    return {
        "start": start, "end": end, "group_by": group_by,
        "total_credits": sum(r["credits"] for r in out),
        "total_queries": sum(r["queries"] for r in out),
        "rows": out,
    }


def _key(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def _utc():
    from datetime import timezone

    return timezone.utc


def ledger_of(organization) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(organization=organization).select_related(
        "actor_user", "actor_api_key")
