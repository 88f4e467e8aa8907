"""The only writers of credits (API.md 5.2).

Every change of balance is one conditional UPDATE of the organization's `CreditAccount` row
(`balance + delta >= 0`, also guarded by a CHECK constraint) and one `LedgerEntry` written in
the same short transaction. No lock is held across retrieval or generation: a request
reserves (charges) first, then settles (keeps) or refunds. Correctness across processes and
hosts rests on the database's row locks only.
"""

from __future__ import annotations

import calendar
import functools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException

from billing.models import CreditAccount, LedgerEntry, Plan, Reservation, Subscription
from webhooks import events
from webhooks.models import Event, EventType

logger = logging.getLogger("egret.billing")

Kind = LedgerEntry.Kind
CREDITS_EXHAUSTED = "Credit quota exhausted. Upgrade your plan or wait for your quota to reset."


class CreditsExhausted(APIException):
    status_code = status.HTTP_402_PAYMENT_REQUIRED
    default_detail = CREDITS_EXHAUSTED
    default_code = "credits_exhausted"


class ReservationFinished(Exception):
    """Settle or refund of a reservation that was already settled or refunded."""


class NegativeBalance(ValueError):
    """An operator adjustment that would take the balance below zero."""


# --- Periods ------------------------------------------------------------------------------
def add_months(moment: datetime, months: int) -> datetime:
    """Same day and time `months` later; the day is clamped to the month's length."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def period_containing(anchor: datetime, now: datetime) -> tuple[datetime, datetime]:
    months = (now.year - anchor.year) * 12 + (now.month - anchor.month)
    while add_months(anchor, months) > now:
        months -= 1
    while add_months(anchor, months + 1) <= now:
        months += 1
    return add_months(anchor, months), add_months(anchor, months + 1)


# --- The one way a balance moves -----------------------------------------------------------
@dataclass(frozen=True)
class Movement:
    balance_after: int
    period_start: datetime
    # The period's figures after the movement (read by the same statement; for alerts).
    granted: int = 0
    used: int = 0
    reserved: int = 0

    @property
    def consumed(self) -> int:
        return self.used + self.reserved


@dataclass(frozen=True)
class Figures:
    """What a movement adds to the current period's granted, used and reserved (API.md 5.3),
    kept on the account row by the statement that moves the balance."""

    granted: int = 0
    used: int = 0
    reserved: int = 0


NO_FIGURES = Figures()
FIGURE_COLUMNS = (("granted", "period_granted"), ("used", "period_used"),
                  ("reserved", "period_reserved"))


def _operator_figures(kind: str, amount: int) -> Figures:
    """Grants, top-ups and positive adjustments are granted; negative adjustments are used."""
    if kind in (Kind.MONTHLY_GRANT, Kind.TOP_UP) or amount > 0:
        return Figures(granted=amount)
    return Figures(used=-amount)


def _move(organization_id, delta: int, figures: Figures = NO_FIGURES, *,
          charged_in: datetime | None = None, late: Figures = NO_FIGURES) -> Movement | None:
    """balance += delta unless that goes below zero; None when it would. One statement: the
    row lock it takes is held only until the surrounding (short) transaction commits.
    The period's figures move by `figures`, or, when `charged_in` (the period of the
    reservation being finished) is no longer the account's period, by `late`: the statement
    decides under the row lock, so a rollover cannot slip in between."""
    table = connection.ops.quote_name(CreditAccount._meta.db_table)
    sets, params = [], []
    for name, column in FIGURE_COLUMNS:
        if charged_in is None:
            sets.append(f"{column} = {column} + %s")
            params.append(getattr(figures, name))
        else:
            sets.append(f"{column} = {column} + CASE WHEN period_start = %s THEN %s ELSE %s END")
            params += [connection.ops.adapt_datetimefield_value(charged_in),
                       getattr(figures, name), getattr(late, name)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET balance = balance + %s, {', '.join(sets)}, updated_at = %s "
            f"WHERE organization_id = %s AND balance + %s >= 0 "
            f"RETURNING balance, period_start, period_granted, period_used, period_reserved",
            [delta, *params, connection.ops.adapt_datetimefield_value(timezone.now()),
             _db_id(organization_id), delta],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    period_start = row[1]
    if isinstance(period_start, str):  # SQLite returns text from raw SQL
        period_start = _parse_db_datetime(period_start)
    elif timezone.is_naive(period_start):
        period_start = timezone.make_aware(period_start, timezone.get_fixed_timezone(0))
    return Movement(balance_after=row[0], period_start=period_start, granted=row[2],
                    used=row[3], reserved=row[4])


def _db_id(organization_id):
    field = CreditAccount._meta.get_field("organization").target_field
    return field.get_db_prep_value(organization_id, connection)


def _parse_db_datetime(value: str) -> datetime:
    from django.utils.dateparse import parse_datetime

    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError(f"Unexpected datetime from the database: {value!r}")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(
        parsed, timezone.get_fixed_timezone(0))


def _entry(organization_id, kind: str, amount: int, movement: Movement, **fields) -> LedgerEntry:
    return LedgerEntry.objects.create(
        organization_id=organization_id, kind=kind, amount=amount,
        balance_after=movement.balance_after, period_start=movement.period_start, **fields,
    )


# --- Alerts (API.md 13): events written in the transaction of the movement -----------------
def _alert_consumed(organization, movement: Movement, consumed: int) -> None:
    """`consumed` credits were just used by `movement`: thresholds crossed and exhaustion are
    recorded as events. When neither happened (nearly always) nothing is read or written."""
    thresholds = organization.credit_alert_thresholds
    if movement.balance_after > 0 and not events.crossed(
            thresholds, movement.granted, movement.consumed - consumed, movement.consumed):
        return
    _alert_figures(organization.pk, thresholds, organization.subscription.current_period_end,
                   movement, consumed)


def _alert_figures(organization_id, thresholds: list[int], period_end: datetime,
                   movement: Movement, consumed: int) -> None:
    events.credits_consumed(
        organization_id, thresholds, granted=movement.granted,
        consumed_before=movement.consumed - consumed, consumed_after=movement.consumed,
        balance=movement.balance_after, period_start=movement.period_start,
        period_end=period_end)


def _alert_refused(organization) -> None:
    """A charge the balance could not cover: `credits.exhausted`, once per period."""
    account = CreditAccount.objects.filter(organization_id=organization.pk).values(
        "balance", "period_start", "period_granted", "period_used", "period_reserved").first()
    if account is None:
        return
    events.credits_refused(
        organization, period_start=account["period_start"],
        period_end=organization.subscription.current_period_end,
        granted=account["period_granted"], balance=account["balance"],
        consumed=account["period_used"] + account["period_reserved"])


def _alert_operator_move(organization, kind: str, amount: int, movement: Movement,
                         memo: str) -> None:
    if kind in (Kind.TOP_UP, Kind.ADJUSTMENT) and amount > 0:
        events.credits_granted(organization.pk, kind=kind, amount=amount,
                               balance=movement.balance_after, memo=memo)
    elif amount < 0:
        _alert_consumed(organization, movement, -amount)


# --- Accounts and periods -------------------------------------------------------------------
def account_open(organization, *, now: datetime | None = None) -> CreditAccount:
    """Subscription + account for a new organization, with the first period's allowance."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = Subscription.objects.create(
            organization=organization, anchor=now, current_period_start=now,
            current_period_end=add_months(now, 1),
        )
        account = CreditAccount.objects.create(organization=organization, balance=0,
                                               period_start=now)
        allowance = subscription.monthly_credits(organization.plan)
        if allowance:
            movement = _move(organization.pk, allowance, Figures(granted=allowance))
            _entry(organization.pk, Kind.MONTHLY_GRANT, allowance, movement,
                   memo=f"{organization.plan.slug} plan allowance")
            account.balance, account.period_granted = movement.balance_after, allowance
    return account


