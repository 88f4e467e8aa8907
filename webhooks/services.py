"""Every write to webhook endpoints and deliveries made on behalf of a client (API.md 13).
Events are recorded by `webhooks.events`; they are sent by `webhooks.delivery`."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from core.api import is_uuid
from core.exceptions import BadRequest, Forbidden, NotFound
from organizations.models import Organization
from webhooks import signing
from webhooks.events import dispatch_after_commit
from webhooks.models import Delivery, Endpoint, Event, EventType

MAX_ENDPOINTS = 10
ROTATION_OVERLAP = timedelta(hours=24)


def endpoint_create(organization, *, url: str, events: list[str],
                    description: str = "") -> tuple[Endpoint, str]:
    """Returns the endpoint and its secret (shown to the client this once)."""
    with transaction.atomic():
        # The organization's row lock serializes creators, so the limit cannot be overshot.
        locked = Organization.objects.select_for_update().filter(pk=organization.pk)
        list(locked.values_list("pk", flat=True))
        if Endpoint.objects.filter(organization=organization).count() >= MAX_ENDPOINTS:
            raise Forbidden(f"Your organization has reached its limit of {MAX_ENDPOINTS} "
                            f"webhook endpoints.")
        secret = signing.secret_generate()
        endpoint = Endpoint.objects.create(organization=organization, url=url, events=events,
                                           description=description, secret=secret)
    return endpoint, secret


def endpoint_get(organization, endpoint_id: str) -> Endpoint:
    endpoint = Endpoint.objects.filter(organization=organization, pk=endpoint_id).first() \
        if is_uuid(endpoint_id) else None
    if endpoint is None:
        raise NotFound("Webhook endpoint")
    return endpoint


def endpoint_update(endpoint: Endpoint, changes: dict) -> Endpoint:
    """`is_active: true` also forgets a run of failures (a deactivated endpoint starts over)."""
    for name, value in changes.items():
        setattr(endpoint, name, value)
    if changes.get("is_active"):
        endpoint.failing_since = endpoint.deactivated_at = None
    endpoint.save()
    return endpoint


def endpoint_delete(endpoint: Endpoint) -> None:
    endpoint.delete()


def endpoint_rotate_secret(endpoint: Endpoint) -> str:
    """A new secret; the current one keeps signing alongside it for 24 hours (a second
    `v1=`), so receivers can switch without missing a delivery."""
    secret = signing.secret_generate()
    endpoint.previous_secret, endpoint.secret = endpoint.secret, secret
    endpoint.previous_secret_expires_at = timezone.now() + ROTATION_OVERLAP
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at",
                                 "updated_at"])
    return secret


INACTIVE = "The webhook endpoint is inactive; set is_active to true first."


def endpoint_test(endpoint: Endpoint) -> Delivery:
    """A `ping` event for this endpoint only."""
    if not endpoint.is_active:
        raise BadRequest(INACTIVE)
    now = timezone.now()
    with transaction.atomic():
        event = Event.objects.create(
            organization_id=endpoint.organization_id, type=EventType.PING, created_at=now,
            dispatched_at=now, data={"endpoint_id": str(endpoint.pk), "url": endpoint.url})
        delivery = Delivery.objects.create(endpoint=endpoint, event=event, next_attempt_at=now,
                                           created_at=now)
        dispatch_after_commit()
    return delivery


def delivery_get(endpoint: Endpoint, delivery_id: str) -> Delivery:
    delivery = endpoint.deliveries.select_related("event").filter(pk=delivery_id).first() \
        if is_uuid(delivery_id) else None
    if delivery is None:
        raise NotFound("Delivery")
    return delivery


def delivery_redeliver(delivery: Delivery) -> Delivery:
    """Queued again now with a fresh retry schedule (its attempts so far are kept)."""
    if not delivery.endpoint.is_active:
        raise BadRequest(INACTIVE)
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.PENDING, next_attempt_at=timezone.now(),
            round_offset=delivery.attempts, updated_at=timezone.now())
        dispatch_after_commit()
    delivery.refresh_from_db()
    return delivery
