from django.contrib import admin

from billing.models import Plan


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "price_monthly_usd", "monthly_credits", "model_tier",
                    "max_api_keys", "max_members", "max_documents", "has_api_access")
    ordering = ("sort_order",)
    readonly_fields = ("slug",)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # organizations point at plans; retire a plan by editing it instead