def period_is_over(organization, now: datetime | None = None) -> bool:
    subscription = organization.subscription
    return (now or timezone.now()) >= subscription.current_period_end


def ensure_current_period(organization, now: datetime | None = None) -> None:
    """Lazy rollover at the first billing touch after a period ends (cheap when it has not)."""
    if period_is_over(organization, now):
        period_rollover(organization, now=now)
        organization.subscription.refresh_from_db()
        organization.credit_account.refresh_from_db()


def period_rollover(organization, *, now: datetime | None = None) -> bool:
    """Expire what is left and grant the allowance, exactly once per period. Returns whether
    this call did it. The account row lock serializes racers; the second one finds the new
    period and does nothing (a unique constraint on the ledger is the last guard)."""
    now = now or timezone.now()
    with transaction.atomic():
        account = CreditAccount.objects.select_for_update().get(organization=organization)
        subscription = Subscription.objects.select_for_update().get(organization=organization)
        if now < subscription.current_period_end:
            return False
        old_start = account.period_start
        start, end = period_containing(subscription.anchor, now)
        expired = account.balance
        if account.balance > 0:
            movement = _move(organization.pk, -account.balance)
            _entry(organization.pk, Kind.EXPIRY, movement.balance_after - account.balance,
                   Movement(movement.balance_after, old_start), memo="unused credits expired")
        # The new period starts with nothing granted, used or reserved (a reservation still
        # open from the old period counts there; its refund will be granted in this one).
        CreditAccount.objects.filter(pk=account.pk).update(
            period_start=start, period_granted=0, period_used=0, period_reserved=0)
        subscription.current_period_start, subscription.current_period_end = start, end
        subscription.save(update_fields=["current_period_start", "current_period_end"])
        plan = Plan.objects.get(pk=organization.plan_id)
        allowance = subscription.monthly_credits(plan)
        movement = _move(organization.pk, allowance, Figures(granted=allowance))
        _entry(organization.pk, Kind.MONTHLY_GRANT, allowance, movement,
               memo=f"{plan.slug} plan allowance")
        events.period_renewed(organization.pk, period_start=start, period_end=end,
                              granted=allowance, expired=max(0, expired))
    logger.info("Rolled over %s to the period starting %s", organization.slug, start.isoformat())
    return True


