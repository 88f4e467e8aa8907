"""OpenAPI documentation of models, the query endpoint (JSON or an NDJSON stream) and sessions
(API.md 6, 7, 8). The serializers here describe bodies the pipeline builds as dicts."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (OpenApiExample, OpenApiParameter, OpenApiResponse,
                                   PolymorphicProxySerializer, extend_schema)
from rest_framework import serializers

from assistant.serializers import (MODES, AIModelSerializer, ExportQuerySerializer,
                                   MessageSerializer, QueryRequestSerializer,
                                   RecentQuerySerializer, RenameSerializer, SessionSerializer,
                                   SourceSerializer)
from billing.idempotency import HEADER as IDEMPOTENCY_HEADER
from billing.idempotency import REPLAY_HEADER
from billing.services import CREDITS_EXHAUSTED
from core.errors import SERVER_ERROR_DETAIL
from core.schema import NdjsonStream, errors, uuid_path

QUERY = ["Query"]
SESSIONS = ["Sessions"]
ANSWERED_MODES = [mode for mode in MODES if mode != "auto"]


# --- Query bodies --------------------------------------------------------------------------------
class QueryAnswerSerializer(serializers.Serializer):
    session_id = serializers.UUIDField(help_text="Send it back to continue the conversation.")
    message_id = serializers.UUIDField()
    response = serializers.CharField(help_text="Markdown answer; `[1]`-style markers cite "
                                               "`sources` in order.")
    sources = SourceSerializer(many=True)
    suggestions = serializers.ListField(child=serializers.CharField(),
                                        help_text="Follow-up questions.")
    mode = serializers.ChoiceField(choices=ANSWERED_MODES,
                                   help_text="The mode used (`auto` resolves to one).")
    model = serializers.CharField(help_text="The model's id.")
    insufficient_context = serializers.BooleanField(
        help_text="true: the sources do not cover the question; no grounded answer and no "
                  "charge.")
    credits_used = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_usd = serializers.FloatField(help_text="Provider cost of the tokens.")
    retrieval_ms = serializers.IntegerField()
    generation_ms = serializers.IntegerField()
    total_latency_ms = serializers.IntegerField()


class SourcesEventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["sources"])
    sources = SourceSerializer(many=True)
    retrieval_ms = serializers.IntegerField()
    chunks_retrieved = serializers.IntegerField()
    insufficient_context = serializers.BooleanField()
    mode = serializers.ChoiceField(choices=ANSWERED_MODES)
    session_id = serializers.UUIDField()


class TextDeltaEventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["text_delta"])
    text = serializers.CharField(help_text="The next piece of the markdown answer.")


class DoneEventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["done"])
    message_id = serializers.UUIDField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_usd = serializers.FloatField()
    credits_used = serializers.IntegerField()
    model = serializers.CharField()
    total_latency_ms = serializers.IntegerField()
    retrieval_ms = serializers.IntegerField(help_text="As in the JSON answer.")
    generation_ms = serializers.IntegerField(help_text="As in the JSON answer.")
    retrieval_latency_ms = serializers.IntegerField(
        help_text="Alias of `retrieval_ms` (the public Egret API's name in this event).")
    generation_latency_ms = serializers.IntegerField(
        help_text="Alias of `generation_ms` (the public Egret API's name in this event).")
    full_text = serializers.CharField(help_text="The whole answer (the deltas joined).")
    sources = SourceSerializer(many=True)
    suggestions = serializers.ListField(child=serializers.CharField())


class ErrorEventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["error"])
    detail = serializers.CharField()
    request_id = serializers.CharField()


STREAM_EVENT = PolymorphicProxySerializer(
    component_name="QueryStreamEvent",
    serializers={"sources": SourcesEventSerializer, "text_delta": TextDeltaEventSerializer,
                 "done": DoneEventSerializer, "error": ErrorEventSerializer},
    resource_type_field_name="type",
)


class SessionExportSerializer(serializers.Serializer):
    session = SessionSerializer()
    messages = MessageSerializer(many=True)
    exported_at = serializers.DateTimeField()


# --- Examples ------------------------------------------------------------------------------------
SESSION_ID = "6e0f3b1a-2c4d-4e5f-8a9b-0c1d2e3f4a5b"
MESSAGE_ID = "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"
SOURCE = {"id": 4711, "document_id": "5f1d2c3b-4a5e-4f6a-8b7c-9d0e1f2a3b4c",
          "uri": "egret://documents/5f1d2c3b-4a5e-4f6a-8b7c-9d0e1f2a3b4c#chunk-12",
          "filename": "breach-notification.md", "title": "Personal Data Breach Notification",
          "section": "Personal Data Breach Notification › Notifying the Supervisory Authority",
          "page": None,
          "excerpt": "Notify the competent supervisory authority without undue delay and, "
                     "where feasible, within 72 hours of becoming aware of the breach…",
          "score": 0.87, "download_url": "/v1/documents/5f1d2c3b-4a5e-4f6a-8b7c-9d0e1f2a3b4c/"
                                         "download/", "scope": "public"}
ANSWER_TEXT = ("Notify the supervisory authority without undue delay and, where feasible, "
               "within 72 hours of becoming aware of the breach [1].")
SUGGESTIONS = ["When must the affected individuals be told?"]
QUESTION = "How quickly must a personal data breach be notified?"
SESSION = {"session_id": SESSION_ID, "title": QUESTION,
           "domain_slug": "privacy", "domain_name": "Privacy",
           "category_code": "eu", "category_name": "European Union",
           "created_at": "2026-03-25T22:35:05Z", "last_activity_at": "2026-03-25T22:35:07Z",
           "message_count": 2}
ASSISTANT_MESSAGE = {"id": MESSAGE_ID, "session_id": SESSION_ID, "sender": "assistant",
                     "content": ANSWER_TEXT, "model": "extractive",
                     "bedrock_model_id": "extractive", "sources": [SOURCE],
                     "input_tokens": 812, "output_tokens": 64, "credits_used": 1,
                     "context_quality": "high", "created_at": "2026-03-25T22:35:07Z"}

SESSION_ID_PATH = uuid_path("session_id", "session")
SESSION_NOT_FOUND = "Session not found."

model_list = extend_schema(
    operation_id="models_list", tags=QUERY, summary="List models",
    description="Models that can answer a query; `available` says whether the organization's "
                "plan allows it (standard ⊂ premium ⊂ enterprise).",
    examples=[OpenApiExample("Model", {"id": "extractive", "name": "Extractive (offline)",
                                       "provider": "extractive", "tier": "standard",
                                       "credits_per_query": 1, "is_default": True,
                                       "available": True}, response_only=True)],
    responses={200: AIModelSerializer(many=True)},
)

QUERY_STREAM = NdjsonStream(
    STREAM_EVENT, request='`"stream": true` in the body',
    description="200 with `Content-Type: application/x-ndjson`: one `QueryStreamEvent` per line, "
                "in this order: one `sources` event (before generation), one or more "
                "`text_delta` events, then `done`; or, when generation fails after the stream "
                "started, an `error` event last (the credits are refunded). `done` carries "
                "`retrieval_ms` and `generation_ms` as the JSON answer does, and the same "
                "values as `retrieval_latency_ms` and `generation_latency_ms`.",
    examples={
        "sources": {"type": "sources", "sources": [SOURCE], "retrieval_ms": 12,
                    "chunks_retrieved": 5, "insufficient_context": False, "mode": "compliance",
                    "session_id": SESSION_ID},
        "text_delta": {"type": "text_delta", "text": "Notify the supervisory authority "},
        "done": {"type": "done", "message_id": MESSAGE_ID, "input_tokens": 812,
                 "output_tokens": 64, "cost_usd": 0.0, "credits_used": 1,
                 "model": "extractive", "total_latency_ms": 21, "retrieval_ms": 12,
                 "generation_ms": 3, "retrieval_latency_ms": 12, "generation_latency_ms": 3,
                 "full_text": ANSWER_TEXT, "sources": [SOURCE], "suggestions": SUGGESTIONS},
        "error": {"type": "error", "detail": SERVER_ERROR_DETAIL,
                  "request_id": "5b0e5e0c4f0a4d7e9a3f2c1b8d6e4a20"},
    })

query = extend_schema(
    operation_id="query_create", tags=QUERY, summary="Ask a question",
    description=(
        "Answers from the domain's library and the organization's documents, with cited "
        "sources. Credits are reserved before retrieval, kept when an answer is delivered and "
        "refunded when generation fails, the stream breaks or the answer has "
        "`insufficient_context: true`.\n\n"
        "With `\"stream\": true` the answer comes as an NDJSON stream instead "
        "(`application/x-ndjson`, one JSON event per line, flushed as produced): described in "
        "this operation's `x-egret-stream` extension, its events are the `QueryStreamEvent` "
        "component. The 200 below is the JSON answer. A failure after the stream started ends "
        "it with an `error` event (credits refunded). Errors found before the stream starts "
        "are ordinary JSON errors.\n\n"
        "With an `Idempotency-Key` header, the first response for the key is kept 24 hours; "
        "a retry with the same body gets it again (header `Idempotent-Replayed: true`) and is "
        "not charged again.\n\n"
        "Errors are reported in this order: 400, 404 (objects named in the body), 403, 402."),
    request=QueryRequestSerializer,
    parameters=[
        OpenApiParameter(IDEMPOTENCY_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER,
                         description="Up to 255 characters. Same key and same body: the kept "
                                     "response; same key, other body: 400; while the first "
                                     "is still running: 409."),
        OpenApiParameter(REPLAY_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER,
                         response=[200], enum=["true"],
                         description="Present on a replayed Idempotency-Key response."),
    ],
    examples=[
        OpenApiExample("Question", {"query": QUESTION, "domain": "privacy", "category": "eu",
                                    "mode": "compliance"}, request_only=True),
        OpenApiExample("All options", {
            "query": "When must the affected individuals be told?", "domain": "privacy",
            "category": "eu", "mode": "auto", "model": "extractive", "stream": False,
            "knowledge_scope": "public", "max_sources": 3}, request_only=True),
    ],
    extensions={"x-egret-stream": QUERY_STREAM},
    responses={
        200: OpenApiResponse(
            QueryAnswerSerializer, "The answer (`stream` false or absent).",
            [OpenApiExample("Answer", {
                "session_id": SESSION_ID, "message_id": MESSAGE_ID, "response": ANSWER_TEXT,
                "sources": [SOURCE], "suggestions": SUGGESTIONS, "mode": "compliance",
                "model": "extractive", "insufficient_context": False, "credits_used": 1,
                "input_tokens": 812, "output_tokens": 64, "cost_usd": 0.0,
                "retrieval_ms": 12, "generation_ms": 3, "total_latency_ms": 21})]),
        **errors(400, "query field is required.", 'mode: "fast" is not a valid choice.',
                 'model: unknown model "gpt-9". See GET /v1/models/.',
                 "This Idempotency-Key was already used with a different request. Use a new "
                 "key for a new request.", "Idempotency-Key: must be 1 to 255 characters."),
        **errors(402, CREDITS_EXHAUSTED),
        **errors(403, "Your organization does not have access to this domain.",
                 'Your plan does not include the premium model "claude-sonnet".',
                 "Your plan does not include streaming."),
        **errors(404, "Domain not found.", "Category not found.", SESSION_NOT_FOUND),
        **errors(409, "A request with this Idempotency-Key is still in progress. Retry after "
                      "it has completed.",
                 description="The first request with this `Idempotency-Key` is still "
                             "running."),
    },
)

session_recent = extend_schema(
    operation_id="sessions_recent_list", tags=SESSIONS, summary="List recent sessions",
    description="Most recent activity first.",
    parameters=[RecentQuerySerializer],
    examples=[OpenApiExample("Session", SESSION, response_only=True)],
    responses={200: SessionSerializer(many=True),
               **errors(400, "limit: Ensure this value is less than or equal to 100.")},
)

session_detail = extend_schema(
    operation_id="sessions_retrieve", tags=SESSIONS, summary="Get a session",
    parameters=[SESSION_ID_PATH],
    examples=[OpenApiExample("Session", SESSION, response_only=True)],
    responses={200: SessionSerializer, **errors(404, SESSION_NOT_FOUND)},
)

_DELETE = dict(
    tags=SESSIONS, summary="Delete a session",
    description="Its messages go with it; the credit ledger keeps its entries.",
    parameters=[SESSION_ID_PATH],
    responses={204: None, **errors(404, SESSION_NOT_FOUND)},
)
session_delete = extend_schema(operation_id="sessions_destroy", **_DELETE)
session_delete_alias = extend_schema(
    operation_id="sessions_delete_destroy", **{**_DELETE, "summary": "Delete a session "
                                                                     "(alias)"})

session_messages = extend_schema(
    operation_id="sessions_messages_list", tags=SESSIONS, summary="List a session's messages",
    description="Oldest first: each question, then its answer.",
    parameters=[SESSION_ID_PATH],
    examples=[OpenApiExample("Answer", ASSISTANT_MESSAGE, response_only=True)],
    responses={200: MessageSerializer(many=True), **errors(404, SESSION_NOT_FOUND)},
)

session_rename = extend_schema(
    operation_id="sessions_rename", tags=SESSIONS, summary="Rename a session",
    parameters=[SESSION_ID_PATH],
    request=RenameSerializer,
    examples=[OpenApiExample("Title", {"title": "EDD for PEPs"}, request_only=True),
              OpenApiExample("Renamed", {**SESSION, "title": "EDD for PEPs"},
                             response_only=True)],
    responses={200: SessionSerializer, **errors(400, "title field is required."),
               **errors(404, SESSION_NOT_FOUND)},
)

session_export = extend_schema(
    operation_id="sessions_export", tags=SESSIONS, summary="Export a session",
    description="The whole conversation as an attachment: Markdown (default) or JSON. Plans "
                "with export only.",
    parameters=[
        SESSION_ID_PATH, ExportQuerySerializer,
        OpenApiParameter("Content-Disposition", OpenApiTypes.STR, OpenApiParameter.HEADER,
                         response=[200],
                         description='`attachment; filename="egret-session-<id>.md"` (or '
                                     '`.json`).'),
    ],
    responses={
        (200, "text/markdown"): OpenApiResponse(
            OpenApiTypes.STR, "`format=markdown`.",
            [OpenApiExample("Markdown", f"# {QUESTION}\n\n"
                                        "*Privacy · European Union · "
                                        "exported 2026-03-26 08:00 UTC · 2 messages*\n\n"
                                        "## Question (2026-03-25 22:35 UTC)\n\n...")]),
        (200, "application/json"): OpenApiResponse(
            SessionExportSerializer, "`format=json`.",
            [OpenApiExample("JSON", {"session": SESSION, "messages": [ASSISTANT_MESSAGE],
                                     "exported_at": "2026-03-26T08:00:00+00:00"})]),
        **errors(400, 'format: "pdf" is not a valid choice.'),
        **errors(403, "Your plan does not include session export."),
        **errors(404, SESSION_NOT_FOUND),
    },
)
