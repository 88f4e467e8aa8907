from __future__ import annotations

import json
from typing import Iterator

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_view
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from assistant import comparisons, pipeline, schema, selectors, services
from assistant.serializers import (AIModelSerializer, CompareRequestSerializer,
                                   ComparisonSummarySerializer, ExportQuerySerializer,
                                   MessageSerializer, QueryRequestSerializer,
                                   RecentQuerySerializer, RenameSerializer, SessionSerializer)
from billing import idempotency
from billing.metering import HasCredits
from core.api import NewestFirstPagination, OrganizationScopedView, validated
from core.exceptions import Forbidden
from core.throttles import QueryRateThrottle

NO_EXPORT = "Your plan does not include session export."


class ModelListView(OrganizationScopedView):
    @schema.model_list
    def get(self, request: Request) -> Response:
        plan = self.acting(request).organization.plan
        return Response(AIModelSerializer(selectors.models_active(), many=True,
                                          context={"plan": plan}).data)


class QueryView(OrganizationScopedView):
    """POST /v1/query/ (API.md 7). HasCredits answers 402 before the body is read when the
    balance is zero; the reservation inside the pipeline is the authoritative check."""

    permission_classes = [*OrganizationScopedView.permission_classes, HasCredits]
    throttle_classes = [QueryRateThrottle]

    @idempotency.idempotent
    @schema.query
    def post(self, request: Request) -> Response:
        data = validated(QueryRequestSerializer, request.data)
        query = pipeline.query_prepare(self.acting(request), data)
        if not query.stream:
            return Response(pipeline.query_answer(query))
        return ndjson_response(request, pipeline.query_stream(query))


def ndjson_response(request: Request, events: Iterator[dict]) -> StreamingHttpResponse:
    record = getattr(request, "idempotency_record", None)
    body = pipeline.ndjson(recorded(record, events) if record else events)
    response = StreamingHttpResponse(body, content_type="application/x-ndjson")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies must pass each line on at once
    return response


def recorded(record, events: Iterator[dict]) -> Iterator[dict]:
    """Keep a completed stream for Idempotency-Key replays (consecutive deltas of the same
    answer joined into one); forget the key when the stream did not complete, so a retry
    runs again."""
    kept: list[dict] = []
    try:
        for event in events:
            kept.append(event)
            yield event
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
        if kept and kept[-1]["type"] == "done":
            idempotency.idempotency_store(record, 200, idempotency.stream_body(joined(kept)))
        else:
            idempotency.idempotency_release(record)


def joined(events: list[dict]) -> list[dict]:
    """Runs of text deltas with the same `category` (none on /v1/query/) as one delta."""
    out: list[dict] = []
    for event in events:
        previous = out[-1] if out else None
        if (event["type"] == "text_delta" and previous is not None
                and previous["type"] == "text_delta"
                and previous.get("category") == event.get("category")):
            out[-1] = {**previous, "text": previous["text"] + event["text"]}
        else:
            out.append(event)
    return out


class CompareView(OrganizationScopedView):
    """POST /v1/compare/ (API.md 12) and the list of stored comparisons. HasCredits answers
    402 early only on POST: listing what was paid for costs nothing."""

    def get_permissions(self):
        if self.request.method == "POST":
            return [*super().get_permissions(), HasCredits()]
        return super().get_permissions()

    def get_throttles(self):
        if self.request.method == "POST":
            return [QueryRateThrottle()]
        return super().get_throttles()

    @schema.compare_list
    def get(self, request: Request) -> Response:
        paginator = NewestFirstPagination()
        comparisons = selectors.comparisons_of(self.acting(request).organization)
        page = paginator.paginate_queryset(comparisons, request, self)
        return paginator.get_paginated_response(
            ComparisonSummarySerializer(page, many=True).data)

    @idempotency.idempotent
    @schema.compare
    def post(self, request: Request) -> Response:
        data = validated(CompareRequestSerializer, request.data)
        compare = comparisons.compare_prepare(self.acting(request), data)
        if not compare.stream:
            return Response(comparisons.compare_answer(compare))
        return ndjson_response(request, comparisons.compare_stream(compare))


class CompareDetailView(OrganizationScopedView):
    @schema.compare_detail
    def get(self, request: Request, comparison_id: str) -> Response:
        comparison = selectors.comparison_get(self.acting(request).organization, comparison_id)
        return Response(comparison.response)


class SessionRecentView(OrganizationScopedView):
    @schema.session_recent
    def get(self, request: Request) -> Response:
        params = validated(RecentQuerySerializer, request.query_params.dict())
        sessions = selectors.sessions_recent(self.acting(request).organization,
                                             params["limit"])
        return Response(SessionSerializer(sessions, many=True).data)


class SessionDetailView(OrganizationScopedView):
    @schema.session_detail
    def get(self, request: Request, session_id: str) -> Response:
        session = selectors.session_get(self.acting(request).organization, session_id)
        return Response(SessionSerializer(session).data)

    @schema.session_delete
    def delete(self, request: Request, session_id: str) -> Response:
        session = selectors.session_get(self.acting(request).organization, session_id)
        services.session_delete(session)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(delete=schema.session_delete_alias)
class SessionDeleteView(SessionDetailView):
    http_method_names = ["delete", "options"]


class SessionMessagesView(OrganizationScopedView):
    @schema.session_messages
    def get(self, request: Request, session_id: str) -> Response:
        session = selectors.session_get(self.acting(request).organization, session_id)
        return Response(MessageSerializer(selectors.messages_of(session), many=True).data)


class SessionRenameView(OrganizationScopedView):
    @schema.session_rename
    def post(self, request: Request, session_id: str) -> Response:
        session = selectors.session_get(self.acting(request).organization, session_id)
        data = validated(RenameSerializer, request.data)
        services.session_rename(session, data["title"])
        return Response(SessionSerializer(session).data)


class SessionExportView(OrganizationScopedView):
    @schema.session_export
    def get(self, request: Request, session_id: str) -> HttpResponse:
        organization = self.acting(request).organization
        session = selectors.session_get(organization, session_id)
        params = validated(ExportQuerySerializer, request.query_params.dict())
        if not organization.plan.has_export:
            raise Forbidden(NO_EXPORT)
        messages = list(selectors.messages_of(session))
        stamp = timezone.now()
        name = f"egret-session-{session.pk}"
        if params["format"] == "json":
            body = json.dumps({"session": SessionSerializer(session).data,
                               "messages": MessageSerializer(messages, many=True).data,
                               "exported_at": stamp.isoformat()}, indent=2, default=str)
            response = HttpResponse(body, content_type="application/json")
            filename = f"{name}.json"
        else:
            response = HttpResponse(services.session_markdown(session, messages, stamp),
                                    content_type="text/markdown; charset=utf-8")
            filename = f"{name}.md"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
