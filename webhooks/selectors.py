"""Reads of webhooks and events; every function takes the organization (or an object
already scoped to it)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from webhooks.models import Delivery, Endpoint, Event

EVENT_RETENTION = timedelta(days=30)


def endpoints_of(organization) -> QuerySet[Endpoint]:
    return Endpoint.objects.filter(organization=organization)


def deliveries_of(endpoint: Endpoint) -> QuerySet[Delivery]:
    return Delivery.objects.filter(endpoint=endpoint).select_related("event")


def events_of(organization, *, event_type: str | None = None) -> QuerySet[Event]:
    """The last 30 days, for clients that poll instead of receiving webhooks."""
    events = Event.objects.filter(organization=organization,
                                  created_at__gte=timezone.now() - EVENT_RETENTION)
    if event_type:
        events = events.filter(type=event_type)
    return events
