"""OpenAPI documentation of the billing endpoints (API.md 5): plans, subscription, usage and
the credit ledger. The serializers here describe bodies the views build as dicts."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers

from billing.models import Subscription
from billing.serializers import LedgerEntrySerializer, PlanSerializer, UsageQuerySerializer
from core.schema import CURSOR_PARAMETERS, errors, paginated

TAGS = ["Billing"]


class QuotaSerializer(serializers.Serializer):
    monthly_credits = serializers.IntegerField(help_text="The plan's (or the organization's "
                                                         "override) monthly allowance.")
    credits_granted = serializers.IntegerField(help_text="This period's monthly grant, "
                                                         "top-ups and positive adjustments.")
    credits_used = serializers.IntegerField(help_text="Kept query charges and negative "
                                                      "adjustments (refunds do not count).")
    credits_reserved = serializers.IntegerField(help_text="Charges of queries still running.")
    credits_remaining = serializers.IntegerField(help_text="The balance: granted - used - "
                                                           "reserved.")
    is_exhausted = serializers.BooleanField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()


class SubscriptionSerializer(serializers.Serializer):
    organization = serializers.CharField(help_text="The organization's slug.")
    plan = PlanSerializer()
    status = serializers.ChoiceField(choices=Subscription.Status.choices)
    current_period_start = serializers.DateTimeField()
    current_period_end = serializers.DateTimeField()
    current_quota = QuotaSerializer()


class UsageRowSerializer(serializers.Serializer):
    key = serializers.CharField(
        allow_null=True, help_text="The group: a date (day), an API key id (null: people), a "
                                   "model id or a domain slug.")
    credits = serializers.IntegerField(help_text="Credits kept (charges net of refunds).")
    queries = serializers.IntegerField(help_text="Answered queries.")


class UsageSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    group_by = serializers.ChoiceField(choices=["day", "api_key", "model", "domain"])
    total_credits = serializers.IntegerField()
    total_queries = serializers.IntegerField()
    rows = UsageRowSerializer(many=True)


PLAN = {"slug": "starter", "name": "Starter", "description": "For small compliance teams.",
        "tier": "starter", "price_monthly_usd": "49.00", "monthly_credits": 5000,
        "model_tier": "standard", "max_api_keys": 1, "max_storage_gb": "1.00",
        "max_documents": 50, "max_members": 3, "has_api_access": True, "has_streaming": True,
        "has_export": False, "has_cross_category_compare": False,
        "has_custom_documents": True}

plan_list = extend_schema(
    operation_id="billing_plans_list", tags=TAGS, summary="List plans",
    description="Public. Prices and storage sizes are decimal strings. On `enterprise`, zeros "
                "mean \"set per organization by the operator\".",
    examples=[OpenApiExample("Plan", PLAN, response_only=True)],
    responses={200: PlanSerializer(many=True)},
)

subscription = extend_schema(
    operation_id="billing_subscription_retrieve", tags=TAGS, summary="Get the subscription",
    description="The plan and this period's credits. Unused credits expire at the period's "
                "end, so granted - used - reserved = remaining always holds.",
    examples=[OpenApiExample("Subscription", {
        "organization": "acme", "plan": PLAN, "status": "active",
        "current_period_start": "2026-03-01T09:00:00Z",
        "current_period_end": "2026-04-01T09:00:00Z",
        "current_quota": {"monthly_credits": 5000, "credits_granted": 5000,
                          "credits_used": 120, "credits_reserved": 1,
                          "credits_remaining": 4879, "is_exhausted": False,
                          "period_start": "2026-03-01T09:00:00Z",
                          "period_end": "2026-04-01T09:00:00Z"}}, response_only=True)],
    responses={200: SubscriptionSerializer},
)

usage = extend_schema(
    operation_id="billing_usage_retrieve", tags=TAGS, summary="Get usage",
    description="Credits kept and queries answered between two dates (inclusive; default: "
                "the current period, at most 366 days), grouped, from the ledger.",
    parameters=[UsageQuerySerializer],
    examples=[OpenApiExample("By day", {
        "start": "2026-03-01", "end": "2026-03-31", "group_by": "day", "total_credits": 120,
        "total_queries": 118, "rows": [{"key": "2026-03-24", "credits": 70, "queries": 69},
                                       {"key": "2026-03-25", "credits": 50, "queries": 49}]},
        response_only=True)],
    responses={200: UsageSerializer,
               **errors(400, 'group_by: "week" is not a valid choice.',
                        "end: must be on or after start.",
                        "end: the range is limited to 366 days.")},
)

ledger = extend_schema(
    operation_id="billing_ledger_list", tags=TAGS, summary="List ledger entries",
    description="Every change of the credit balance, newest first, cursor-paginated. People "
                "who are owners or admins, and API keys.",
    parameters=CURSOR_PARAMETERS,
    examples=[OpenApiExample("Page", {
        "next": "http://localhost:8000/v1/billings/ledger/?cursor=cD0yMDI2LTAzLTI1",
        "previous": None,
        "results": [{"id": 812, "kind": "query_charge", "amount": -1, "balance_after": 4879,
                     "created_at": "2026-03-25T22:35:07Z",
                     "period_start": "2026-03-01T09:00:00Z",
                     "actor": {"type": "api_key", "id": "8d2f1c6a-3e4b-4f5a-9c7d-1b2a3c4d5e6f",
                               "key_prefix": "egret_Xq3Lb9Tz0aKp7W", "name": "CI"},
                     "reservation_id": "c4a1e2b3-5d6f-4a7b-8c9d-0e1f2a3b4c5d",
                     "session_id": "6e0f3b1a-2c4d-4e5f-8a9b-0c1d2e3f4a5b",
                     "message_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
                     "model": "extractive", "domain": "privacy",
                     "idempotency_key": None, "memo": ""}]}, response_only=True)],
    responses={200: paginated("PaginatedLedgerEntryList", LedgerEntrySerializer(many=True)),
               **errors(403, "Only owners and admins can read the ledger."),
               **errors(404, "Invalid cursor")},
)