def rollover_due(now: datetime | None = None) -> int:
    """Roll over every organization whose period has ended; returns how many were."""
    from organizations.models import Organization

    now = now or timezone.now()
    due = Organization.objects.filter(subscription__current_period_end__lte=now)
    return sum(1 for organization in due.iterator() if period_rollover(organization, now=now))


# --- Credits ---------------------------------------------------------------------------------
def credits_grant(organization, amount: int, *, kind: str = Kind.TOP_UP, memo: str = "",
                  actor_user=None) -> LedgerEntry:
    """Operator top-up (positive) or adjustment (either sign, never below zero)."""
    if kind not in (Kind.TOP_UP, Kind.ADJUSTMENT):
        raise ValueError(f"credits_grant cannot write {kind!r} entries")
    if amount == 0 or (kind == Kind.TOP_UP and amount < 0):
        raise ValueError("A top-up must be a positive number of credits.")
    ensure_current_period(organization)
    with transaction.atomic():
        movement = _move(organization.pk, amount, _operator_figures(kind, amount))
        if movement is None:
            raise NegativeBalance("The adjustment would make the balance negative.")
        entry = _entry(organization.pk, kind, amount, movement, memo=memo, actor_user=actor_user)
        _alert_operator_move(organization, kind, amount, movement, memo)
    return entry


def credits_reserve(organization, amount: int, *, actor_user=None, actor_api_key=None,
                    idempotency_key: str | None = None, session_id=None, message_id=None,
                    model: str = "", domain: str = "", memo: str = "",
                    comparison_id=None) -> Reservation:
    """Charge `amount` now (one conditional UPDATE); 402 when the balance cannot cover it.
    `message_id` is the id the answer will be stored under: the charge names the message it
    pays for from the start (a refund without a stored answer clears it). `comparison_id`:
    the comparison the charge pays for (POST /v1/compare/)."""
    if amount <= 0:
        raise ValueError("A reservation must be for a positive number of credits.")
    ensure_current_period(organization)
    fields = dict(actor_user_id=getattr(actor_user, "pk", None),
                  actor_api_key_id=getattr(actor_api_key, "pk", None),
                  idempotency_key=idempotency_key, session_id=session_id,
                  message_id=message_id, model=model, domain=domain, memo=memo,
                  comparison_id=comparison_id)
    if connection.vendor == "postgresql":
        return _reserve_one_statement(organization, amount, fields)
    return _reserve_in_transaction(organization, amount, fields)


