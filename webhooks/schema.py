"""OpenAPI documentation of webhooks and events (API.md 13)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema

from core.schema import CURSOR_PARAMETERS, errors, paginated, uuid_path
from webhooks.serializers import (DeliverySerializer, EndpointSerializer,
                                  EndpointUpdateSerializer, EndpointWithSecretSerializer,
                                  EndpointWriteSerializer, EventQuerySerializer,
                                  EventSerializer)
from webhooks.services import INACTIVE, MAX_ENDPOINTS

TAGS = ["Webhooks"]
ENDPOINT_NOT_FOUND = "Webhook endpoint not found."
_403 = ("Only owners and admins can manage webhooks.",
        "API keys cannot manage webhooks; use a user's access token.")
_ID = uuid_path("endpoint_id", "webhook endpoint")
_DELIVERY_ID = uuid_path("delivery_id", "delivery")

ENDPOINT = {
    "id": "5d1c9a7e-3f2b-4e6d-8a1c-7b9e0f2d4c6a", "url": "https://hooks.example.com/egret",
    "events": ["credits.threshold_reached", "credits.exhausted"],
    "description": "Finance alerts", "is_active": True, "failing_since": None,
    "deactivated_at": None, "created_at": "2026-03-01T09:00:00Z",
    "updated_at": "2026-03-01T09:00:00Z",
}
SECRET = "whsec_4fQz8Lb1Xc7Tn2Rk9Wm3Ys6Vd0Ha5Pe"
DELIVERY = {
    "id": "8b2e4c6a-1d3f-4a5b-9c7e-0f2a4b6c8d1e",
    "event_id": "evt_9f4c2b7a1e3d4c5b8a6f0e2d1c3b5a79", "event_type": "ping",
    "status": "pending", "attempts": 0, "last_status_code": None, "last_error": "",
    "next_attempt_at": "2026-03-25T22:35:07Z", "created_at": "2026-03-25T22:35:07Z",
}
EVENT = {
    "id": "evt_9f4c2b7a1e3d4c5b8a6f0e2d1c3b5a79", "type": "credits.threshold_reached",
    "created_at": "2026-03-25T22:35:07Z", "organization": "acme",
    "data": {"threshold_percent": 80, "credits_used": 4000, "credits_granted": 5000,
             "credits_remaining": 1000, "period_end": "2026-04-01T09:00:00Z"},
}
_URL_400 = ("url field is required.", "url: must be an https:// URL.",
            "url: must not point to a loopback, private, link-local or multicast address.",
            "events: at least one event type is required.",
            'events: unknown event type "credits.low".')


def _response(name: str, value, status: str = "200") -> OpenApiExample:
    return OpenApiExample(name, value, response_only=True, status_codes=[status])


endpoint_list = extend_schema(
    operation_id="webhooks_list", tags=TAGS, summary="List webhook endpoints",
    description="Owners and admins (people). Newest first; secrets are never listed.",
    examples=[_response("Endpoints", [ENDPOINT])],
    responses={200: EndpointSerializer(many=True), **errors(403, *_403)},
)

endpoint_create = extend_schema(
    operation_id="webhooks_create", tags=TAGS, summary="Register a webhook endpoint",
    description="Events listed in `events` (`\"*\"`: all) are POSTed to `url`, signed with "
                "the `secret` returned here once: `Egret-Signature: t=<unix seconds>,"
                "v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">`. `url` must be https:// and "
                "public (plain http:// and private addresses only when the operator allows "
                f"them). At most {MAX_ENDPOINTS} endpoints per organization.",
    request=EndpointWriteSerializer,
    examples=[OpenApiExample("Alerts", {"url": ENDPOINT["url"], "events": ENDPOINT["events"],
                                        "description": "Finance alerts"}, request_only=True),
              _response("Created", {**ENDPOINT, "secret": SECRET}, "201")],
    responses={201: EndpointWithSecretSerializer, **errors(400, *_URL_400),
               **errors(403, *_403, f"Your organization has reached its limit of "
                                    f"{MAX_ENDPOINTS} webhook endpoints.")},
)

endpoint_detail = extend_schema(
    operation_id="webhooks_retrieve", tags=TAGS, summary="Get a webhook endpoint",
    parameters=[_ID], examples=[_response("Endpoint", ENDPOINT)],
    responses={200: EndpointSerializer, **errors(403, *_403),
               **errors(404, ENDPOINT_NOT_FOUND)},
)

endpoint_update = extend_schema(
    operation_id="webhooks_partial_update", tags=TAGS, summary="Change a webhook endpoint",
    description="Partial: `url`, `events`, `description`, `is_active`. An endpoint failing "
                "for 3 days straight is deactivated; `is_active: true` turns it back on.",
    parameters=[_ID], request=EndpointUpdateSerializer,
    examples=[_response("Endpoint", ENDPOINT)],
    responses={200: EndpointSerializer, **errors(400, *_URL_400), **errors(403, *_403),
               **errors(404, ENDPOINT_NOT_FOUND)},
)

endpoint_delete = extend_schema(
    operation_id="webhooks_destroy", tags=TAGS, summary="Delete a webhook endpoint",
    description="The endpoint and its deliveries; events stay readable at /v1/events/.",
    parameters=[_ID],
    responses={204: None, **errors(403, *_403), **errors(404, ENDPOINT_NOT_FOUND)},
)

endpoint_rotate = extend_schema(
    operation_id="webhooks_rotate_secret", tags=TAGS, summary="Rotate the signing secret",
    description="A new `secret`, shown this once. For 24 hours the old secret keeps signing "
                "too: `Egret-Signature` then carries two `v1=` values.",
    parameters=[_ID], request=None,
    examples=[_response("Rotated", {**ENDPOINT, "secret": SECRET})],
    responses={200: EndpointWithSecretSerializer, **errors(403, *_403),
               **errors(404, ENDPOINT_NOT_FOUND)},
)

endpoint_test = extend_schema(
    operation_id="webhooks_test", tags=TAGS, summary="Send a ping",
    description="Queues a `ping` event to this endpoint only; the body is its delivery.",
    parameters=[_ID], request=None, examples=[_response("Queued", DELIVERY, "202")],
    responses={202: DeliverySerializer, **errors(400, INACTIVE), **errors(403, *_403),
               **errors(404, ENDPOINT_NOT_FOUND)},
)

delivery_list = extend_schema(
    operation_id="webhooks_deliveries_list", tags=TAGS, summary="List deliveries",
    description="Newest first, cursor-paginated. A delivery is retried with exponential "
                "backoff for about 23 hours (7 attempts) before it is `failed`.",
    parameters=[_ID, *CURSOR_PARAMETERS],
    examples=[_response("Page", {"next": None, "previous": None, "results": [DELIVERY]})],
    responses={200: paginated("PaginatedDeliveryList", DeliverySerializer(many=True)),
               **errors(403, *_403), **errors(404, ENDPOINT_NOT_FOUND, "Invalid cursor")},
)

delivery_redeliver = extend_schema(
    operation_id="webhooks_deliveries_redeliver", tags=TAGS, summary="Redeliver",
    description="Queues the delivery again now, with a fresh retry schedule.",
    parameters=[_ID, _DELIVERY_ID], request=None, examples=[_response("Queued", DELIVERY, "202")],
    responses={202: DeliverySerializer, **errors(400, INACTIVE), **errors(403, *_403),
               **errors(404, ENDPOINT_NOT_FOUND, "Delivery not found.")},
)

event_list = extend_schema(
    operation_id="events_list", tags=TAGS, summary="List events",
    description="The organization's events of the last 30 days, newest first, for clients "
                "that poll instead of receiving webhooks. Owners, admins and API keys.",
    parameters=[EventQuerySerializer, *CURSOR_PARAMETERS],
    examples=[_response("Page", {"next": None, "previous": None, "results": [EVENT]})],
    responses={200: paginated("PaginatedEventList", EventSerializer(many=True)),
               **errors(400, 'type: "credits.low" is not a valid choice.'),
               **errors(403, "Only owners and admins can read events."),
               **errors(404, "Invalid cursor")},
)
