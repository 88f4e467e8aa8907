from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import serializers

from core.schema import documented_json
from webhooks import transport
from webhooks.events import iso
from webhooks.models import ALL_EVENTS, Delivery, Endpoint, Event, EventType

EVENT_CHOICES = [ALL_EVENTS, *EventType.values]


class EndpointSerializer(serializers.ModelSerializer):
    events = documented_json(
        serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES)),
        help_text='Event types sent to this endpoint; "*" = all.')

    class Meta:
        model = Endpoint
        fields = ["id", "url", "events", "description", "is_active", "failing_since",
                  "deactivated_at", "created_at", "updated_at"]


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(help_text="`whsec_` + 32 base62 characters; shown once.")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]


def endpoint_body(endpoint: Endpoint, secret: str) -> dict:
    return {**EndpointSerializer(endpoint).data, "secret": secret}


class EndpointWriteSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000)
    events = serializers.ListField(child=serializers.CharField(), allow_empty=True)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True,
                                        default="")

    def validate_url(self, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise serializers.ValidationError("enter an https:// URL.")
        if parts.scheme == "http" and not settings.EGRET_WEBHOOKS_ALLOW_HTTP:
            raise serializers.ValidationError("must be an https:// URL.")
        if parts.username or parts.password:
            raise serializers.ValidationError("must not contain a user name or password.")
        literal = transport.literal_address(parts.hostname)
        if literal and not settings.EGRET_WEBHOOKS_ALLOW_PRIVATE and \
                transport.address_forbidden(literal):
            raise serializers.ValidationError(
                "must not point to a loopback, private, link-local or multicast address.")
        try:
            parts.port
        except ValueError:
            raise serializers.ValidationError("the port is not valid.") from None
        return value

    def validate_events(self, value: list[str]) -> list[str]:
        if not value:
            raise serializers.ValidationError("at least one event type is required.")
        for name in value:
            if name not in EVENT_CHOICES:
                raise serializers.ValidationError(f'unknown event type "{name}".')
        return list(dict.fromkeys(value))


class EndpointUpdateSerializer(EndpointWriteSerializer):
    url = serializers.CharField(max_length=2000, required=False)
    events = serializers.ListField(child=serializers.CharField(), allow_empty=True,
                                   required=False)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)


class DeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.SerializerMethodField()
    event_type = serializers.ChoiceField(source="event.type", choices=EventType.choices)

    class Meta:
        model = Delivery
        fields = ["id", "event_id", "event_type", "status", "attempts", "last_status_code",
                  "last_error", "next_attempt_at", "created_at"]

    def get_event_id(self, obj: Delivery) -> str:
        return obj.event.public_id


class EventSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id", help_text='"evt_" + 32 hex digits.')
    type = serializers.ChoiceField(choices=EventType.choices)
    created_at = serializers.SerializerMethodField()
    organization = serializers.SerializerMethodField(help_text="The organization's slug.")
    data = serializers.JSONField()

    def get_created_at(self, obj: Event) -> str:
        return iso(obj.created_at)

    def get_organization(self, obj: Event) -> str:
        return self.context["organization"].slug


class EventQuerySerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=EventType.choices, required=False)
