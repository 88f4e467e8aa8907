"""A paid endpoint used only by the billing tests: it exercises the pieces the query endpoint
is built from (HasCredits, metered(), @idempotent) without retrieval or generation."""

from __future__ import annotations

import threading
import uuid

from django.urls import include, path
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from billing.idempotency import idempotent
from billing.metering import HasCredits, metered
from core.api import OrganizationScopedView, validated

# Tests set these to hold a request inside its paid section.
inside = threading.Event()
release = threading.Event()


class ChargeSerializer(serializers.Serializer):
    cost = serializers.IntegerField(min_value=1, max_value=100)
    fail = serializers.BooleanField(default=False)
    block = serializers.BooleanField(default=False)


class ChargeView(OrganizationScopedView):
    permission_classes = [IsAuthenticated, HasCredits]

    @idempotent
    def post(self, request):
        acting = self.acting(request)
        data = validated(ChargeSerializer, request.data)
        with metered(acting, data["cost"], model="test-model", domain="test-domain") as held:
            if data["block"]:
                inside.set()
                release.wait(timeout=30)
            if data["fail"]:
                raise RuntimeError("generation failed")
        return Response({"charged": data["cost"], "reservation_id": str(held.id),
                         "nonce": uuid.uuid4().hex}, status=201)


urlpatterns = [
    path("test/charge/", ChargeView.as_view()),
    path("", include("egret.urls")),
]
