from __future__ import annotations

from datetime import timedelta

from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import schema, selectors, services
from billing.serializers import (LedgerEntrySerializer, PlanSerializer, UsageQuerySerializer,
                                 plan_representation)
from core.api import NewestFirstPagination, OrganizationScopedView, validated
from core.exceptions import FieldError
from core.fastpath import ApiKeyFastPath
from core.tenancy import Acting


class PlanListView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @schema.plan_list
    def get(self, request: Request) -> Response:
        return Response(PlanSerializer(selectors.plans_public(), many=True).data)


class SubscriptionView(ApiKeyFastPath, OrganizationScopedView):
    """The quota read: with an API key, the hottest request of the API (core.fastpath)."""

    @schema.subscription
    def get(self, request: Request) -> Response:
        return Response(self.representation(self.acting(request)))

    def representation(self, acting: Acting) -> dict:
        organization = acting.organization
        services.ensure_current_period(organization)
        subscription = organization.subscription
        return {
            "organization": organization.slug,
            "plan": plan_representation(organization.plan),
            "status": subscription.status,
            "current_period_start": subscription.current_period_start,
            "current_period_end": subscription.current_period_end,
            "current_quota": selectors.current_quota(organization),
        }


class UsageView(OrganizationScopedView):
    @schema.usage
    def get(self, request: Request) -> Response:
        organization = self.acting(request).organization
        params = validated(UsageQuerySerializer, request.query_params.dict())
        services.ensure_current_period(organization)
        subscription = organization.subscription
        start = params.get("start") or subscription.current_period_start.date()
        end = params.get("end") or (subscription.current_period_end - timedelta(seconds=1)).date()
        if end < start:
            raise FieldError("end", "must be on or after start.")
        return Response(selectors.usage(organization, start=start, end=end,
                                        group_by=params["group_by"]))


class LedgerView(OrganizationScopedView):
    @schema.ledger
    def get(self, request: Request) -> Response:
        acting = self.acting(request)
        if not acting.is_api_key:
            acting.require_manager("read the ledger")
        paginator = NewestFirstPagination()
        page = paginator.paginate_queryset(selectors.ledger_of(acting.organization), request, self)
        return paginator.get_paginated_response(LedgerEntrySerializer(page, many=True).data)
