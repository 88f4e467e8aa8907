"""Webhooks and credit alerts (API.md 13).

`Event` is the outbox: a row is written in the same transaction as the change it reports
(a charge, a rollover, an ingestion result), so a change that rolls back leaves none and a
committed one cannot lose it. A dispatcher later fans each event out into one `Delivery` per
subscribed `Endpoint` (`dispatched_at` marks that done) and sends the deliveries; each
try is a `DeliveryAttempt`.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone


class EventType(models.TextChoices):
    THRESHOLD_REACHED = "credits.threshold_reached"
    EXHAUSTED = "credits.exhausted"
    PERIOD_RENEWED = "credits.period_renewed"
    GRANTED = "credits.granted"
    DOCUMENT_READY = "document.ready"
    DOCUMENT_FAILED = "document.failed"
    API_KEY_EXPIRING = "api_key.expiring"
    PING = "ping"


ALL_EVENTS = "*"


class Event(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No database foreign key: a charge's statement inserts the event while it holds the
    # credit account's row lock, and a foreign-key check would lock the organization row
    # too (the ledger made the same choice, docs/benchmarks.md). Organizations are
    # deactivated, not deleted; a deletion cascades in Django.
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                     db_constraint=False, related_name="+")
    type = models.CharField(max_length=40, choices=EventType.choices)
    data = models.JSONField(default=dict, blank=True)
    # Events that may happen once only (a threshold per period, a key's expiry warning)
    # carry a key; the unique constraint below is the last guard against a second one.
    dedupe_key = models.CharField(max_length=120, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Set when the event was fanned out into deliveries (the outbox's "sent" mark).
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "dedupe_key"],
                                    condition=Q(dedupe_key__isnull=False),
                                    name="webhooks_event_once"),
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="webhooks_event_org"),
            models.Index(fields=["created_at"], condition=Q(dispatched_at__isnull=True),
                         name="webhooks_event_undispatched"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"

    @property
    def public_id(self) -> str:
        return f"evt_{self.id.hex}"


class Endpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                     related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)
    description = models.CharField(max_length=500, blank=True, default="")
    is_active = models.BooleanField(default=True)
    # The signing secret must be read to sign, so it is stored as it is; it is shown to
    # the client once and never by the admin.
    secret = models.CharField(max_length=64)
    # After a rotation the old secret keeps signing (a second v1=) until it expires.
    previous_secret = models.CharField(max_length=64, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # Start of the current run of failed attempts (cleared by any success).
    failing_since = models.DateTimeField(null=True, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return ALL_EVENTS in self.events or event_type in self.events


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Attempts made before the current round (a redelivery starts a new backoff schedule).
    round_offset = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    # When a pending delivery is due; while a sender holds it, the end of its lease.
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"),
                         name="webhooks_delivery_due"),
            models.Index(fields=["endpoint", "-created_at"], name="webhooks_delivery_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.event.type} → {self.endpoint.url}"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["number"]
