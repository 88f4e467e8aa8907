from django.contrib import admin

from assistant.models import AIModel, ChatSession, Message


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
