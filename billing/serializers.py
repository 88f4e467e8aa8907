from rest_framework import serializers

from billing.models import Plan


class PlanSerializer(serializers.ModelSerializer):
    price_monthly_usd = serializers.DecimalField(max_digits=10, decimal_places=2,
                                                 coerce_to_string=True)
    max_storage_gb = serializers.DecimalField(max_digits=10, decimal_places=2,
                                              coerce_to_string=True)

    class Meta:
        model = Plan
        fields = [
            "slug", "name", "description", "tier", "price_monthly_usd", "monthly_credits",
            "model_tier", "max_api_keys", "max_storage_gb", "max_documents", "max_members",
            "has_api_access", "has_streaming", "has_export", "has_cross_category_compare",
            "has_custom_documents",
        ]
