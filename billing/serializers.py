import functools

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.models import LedgerEntry, Plan


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


@functools.cache
def _plan_fields() -> PlanSerializer:
    serializer = PlanSerializer()
    serializer.fields  # noqa: B018 (built here, once, then only read by every thread)
    return serializer


@functools.cache
def _plan_sources() -> tuple[str, ...]:
    return tuple(field.source for field in _plan_fields().fields.values())


@functools.lru_cache(maxsize=64)
def _plan_representation_of(values: tuple) -> dict:
    plan = Plan(**dict(zip(_plan_sources(), values)))
    return _plan_fields().to_representation(plan)


def plan_representation(plan: Plan) -> dict:
    """`PlanSerializer(plan).data` without building the serializer's fields again for each
    request (a ModelSerializer derives them from the model every time it is made): what the
    quota read, one of the hottest endpoints, returns for the plan. The representation depends
    only on the values of the fields shown, which are the key of a small memo: the plan is
    still read from the database with every request, and a changed plan is a new key."""
    values = tuple(getattr(plan, source) for source in _plan_sources())
    return dict(_plan_representation_of(values))


class LedgerActorSerializer(serializers.Serializer):
    """Who caused a ledger entry: a person or an API key."""

    type = serializers.ChoiceField(choices=["user", "api_key"])
    id = serializers.UUIDField()
    email = serializers.EmailField(required=False, help_text="People only.")
    key_prefix = serializers.CharField(required=False, help_text="API keys only.")
    name = serializers.CharField(required=False, help_text="API keys only.")


class LedgerEntrySerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    reservation_id = serializers.UUIDField(allow_null=True)

    class Meta:
        model = LedgerEntry
        fields = ["id", "kind", "amount", "balance_after", "created_at", "period_start", "actor",
                  "reservation_id", "session_id", "message_id", "comparison_id", "model", "domain",
                  "idempotency_key", "memo"]

    @extend_schema_field(LedgerActorSerializer(allow_null=True))
    def get_actor(self, entry: LedgerEntry) -> dict | None:
        if entry.actor_api_key_id:
            key = entry.actor_api_key
            return {"type": "api_key", "id": str(key.pk), "key_prefix": key.key_prefix,
                    "name": key.name}
        if entry.actor_user_id:
            return {"type": "user", "id": str(entry.actor_user_id),
                    "email": entry.actor_user.email}
        return None


class UsageQuerySerializer(serializers.Serializer):
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)
    group_by = serializers.ChoiceField(choices=["day", "api_key", "model", "domain"],
                                       default="day")

    def validate(self, attrs: dict) -> dict:
        start, end = attrs.get("start"), attrs.get("end")
        if start and end:
            if end < start:
                raise serializers.ValidationError({"end": ["must be on or after start."]})
            if (end - start).days > 366:
                raise serializers.ValidationError({"end": ["the range is limited to 366 days."]})
        return attrs
