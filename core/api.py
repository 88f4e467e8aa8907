"""Small helpers shared by the thin API views."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.views import APIView

from core.tenancy import Acting, acting_context


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


class NewestFirstPagination(CursorPagination):
    """Cursor pages of `{next, previous, results}`, newest first; `?limit=` up to 200."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200


def validated(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict:
    if not isinstance(data, dict):
        raise serializers.ValidationError("The request body must be a JSON object.")
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class OrganizationScopedView(APIView):
    """A view acting inside one organization (from the URL slug, X-Organization, or default)."""

    def acting(self, request: Request, slug: str | None = None) -> Acting:
        return acting_context(request, slug)