def _reserve_in_transaction(organization, amount: int, fields: dict) -> Reservation:
    """Three statements in one transaction (SQLite, where the writer lock covers the whole
    transaction anyway)."""
    with transaction.atomic():
        movement = _move(organization.pk, -amount, Figures(reserved=amount))
        if movement is not None:
            _alert_consumed(organization, movement, amount)
            reservation = Reservation.objects.create(
                organization_id=organization.pk, amount=amount,
                period_start=movement.period_start, session_id=fields.get("session_id"),
                comparison_id=fields.get("comparison_id"))
            _entry(organization.pk, Kind.QUERY_CHARGE, -amount, movement,
                   reservation=reservation, **fields)
    if movement is None:
        _alert_refused(organization)  # outside the block: the 402 must not undo it
        raise CreditsExhausted()
    return reservation


@functools.cache
def _reserve_statement() -> str:
    """UPDATE ... RETURNING feeding both INSERTs: the reservation and its ledger entry are
    written by the statement that takes the row lock, so (outside an outer transaction) the
    lock is held for one round trip instead of three plus COMMIT (docs/benchmarks.md).
    clock_timestamp(), not now(): now() is the statement's start, before it waited for the
    lock, and created_at order would then disagree with balance_after order."""
    quote = connection.ops.quote_name
    account = quote(CreditAccount._meta.db_table)
    res_cols = ("id", "organization", "amount", "status", "period_start", "session_id",
                "message_id", "comparison_id", "created_at", "finished_at")
    res_vals = ("%(id)s", "organization_id", "%(amount)s", "%(reserved)s", "period_start",
                "%(session_id)s", "NULL", "%(comparison_id)s", "at", "NULL")
    entry_cols = ("organization", "kind", "amount", "balance_after", "period_start",
                  "actor_user", "actor_api_key", "reservation", "session_id", "message_id",
                  "comparison_id", "model", "domain", "idempotency_key", "memo", "created_at")
    entry_vals = ("moved.organization_id", "%(kind)s", "-%(amount)s", "moved.balance",
                  "moved.period_start", "%(actor_user_id)s", "%(actor_api_key_id)s", "held.id",
                  "%(session_id)s", "%(message_id)s", "%(comparison_id)s", "%(model)s",
                  "%(domain)s", "%(idempotency_key)s", "%(memo)s", "moved.at")

    def columns(model, names):
        return ", ".join(quote(model._meta.get_field(name).column) for name in names)

    return (
        f"WITH moved AS (UPDATE {account} SET balance = balance - %(amount)s, "
        f"period_reserved = period_reserved + %(amount)s, updated_at = clock_timestamp() "
        f"WHERE organization_id = %(org)s AND balance - %(amount)s >= 0 "
        f"RETURNING organization_id, balance, period_start, period_granted, "
        f"period_used + period_reserved AS consumed, clock_timestamp() AS at), "
        f"held AS (INSERT INTO {quote(Reservation._meta.db_table)} "
        f"({columns(Reservation, res_cols)}) SELECT {', '.join(res_vals)} FROM moved "
        f"RETURNING id), "
        f"{_alerts_statement()} "
        f"INSERT INTO {quote(LedgerEntry._meta.db_table)} ({columns(LedgerEntry, entry_cols)}) "
        f"SELECT {', '.join(entry_vals)} FROM moved, held "
        f"RETURNING period_start, created_at, (SELECT count(*) FROM alerts)"
    )


def _alerts_statement() -> str:
    """The `alerts` part of the one-statement charge: the events of API.md 13 this charge
    causes, inserted by the statement that moves the balance (so in its transaction, under
    its row lock). Per threshold t (percent), consumption before < t% of granted <= after;
    exhausted when the balance reached zero. The dedupe key is `events.period_key`'s, and the
    unique index drops a second one. On a plain charge the lateral join has no row: nothing
    is written and no round trip is added."""
    quote = connection.ops.quote_name
    event_cols = ", ".join(quote(Event._meta.get_field(name).column) for name in (
        "id", "organization", "type", "data", "dedupe_key", "created_at", "dispatched_at"))
    return (
        f"alerts AS (INSERT INTO {quote(Event._meta.db_table)} ({event_cols}) "
        f"SELECT gen_random_uuid(), moved.organization_id, crossing.type, "
        f"jsonb_build_object('credits_used', moved.consumed, 'credits_granted', "
        f"moved.period_granted, 'credits_remaining', moved.balance, 'period_end', "
        f"%(period_end)s::text) || CASE WHEN crossing.percent IS NULL THEN '{{}}'::jsonb "
        f"ELSE jsonb_build_object('threshold_percent', crossing.percent) END, "
        f"crossing.type || ':' || coalesce(crossing.percent::text, '') || ':' || "
        f"floor(extract(epoch FROM moved.period_start))::bigint, moved.at, NULL "
        f"FROM moved CROSS JOIN LATERAL ("
        f"SELECT %(threshold_type)s::text AS type, t AS percent "
        f"FROM unnest(%(thresholds)s::integer[]) AS t WHERE moved.period_granted > 0 "
        f"AND (moved.consumed - %(amount)s) * 100 < t * moved.period_granted "
        f"AND t * moved.period_granted <= moved.consumed * 100 "
        f"UNION ALL SELECT %(exhausted_type)s::text, NULL WHERE moved.balance = 0"
        f") AS crossing ON CONFLICT DO NOTHING RETURNING 1)"
    )


