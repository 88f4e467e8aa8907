from __future__ import annotations

import json
from typing import Iterator

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_view
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from assistant import pipeline, schema, selectors, services
from assistant.serializers import (AIModelSerializer, ExportQuerySerializer,
                                   MessageSerializer, QueryRequestSerializer,
                                   RecentQuerySerializer, RenameSerializer, SessionSerializer)
from billing import idempotency
from billing.metering import HasCredits
from core.api import OrganizationScopedView, validated
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
        events = pipeline.query_stream(query)
        record = getattr(request, "idempotency_record", None)
        body = pipeline.ndjson(recorded(record, events) if record else events)
        response = StreamingHttpResponse(body, content_type="application/x-ndjson")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # proxies must pass each line on at once
        return response


def recorded(record, events: Iterator[dict]) -> Iterator[dict]:
    """Keep a completed stream for Idempotency-Key replays (the deltas joined into one);
    forget the key when the stream did not complete, so a retry runs again."""
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
            text = "".join(e["text"] for e in kept if e["type"] == "text_delta")
            idempotency.idempotency_store(record, 200, idempotency.stream_body(
                [kept[0], {"type": "text_delta", "text": text}, kept[-1]]))
        else:
            idempotency.idempotency_release(record)


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
