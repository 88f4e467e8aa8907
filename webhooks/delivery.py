"""Sending events (API.md 13): fan-out of the outbox, then signed POSTs with retries.

`deliver_pending()` is what every runner calls (the in-process thread of the embedded
default, the `deliver_webhooks` task under `db_worker`, the `webhooks_deliver` command that
cron or a systemd timer runs every minute). Any number of them may run at once on any number
of hosts: an event is fanned out by whoever marks it dispatched, and a delivery is sent by
whoever moves its `next_attempt_at` forward (a lease longer than the timeout), both with one
conditional UPDATE. The network happens outside any transaction, in a small thread pool, so
one hanging receiver holds one connection for at most the timeout and never a web worker.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import metrics
from webhooks import signing, transport
from webhooks.events import iso
from webhooks.models import Delivery, DeliveryAttempt, Endpoint, Event

logger = logging.getLogger("egret.webhooks")

# Waits after the 1st..6th failed attempt of a round: 1 min, 4 min, 16 min, 64 min, 4.3 h,
# 17 h. The 7th attempt comes about 22.75 hours after the first; when it fails the delivery
# is `failed`.
BACKOFF_SECONDS = tuple(60 * 4 ** n for n in range(6))
ATTEMPTS_PER_ROUND = len(BACKOFF_SECONDS) + 1
DEACTIVATE_AFTER = timedelta(days=3)
BATCH = 100
Status = Delivery.Status


def lease() -> timedelta:
    return timedelta(seconds=settings.EGRET_WEBHOOKS_TIMEOUT + 50)


def deliver_pending(*, now: datetime | None = None, max_batches: int = 20) -> int:
    """Fan out new events and send what is due; returns the number of attempts made."""
    sent = 0
    for _ in range(max_batches):
        fanned = events_fan_out(now=now)
        jobs = deliveries_claim(now=now)
        if not jobs:
            if not fanned:
                break
            continue
        deliveries_send(jobs)
        sent += len(jobs)
    return sent


# --- Fan-out ----------------------------------------------------------------------------------
def _take(queryset):
    """Rows this runner may work on: locked, skipping those another runner holds (PostgreSQL;
    SQLite's IMMEDIATE transaction already makes the runner the only writer)."""
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True)
    return queryset


def events_fan_out(*, now: datetime | None = None, limit: int = BATCH) -> int:
    """One delivery per active endpoint of the event's organization that wants its type, for
    a batch of events in one transaction (a handful of statements whatever its size)."""
    now = now or timezone.now()
    with transaction.atomic():
        waiting = _take(Event.objects.filter(dispatched_at__isnull=True).order_by("created_at"))
        batch = list(waiting.values_list("pk", "organization_id", "type")[:limit])
        if not batch:
            return 0
        Event.objects.filter(pk__in=[pk for pk, _, _ in batch]).update(dispatched_at=now)
        endpoints: dict = {}
        for endpoint in Endpoint.objects.filter(
                organization_id__in={org for _, org, _ in batch}, is_active=True).only(
                "id", "organization_id", "events"):
            endpoints.setdefault(endpoint.organization_id, []).append(endpoint)
        Delivery.objects.bulk_create([
            Delivery(endpoint=endpoint, event_id=event_id, next_attempt_at=now, created_at=now)
            for event_id, organization_id, event_type in batch
            for endpoint in endpoints.get(organization_id, ()) if endpoint.wants(event_type)])
    return len(batch)


# --- Sending ----------------------------------------------------------------------------------
@dataclass
class Job:
    delivery: Delivery
    body: bytes
    headers: dict[str, str]
    outcome: transport.Outcome | None = None
    started_at: datetime | None = None


def deliveries_claim(*, now: datetime | None = None, limit: int = BATCH) -> list[Job]:
    """A batch of due deliveries, leased to this runner (their next attempt moved past the
    time a POST can take) in one transaction."""
    now = now or timezone.now()
    with transaction.atomic():
        due = _take(Delivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
                    .order_by("next_attempt_at"))
        claimed = list(due.values_list("pk", flat=True)[:limit])
        if not claimed:
            return []
        Delivery.objects.filter(pk__in=claimed).update(next_attempt_at=now + lease())
    deliveries = Delivery.objects.filter(pk__in=claimed).select_related(
        "endpoint", "event", "event__organization")
    jobs = []
    for delivery in deliveries:
        if not delivery.endpoint.is_active:
            _give_up(delivery, "the endpoint is inactive")
            continue
        jobs.append(_job(delivery, now))
    return jobs


