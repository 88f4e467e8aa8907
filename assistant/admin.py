from django.contrib import admin

from assistant.models import AIModel, ChatSession, Comparison, Message


@admin.register(AIModel)
class AIModelAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "provider", "provider_model", "tier", "credits_per_query",
                    "is_default", "is_active"]
    list_filter = ["provider", "tier", "is_active"]
    search_fields = ["id", "name", "provider_model"]


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["created_at", "sender", "content", "model", "credits_used", "context_quality"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ChatSession)
class ChatSessionAdmin(admin.ModelAdmin):
    """Conversations are customers' data: operators may read and delete them, not edit."""

    list_display = ["title", "organization", "domain", "category", "message_count",
                    "last_activity_at"]
    list_filter = ["domain"]
    search_fields = ["title", "organization__slug", "id"]
    list_select_related = ["organization", "domain", "category"]
    readonly_fields = ["id", "organization", "domain", "category", "title", "created_by",
                       "api_key", "message_count", "created_at", "last_activity_at"]
    inlines = [MessageInline]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    """Comparisons are customers' data and the record of what was charged: read-only (an
    operator may delete one; its ledger entries keep the comparison's id)."""

    list_display = ["query", "organization", "domain", "categories", "model", "credits_used",
                    "created_at"]
    list_filter = ["domain", "model"]
    search_fields = ["query", "organization__slug", "id"]
    list_select_related = ["organization", "domain"]
    date_hierarchy = "created_at"
    readonly_fields = ["id", "organization", "domain", "categories", "query", "mode", "model",
                       "credits_used", "created_by", "api_key", "created_at", "response"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
