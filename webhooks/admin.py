from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.exceptions import BadRequest
from webhooks import services
from webhooks.models import Delivery, DeliveryAttempt, Endpoint, Event


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    """The signing secrets are never shown (they are not among the fields)."""

    list_display = ("url", "organization", "is_active", "failing_since", "deactivated_at",
                    "created_at")
    list_filter = ("is_active",)
    list_select_related = ("organization",)
    search_fields = ("url", "organization__slug", "description")
    fields = ("organization", "url", "events", "description", "is_active", "failing_since",
              "deactivated_at", "previous_secret_expires_at", "created_at", "updated_at")
    readonly_fields = ("organization", "failing_since", "deactivated_at",
                       "previous_secret_expires_at", "created_at", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created through the API, which shows the secret once


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "duration_ms", "status_code", "error", "succeeded")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "event_type", "endpoint", "status", "attempts",
                    "last_status_code", "next_attempt_at")
    list_filter = ("status", "event__type")
    list_select_related = ("event", "endpoint")
    search_fields = ("endpoint__url", "endpoint__organization__slug")
    fields = ("endpoint", "event", "status", "attempts", "last_status_code", "last_error",
              "next_attempt_at", "created_at", "updated_at")
    readonly_fields = fields
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="event", ordering="event__type")
    def event_type(self, obj: Delivery) -> str:
        return obj.event.type

    @admin.action(description="Redeliver the selected deliveries")
    def redeliver(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        done = skipped = 0
        for delivery in queryset.select_related("endpoint"):
            try:
                services.delivery_redeliver(delivery)
                done += 1
            except BadRequest:
                skipped += 1
        self.message_user(request, f"{done} delivery(ies) queued again.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} skipped: their endpoint is inactive.",
                              messages.WARNING)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "type", "organization", "dispatched_at")
    list_filter = ("type",)
    list_select_related = ("organization",)
    search_fields = ("organization__slug",)
    readonly_fields = ("id", "organization", "type", "data", "dedupe_key", "created_at",
                       "dispatched_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
