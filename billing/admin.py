from django.contrib import admin

from billing.models import CreditAccount, IdempotencyRecord, LedgerEntry, Plan, Subscription
from core.display import short_text, utc_time


def ledger_actor(entry: LedgerEntry) -> str:
    """Who moved the credits: a user's email, an API key's prefix and name, or the service
    itself (rollover, sweeper, commands run without a user)."""
    if entry.actor_api_key_id:
        return f"key {entry.actor_api_key.key_prefix}… ({entry.actor_api_key.name})"
    if entry.actor_user_id:
        return entry.actor_user.email
    return "system"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Balances change only through billing.services (admin actions on organizations)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "price_monthly_usd", "monthly_credits", "model_tier",
                    "max_api_keys", "max_members", "max_documents", "has_api_access")
    ordering = ("sort_order",)
    readonly_fields = ("slug",)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # organizations point at plans; retire a plan by editing it instead


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("organization", "status", "current_period_start", "current_period_end",
                    "monthly_credits_override")
    search_fields = ("organization__slug",)
    readonly_fields = ("organization", "anchor", "current_period_start", "current_period_end")
    fields = ("organization", "status", "anchor", "current_period_start", "current_period_end",
              "monthly_credits_override")

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdmin):
    list_display = ("organization", "balance", "period_granted", "period_used", "period_reserved",
                    "period_start", "updated_at")
    search_fields = ("organization__slug",)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("time_display", "organization", "kind", "amount", "balance_after",
                    "actor_display", "memo_display")
    list_filter = (("organization", admin.RelatedFieldListFilter), "kind")
    list_select_related = ("organization", "actor_user", "actor_api_key")
    search_fields = ("organization__slug", "memo", "idempotency_key")
    date_hierarchy = "created_at"

    @admin.display(description="time (UTC)", ordering="created_at")
    def time_display(self, obj: LedgerEntry) -> str:
        return utc_time(obj.created_at, seconds=True)

    @admin.display(description="actor")
    def actor_display(self, obj: LedgerEntry) -> str:
        return ledger_actor(obj)

    @admin.display(description="memo", ordering="memo")
    def memo_display(self, obj: LedgerEntry) -> str:
        return short_text(obj.memo, 40)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "organization", "key", "method", "path", "state",
                    "response_status", "expires_at")
    search_fields = ("organization__slug", "key")