def _reserve_one_statement(organization, amount: int, fields: dict) -> Reservation:
    import uuid

    reservation_id = uuid.uuid4()
    period_end = organization.subscription.current_period_end
    with connection.cursor() as cursor:
        cursor.execute(_reserve_statement(), {
            "id": reservation_id, "org": organization.pk, "amount": amount,
            "reserved": Reservation.Status.RESERVED, "kind": Kind.QUERY_CHARGE, **fields,
            "thresholds": list(organization.credit_alert_thresholds),
            "period_end": events.iso(period_end),
            "threshold_type": EventType.THRESHOLD_REACHED, "exhausted_type": EventType.EXHAUSTED,
        })
        row = cursor.fetchone()
    if row is None:
        _alert_refused(organization)
        raise CreditsExhausted()
    if row[2]:
        events.dispatch_after_commit()
    reservation = Reservation(id=reservation_id, organization_id=organization.pk,
                              amount=amount, status=Reservation.Status.RESERVED,
                              period_start=row[0], session_id=fields["session_id"],
                              comparison_id=fields["comparison_id"], created_at=row[1])
    reservation._state.adding, reservation._state.db = False, connection.alias
    return reservation


def _finish(reservation: Reservation, new_status: str, **fields) -> None:
    """The state machine's only edge: reserved -> settled | refunded, taken once."""
    now = timezone.now()
    moved = Reservation.objects.filter(pk=reservation.pk, status=Reservation.Status.RESERVED
                                       ).update(status=new_status, finished_at=now, **fields)
    if not moved:
        raise ReservationFinished(f"Reservation {reservation.pk} is no longer open.")
    reservation.status, reservation.finished_at = new_status, now
    for name, value in fields.items():
        setattr(reservation, name, value)


def _charge_entry(reservation: Reservation) -> LedgerEntry:
    return reservation.entries.filter(kind=Kind.QUERY_CHARGE).order_by("id").first()


def _charge_forgets_message(reservation: Reservation) -> None:
    """A charge names the message its answer was to be stored under; when the request failed
    before storing it, that id names nothing and is cleared. The only column of an entry ever
    written after its insert (no amount or balance changes), on the failure path only, and
    before the account row is locked."""
    LedgerEntry.objects.filter(reservation_id=reservation.pk, kind=Kind.QUERY_CHARGE,
                               message_id__isnull=False).update(message_id=None)


def credits_settle(reservation: Reservation, *, final_cost: int | None = None,
                   message_id=None, session_id=None,
                   memo: str = "final cost below the reservation") -> Reservation:
    """Keep the charge; if the final cost differs, charge (as far as the balance allows) or
    refund the difference. The period's figures move from reserved to used in the same
    statement as any difference (a charge from an earlier period was counted there)."""
    amount, charged_in = reservation.amount, reservation.period_start
    kept = Figures(used=amount, reserved=-amount)
    with transaction.atomic():
        _finish(reservation, Reservation.Status.SETTLED, message_id=message_id,
                session_id=session_id or reservation.session_id)
        if final_cost is None or final_cost == amount:
            _move(reservation.organization_id, 0, kept, charged_in=charged_in)
            return reservation
        charge = _charge_entry(reservation)
        refs = dict(reservation=reservation, actor_user_id=charge.actor_user_id,
                    actor_api_key_id=charge.actor_api_key_id, session_id=reservation.session_id,
                    message_id=message_id, comparison_id=reservation.comparison_id,
                    model=charge.model, domain=charge.domain)
        difference = final_cost - amount
        if difference < 0:
            movement = _move(reservation.organization_id, -difference,
                             Figures(used=amount + difference, reserved=-amount),
                             charged_in=charged_in, late=Figures(granted=-difference))
            _entry(reservation.organization_id, Kind.REFUND, -difference, movement,
                   memo=memo, **refs)
        else:
            balance = CreditAccount.objects.select_for_update().values_list(
                "balance", flat=True).get(organization_id=reservation.organization_id)
            extra = min(difference, balance)
            movement = _move(reservation.organization_id, -extra,
                             Figures(used=amount + extra, reserved=-amount),
                             charged_in=charged_in, late=Figures(used=extra))
            if extra:
                _entry(reservation.organization_id, Kind.QUERY_CHARGE, -extra, movement,
                       memo="final cost above the reservation", **refs)
                _alert_settled_extra(reservation.organization_id, movement, extra)
    return reservation


