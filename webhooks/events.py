"""Recording events: the outbox writes (API.md 13).

Every function here writes inside the caller's transaction, next to the change the event
reports, and asks for a dispatch once that transaction commits (nothing is sent for a change
that rolls back). Once-only events carry a `dedupe_key`; an insert that meets an existing
key is dropped by the database (`webhooks_event_once`), whatever the number of racers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

from django.db import transaction
from django.utils import timezone

from webhooks.models import Event, EventType


def event_record(organization_id, event_type: str, data: dict, *, dedupe_key: str | None = None,
                 now: datetime | None = None) -> None:
    events_record(organization_id, [(event_type, data, dedupe_key)], now=now)


def events_record(organization_id, events: Iterable[tuple[str, dict, str | None]], *,
                  now: datetime | None = None) -> None:
    rows = [Event(organization_id=organization_id, type=event_type, data=data,
                  dedupe_key=dedupe_key, created_at=now or timezone.now())
            for event_type, data, dedupe_key in events]
    if not rows:
        return
    Event.objects.bulk_create(rows, ignore_conflicts=True)
    dispatch_after_commit()


def dispatch_after_commit() -> None:
    from webhooks import dispatch

    transaction.on_commit(dispatch.kick)


# --- Credits ----------------------------------------------------------------------------------
def period_key(event_type: str, period_start: datetime, detail: int | str = "") -> str:
    """The once-per-period key, e.g. "credits.threshold_reached:80:1767225600" (the SQL of
    billing's one-statement charge builds the same string)."""
    return f"{event_type}:{detail}:{int(period_start.timestamp())}"


def crossed(thresholds: Iterable[int], granted: int, consumed_before: int,
            consumed_after: int) -> list[int]:
    """The thresholds (percent of `granted`) that consumption passed on its way from
    `consumed_before` to `consumed_after`: before < t% <= after."""
    if granted <= 0 or consumed_after <= consumed_before:
        return []
    return sorted(t for t in set(thresholds)
                  if consumed_before * 100 < t * granted <= consumed_after * 100)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def credit_figures(*, granted: int, consumed: int, balance: int, period_end: datetime) -> dict:
    return {"credits_used": consumed, "credits_granted": granted, "credits_remaining": balance,
            "period_end": iso(period_end)}


def credits_consumed(organization_id, thresholds: Iterable[int], *, granted: int,
                     consumed_before: int, consumed_after: int, balance: int,
                     period_start: datetime, period_end: datetime) -> None:
    """After a movement that used credits (a charge, a negative adjustment): one
    `credits.threshold_reached` per threshold crossed and `credits.exhausted` when nothing is
    left. Writes nothing when neither happened."""
    crossings = crossed(thresholds, granted, consumed_before, consumed_after)
    if not crossings and balance > 0:
        return
    figures = credit_figures(granted=granted, consumed=consumed_after, balance=balance,
                             period_end=period_end)
    found = [(EventType.THRESHOLD_REACHED, {"threshold_percent": t, **figures},
              period_key(EventType.THRESHOLD_REACHED, period_start, t)) for t in crossings]
    if balance <= 0:
        found.append((EventType.EXHAUSTED, figures, period_key(EventType.EXHAUSTED, period_start)))
    events_record(organization_id, found)


def credits_refused(organization, *, period_start: datetime, period_end: datetime,
                    granted: int, consumed: int, balance: int) -> None:
    """A charge the balance could not cover (the 402): the period's credits are exhausted
    for that request even when a few are left."""
    figures = credit_figures(granted=granted, consumed=consumed, balance=balance,
                             period_end=period_end)
    event_record(organization.pk, EventType.EXHAUSTED, figures,
                 dedupe_key=period_key(EventType.EXHAUSTED, period_start))


def credits_granted(organization_id, *, kind: str, amount: int, balance: int, memo: str) -> None:
    event_record(organization_id, EventType.GRANTED,
                 {"kind": kind, "amount": amount, "credits_remaining": balance, "memo": memo})


def period_renewed(organization_id, *, period_start: datetime, period_end: datetime,
                   granted: int, expired: int) -> None:
    event_record(organization_id, EventType.PERIOD_RENEWED, {
        "period_start": iso(period_start), "period_end": iso(period_end),
        "credits_granted": granted, "credits_expired": expired},
        dedupe_key=period_key(EventType.PERIOD_RENEWED, period_start))


# --- Documents --------------------------------------------------------------------------------
def document_finished(document, *, status: str, error: str = "") -> None:
    """Ingestion result of an organization's document (library documents have none)."""
    if document.organization_id is None:
        return
    event_type = EventType.DOCUMENT_READY if status == "ready" else EventType.DOCUMENT_FAILED
    data = {"document_id": str(document.pk), "title": document.title,
            "status": status}
    if error:
        data["error"] = error
    event_record(document.organization_id, event_type, data)


# --- API keys ---------------------------------------------------------------------------------
EXPIRY_NOTICE = timedelta(days=7)


def api_keys_expiring(*, now: datetime | None = None) -> int:
    """`api_key.expiring` for every active key that expires within 7 days, once per key and
    expiry date (run by the periodic `webhooks_deliver`). Returns how many keys qualified."""
    from organizations.models import ApiKey

    now = now or timezone.now()
    keys = ApiKey.objects.filter(revoked_at__isnull=True, expires_at__gt=now,
                                 expires_at__lte=now + EXPIRY_NOTICE,
                                 organization__is_active=True)
    rows = [Event(organization_id=key.organization_id, type=EventType.API_KEY_EXPIRING,
                  created_at=now, dedupe_key=f"{EventType.API_KEY_EXPIRING}:{key.pk}:"
                                             f"{int(key.expires_at.timestamp())}",
                  data={"api_key_id": str(key.pk), "name": key.name,
                        "key_prefix": key.key_prefix, "expires_at": iso(key.expires_at)})
            for key in keys.only("id", "organization_id", "name", "key_prefix", "expires_at")]
    with transaction.atomic():
        Event.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    return len(rows)


def events_purge(*, older_than: timedelta, now: datetime | None = None) -> int:
    """Deletes events (and their deliveries) older than `older_than`; the events API shows 30
    days and no delivery is retried for more than a day."""
    cutoff = (now or timezone.now()) - older_than
    deleted, _ = Event.objects.filter(created_at__lt=cutoff).delete()
    return deleted
