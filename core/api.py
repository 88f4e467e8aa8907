"""Small helpers shared by the thin API views."""

from __future__ import annotations

import uuid
from datetime import timezone as dt_timezone
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.exceptions import NotFound
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

    def decode_cursor(self, request: Request):
        """DRF checks a cursor's offset but passes its position to the `created_at` filter as
        sent: a position that is no timestamp, or one that leaves the years 1-9999 in UTC,
        would be a 500. Such a cursor is as invalid as any other tampered one (404)."""
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                position = parse_datetime(cursor.position)  # ValueError: no such day or hour
                if position is None:
                    raise ValueError(cursor.position)
                if position.tzinfo is not None:
                    position.astimezone(dt_timezone.utc)  # OverflowError
            except (ValueError, OverflowError):
                raise NotFound(self.invalid_cursor_message) from None
        return cursor


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