def _alert_settled_extra(organization_id, movement: Movement, extra: int) -> None:
    """Rare (a final cost above the reservation): the thresholds are read only here."""
    from organizations.models import Organization

    thresholds, period_end = Organization.objects.filter(pk=organization_id).values_list(
        "credit_alert_thresholds", "subscription__current_period_end").get()
    _alert_figures(organization_id, thresholds, period_end, movement, extra)


def credits_refund(reservation: Reservation, *, memo: str = "", message_id=None) -> Reservation:
    """Give the whole reservation back (generation failed, stream broke, no grounded answer,
    or the request died and the sweeper found it). A charge from an earlier period was
    counted there: its refund is granted in the current one. `message_id` names the answer
    that was stored at no charge (an ungrounded one), if any: the charge and the refund
    both refer to it; without one, the charge's planned message id is cleared."""
    with transaction.atomic():
        _finish(reservation, Reservation.Status.REFUNDED,
                **({"message_id": message_id} if message_id is not None else {}))
        if message_id is None:
            _charge_forgets_message(reservation)
        charge = _charge_entry(reservation)
        movement = _move(reservation.organization_id, reservation.amount,
                         Figures(reserved=-reservation.amount),
                         charged_in=reservation.period_start,
                         late=Figures(granted=reservation.amount))
        _entry(reservation.organization_id, Kind.REFUND, reservation.amount, movement,
               reservation=reservation, actor_user_id=charge.actor_user_id,
               actor_api_key_id=charge.actor_api_key_id, session_id=reservation.session_id,
               message_id=message_id, comparison_id=reservation.comparison_id,
               model=charge.model, domain=charge.domain, memo=memo)
    return reservation


def reservations_sweep(*, older_than: timedelta, now: datetime | None = None) -> int:
    """Refund reservations left open longer than `older_than` (their request died)."""
    cutoff = (now or timezone.now()) - older_than
    stale = Reservation.objects.filter(status=Reservation.Status.RESERVED, created_at__lt=cutoff)
    refunded = 0
    for reservation in stale.iterator():
        try:
            credits_refund(reservation, memo="request did not finish; refunded by the sweeper")
        except ReservationFinished:
            continue  # it finished while we looked
        refunded += 1
    return refunded


# --- Plan changes ----------------------------------------------------------------------------
def plan_change(organization, plan: Plan, *, actor_user=None) -> None:
    """Proration rule (README): an upgrade grants the difference between the new and the old
    monthly allowance at once; a downgrade caps the balance at the new allowance. The next
    period grants the new plan's allowance."""
    from organizations import services as org_services

    ensure_current_period(organization)
    with transaction.atomic():
        account = CreditAccount.objects.select_for_update().get(organization=organization)
        subscription = organization.subscription
        old_allowance = subscription.monthly_credits(organization.plan)
        org_services.organization_set_plan(organization, plan)
        new_allowance = subscription.monthly_credits(plan)
        memo = f"plan change {old_allowance}->{new_allowance} credits/month"
        if new_allowance > old_allowance:
            delta = new_allowance - old_allowance
        else:
            delta = -max(0, account.balance - new_allowance)
        if delta:
            movement = _move(organization.pk, delta, _operator_figures(Kind.ADJUSTMENT, delta))
            _entry(organization.pk, Kind.ADJUSTMENT, delta, movement, memo=memo,
                   actor_user=actor_user)
            _alert_operator_move(organization, Kind.ADJUSTMENT, delta, movement, memo)