def event_body(event: Event) -> bytes:
    """The event object (API.md 13), the same bytes at every attempt."""
    return json.dumps({"id": event.public_id, "type": event.type,
                       "created_at": iso(event.created_at),
                       "organization": event.organization.slug, "data": event.data},
                      separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signing_secrets(endpoint: Endpoint, now: datetime) -> list[str]:
    rotated = endpoint.previous_secret and endpoint.previous_secret_expires_at and \
        endpoint.previous_secret_expires_at > now
    return [endpoint.secret, endpoint.previous_secret] if rotated else [endpoint.secret]


def _job(delivery: Delivery, now: datetime) -> Job:
    body = event_body(delivery.event)
    header = signing.signature_header(signing_secrets(delivery.endpoint, now),
                                      int(now.timestamp()), body)
    return Job(delivery, body, {"Egret-Event-Id": delivery.event.public_id,
                                "Egret-Signature": header})


def deliveries_send(jobs: list[Job]) -> None:
    """POST them in parallel (network only in the pool's threads), then record the results
    here (database only in the caller's thread)."""
    workers = max(1, min(len(jobs), settings.EGRET_WEBHOOKS_CONCURRENCY))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="egret-webhook-post") as pool:
        list(pool.map(_post, jobs))
    attempts_record([(job.delivery, job.outcome, job.started_at) for job in jobs])


def _post(job: Job) -> None:
    job.started_at = timezone.now()
    job.outcome = transport.post(
        job.delivery.endpoint.url, job.body, job.headers,
        timeout=settings.EGRET_WEBHOOKS_TIMEOUT,
        allow_http=settings.EGRET_WEBHOOKS_ALLOW_HTTP,
        allow_private=settings.EGRET_WEBHOOKS_ALLOW_PRIVATE)


# --- Results ----------------------------------------------------------------------------------
def next_wait(round_attempts: int) -> timedelta | None:
    """After the n-th failed attempt of a round: how long until the next, None when that was
    the last."""
    if round_attempts >= ATTEMPTS_PER_ROUND:
        return None
    return timedelta(seconds=BACKOFF_SECONDS[round_attempts - 1])


def attempts_record(results: list[tuple[Delivery, transport.Outcome, datetime | None]]) -> None:
    """Each delivery's attempt, new state and next attempt, and its endpoint's run of
    failures, for a whole batch in a few statements."""
    now = timezone.now()
    attempts, succeeded, failed = [], set(), set()
    for delivery, outcome, started_at in results:
        delivery.attempts += 1
        delivery.last_status_code, delivery.last_error = outcome.status_code, outcome.error[:500]
        attempts.append(DeliveryAttempt(
            delivery=delivery, number=delivery.attempts, started_at=started_at or now,
            duration_ms=int(outcome.seconds * 1000), status_code=outcome.status_code,
            error=outcome.error[:500], succeeded=outcome.ok))
        if outcome.ok:
            delivery.status, delivery.next_attempt_at = Status.SUCCEEDED, None
            succeeded.add(delivery.endpoint_id)
        else:
            wait = next_wait(delivery.attempts - delivery.round_offset)
            delivery.status = Status.PENDING if wait else Status.FAILED
            delivery.next_attempt_at = now + wait if wait else None
            failed.add(delivery.endpoint_id)
        delivery.updated_at = now
    with transaction.atomic():
        DeliveryAttempt.objects.bulk_create(attempts)
        Delivery.objects.bulk_update(
            [delivery for delivery, _, _ in results],
            ["attempts", "last_status_code", "last_error", "status", "next_attempt_at",
             "updated_at"])
        # an endpoint that answered 2xx is alive, whatever else failed in the batch
        Endpoint.objects.filter(pk__in=succeeded, failing_since__isnull=False).update(
            failing_since=None)
        _endpoints_failed(failed - succeeded, now)
    for delivery, outcome, _ in results:
        metrics.observe_webhook_delivery(
            "succeeded" if outcome.ok else "refused" if outcome.error.startswith("refused")
            else "retrying" if delivery.status == Status.PENDING else "failed")


def _endpoints_failed(endpoint_ids: set, now: datetime) -> None:
    """A run of failures that started 3 days ago or more deactivates the endpoint."""
    if not endpoint_ids:
        return
    Endpoint.objects.filter(pk__in=endpoint_ids, failing_since__isnull=True).update(
        failing_since=now)
    stale = Endpoint.objects.filter(pk__in=endpoint_ids, is_active=True,
                                    failing_since__lte=now - DEACTIVATE_AFTER)
    for endpoint_id in stale.values_list("pk", flat=True):
        logger.warning("Webhook endpoint %s deactivated after %s of failures", endpoint_id,
                       DEACTIVATE_AFTER)
    stale.update(is_active=False, deactivated_at=now)


def _give_up(delivery: Delivery, reason: str) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(status=Status.FAILED, next_attempt_at=None,
                                                   last_error=reason, updated_at=timezone.now())
    metrics.observe_webhook_delivery("failed")
