"""OpenAPI documentation of models, the query endpoint (JSON or an NDJSON stream) and sessions
(API.md 6, 7, 8). The serializers here describe bodies the pipeline builds as dicts."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (OpenApiExample, OpenApiParameter, OpenApiResponse,
                                   PolymorphicProxySerializer, extend_schema)
from rest_framework import serializers

from assistant.serializers import (MODES, AIModelSerializer, CompareRequestSerializer,
                                   ComparisonSummarySerializer, ExportQuerySerializer,
                                   MessageSerializer, QueryRequestSerializer,
                                   RecentQuerySerializer, RenameSerializer, SessionSerializer,
                                   SourceSerializer)
from billing.idempotency import HEADER as IDEMPOTENCY_HEADER
from billing.idempotency import REPLAY_HEADER
from billing.services import CREDITS_EXHAUSTED
from core.errors import SERVER_ERROR_DETAIL
from core.schema import CURSOR_PARAMETERS, NdjsonStream, errors, paginated, uuid_path

QUERY = ["Query"]
SESSIONS = ["Sessions"]
COMPARE = ["Compare"]
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


# --- Cross-category comparison (API.md 12) ----------------------------------------------------
class CompareAnswerSerializer(serializers.Serializer):
    category = serializers.CharField(help_text="The category's code.")
    category_name = serializers.CharField()
    response = serializers.CharField(help_text="Markdown answer, exactly as /v1/query/ gives "
                                               "it; `[n]` markers cite this answer's "
                                               "`sources`.")
    sources = SourceSerializer(many=True)
    insufficient_context = serializers.BooleanField(
        help_text="true: this category's sources do not cover the question; its share of "
                  "the credits is refunded.")
    credits_used = serializers.IntegerField()


class ComparisonSerializer(serializers.Serializer):
    comparison_id = serializers.UUIDField(help_text="GET /v1/compare/{id}/ returns this "
                                                    "response again.")
    query = serializers.CharField()
    domain = serializers.CharField(help_text="The domain's slug.")
    mode = serializers.ChoiceField(choices=ANSWERED_MODES)
    model = serializers.CharField()
    answers = CompareAnswerSerializer(many=True, help_text="One per category, in request "
                                                           "order.")
    comparison = serializers.CharField(
        help_text="Markdown: a table of the points where the categories agree or differ "
                  "(deadlines, frequencies, thresholds, who must be told, who approves, "
                  "retention), one column per category; each cell gives the figure in bold "
                  "and cites its category's source as `[code:n]` (source n of that "
                  "category's answer).")
    credits_used = serializers.IntegerField(help_text="The model's credits_per_query × the "
                                                      "categories answered.")
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_usd = serializers.FloatField()
    total_latency_ms = serializers.IntegerField()


class CompareSourcesEventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["sources"])
    category = serializers.CharField(help_text="Whose answer follows.")
    sources = SourceSerializer(many=True)
    retrieval_ms = serializers.IntegerField()
    chunks_retrieved = serializers.IntegerField()
    insufficient_context = serializers.BooleanField()
    mode = serializers.ChoiceField(choices=ANSWERED_MODES)
    comparison_id = serializers.UUIDField()


class CompareTextDeltaEventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["text_delta"])
    category = serializers.CharField(allow_null=True, help_text="The category whose answer "
                                                                "this continues; null: the "
                                                                "comparison.")
    text = serializers.CharField()


class CompareDoneEventSerializer(ComparisonSerializer):
    type = serializers.ChoiceField(choices=["done"])


COMPARE_STREAM_EVENT = PolymorphicProxySerializer(
    component_name="CompareStreamEvent",
    serializers={"sources": CompareSourcesEventSerializer,
                 "text_delta": CompareTextDeltaEventSerializer,
                 "done": CompareDoneEventSerializer, "error": ErrorEventSerializer},
    resource_type_field_name="type",
)

COMPARISON_ID = "3c9e1d7a-8b2f-4e6d-9a1c-5f0b7e2d4c68"
# Examples as the demo library (manage.py egret_demo) answers them with the extractive model;
# answers and source lists shortened.
COMPARE_QUESTION = {"query": "How often must continuity plans be tested, and who approves the "
                             "test plan?", "domain": "business-continuity",
                    "categories": ["us", "sg"], "mode": "compliance"}
COMPARE_SOURCE_US = {
    "id": 38, "document_id": "150ac5ef-fa30-48ec-a07e-e5fed6fdf80a",
    "uri": "egret://documents/150ac5ef-fa30-48ec-a07e-e5fed6fdf80a#chunk-2",
    "filename": "testing-and-exercises.md", "title": "Testing and Exercises",
    "section": "Annual Test Plan", "page": None,
    "excerpt": "Prepare a test plan at the start of each year and obtain approval from the "
               "continuity steering committee. The plan should show which functions, systems "
               "and sites will be tested, by which method, and in which quarter.…",
    "score": 0.9346,
    "download_url": "/v1/documents/150ac5ef-fa30-48ec-a07e-e5fed6fdf80a/download/",
    "scope": "public"}
COMPARE_SOURCE_SG = {
    "id": 56, "document_id": "820c0bc8-9704-4143-807e-0154c4005a05",
    "uri": "egret://documents/820c0bc8-9704-4143-807e-0154c4005a05#chunk-4",
    "filename": "board-oversight.md", "title": "Board and Senior Management Oversight",
    "section": "Senior Management Responsibilities", "page": None,
    "excerpt": "Senior management implements the framework. Appoint a senior executive as "
               "accountable for business continuity across the institution…",
    "score": 0.9149,
    "download_url": "/v1/documents/820c0bc8-9704-4143-807e-0154c4005a05/download/",
    "scope": "public"}
COMPARISON_TEXT = (
    "United States and Singapore side by side, each figure as its own sources state it:\n\n"
    "| Point | United States | Singapore | Agree or differ |\n"
    "| --- | --- | --- | --- |\n"
    "| Who approves | **steering committee**: Prepare a test plan at the start of each year "
    "and obtain approval from the continuity steering committee. [us:1] | **Senior "
    "management**: …Senior management should: approve the annual testing programme and review "
    "results; [sg:1] | Differ |\n"
    "| How often | **at least annually**: Contracts with critical vendors should include: the "
    "right to receive summaries of the vendor's continuity tests at least annually; [us:3] | "
    "**at least annually**: The board, or a board committee to which it delegates, should: "
    "approve the business continuity and technology risk management framework and review it "
    "at least annually; [sg:2] | Agree |\n\n"
    "They differ on 1 of 2 points (who approves).")
COMPARISON = {
    "comparison_id": COMPARISON_ID, **{k: COMPARE_QUESTION[k] for k in ("query", "domain")},
    "mode": "compliance", "model": "extractive",
    "answers": [
        {"category": "us", "category_name": "United States",
         "response": "Here is what the cited guidance says on this, quoted from 3 sources in 2 "
                     "documents.\n\n**Annual Test Plan**\n- Prepare a test plan at the start "
                     "of each year and obtain approval from the continuity steering committee "
                     "[1].", "sources": [COMPARE_SOURCE_US],
         "insufficient_context": False, "credits_used": 1},
        {"category": "sg", "category_name": "Singapore",
         "response": "Here is what the Board and Senior Management Oversight guidance says on "
                     "this, quoted from 1 source.\n\n- Senior management should: approve the "
                     "annual testing programme and review results [1].",
         "sources": [COMPARE_SOURCE_SG], "insufficient_context": False, "credits_used": 1}],
    "comparison": COMPARISON_TEXT, "credits_used": 2, "input_tokens": 6580,
    "output_tokens": 779, "cost_usd": 0.0, "total_latency_ms": 412}
COMPARISON_NOT_FOUND = "Comparison not found."

compare = extend_schema(
    operation_id="compare_create", tags=COMPARE, summary="Compare categories side by side",
    description=(
        "One question answered for 2 to 4 categories of one domain (e.g. business continuity "
        "in the US and in Singapore), each answer exactly as `POST /v1/query/` gives it, plus "
        "`comparison`: a table of the points where they agree or differ, each cell citing "
        "its category's source as `[us:2]`. Plans with cross-category comparison only.\n\n"
        "Cost: the model's `credits_per_query` × the number of categories, reserved in one "
        "reservation before retrieval (402 when the balance cannot cover all of it); each "
        "category answered with `insufficient_context: true` is refunded its share, and a "
        "failure refunds everything.\n\n"
        "With `\"stream\": true` the response is `application/x-ndjson`: for each category "
        "in request order a `sources` event and its `text_delta` events (tagged with "
        "`category`), then the comparison's `text_delta` events (`category: null`), then "
        "one `done` with the whole response. A failure after the stream started ends it with "
        "an `error` event (credits refunded).\n\n"
        "`Idempotency-Key` works as on `POST /v1/query/`. Errors are reported in this order: "
        "400, 404 (objects named in the body), 403, 402."),
    request=CompareRequestSerializer,
    parameters=[
        OpenApiParameter(IDEMPOTENCY_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER,
                         description="Up to 255 characters; as on POST /v1/query/."),
        OpenApiParameter(REPLAY_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER,
                         response=[200], enum=["true"],
                         description="Present on a replayed Idempotency-Key response."),
    ],
    examples=[
        OpenApiExample("Two jurisdictions", COMPARE_QUESTION, request_only=True),
        OpenApiExample("Streamed", {
            "query": "How quickly must a personal data breach be reported, and to whom?",
            "domain": "privacy", "categories": ["eu", "us"], "mode": "compliance",
            "stream": True, "max_sources": 4}, request_only=True),
    ],
    responses={
        (200, "application/json"): OpenApiResponse(
            ComparisonSerializer, "`stream` false or absent: the comparison, as JSON. `stream: "
                                  "true`: `application/x-ndjson`, one `CompareStreamEvent` "
                                  "per line.",
            [OpenApiExample("Comparison", COMPARISON)]),
        (200, "application/x-ndjson"): OpenApiResponse(
            COMPARE_STREAM_EVENT, "`stream: true`: each line is one of these events.",
            [OpenApiExample("sources", {
                "type": "sources", "category": "us", "sources": [COMPARE_SOURCE_US],
                "retrieval_ms": 12, "chunks_retrieved": 5, "insufficient_context": False,
                "mode": "compliance", "comparison_id": COMPARISON_ID},
                summary="First line of each category"),
             OpenApiExample("text_delta", {"type": "text_delta", "category": "us",
                                           "text": "**Annual Test Plan**\n"},
                            summary="Then that category's answer"),
             OpenApiExample("comparison text_delta", {
                 "type": "text_delta", "category": None,
                 "text": "| Point | United States | Singapore | Agree or differ |\n"},
                 summary="After every answer: the comparison"),
             OpenApiExample("done", {"type": "done", **COMPARISON}, summary="Last line"),
             OpenApiExample("error", {"type": "error", "detail": SERVER_ERROR_DETAIL,
                                      "request_id": "5b0e5e0c4f0a4d7e9a3f2c1b8d6e4a20"},
                            summary="Last line when generation failed")]),
        **errors(400, "query field is required.",
                 "categories: give 2 to 4 category codes of the domain (got 1).",
                 'categories: "us" is listed twice; each category is compared once.',
                 'model: unknown model "gpt-9". See GET /v1/models/.',
                 "This Idempotency-Key was already used with a different request. Use a new "
                 "key for a new request."),
        **errors(402, CREDITS_EXHAUSTED),
        **errors(403, "Your organization does not have access to this domain.",
                 "Your plan does not include cross-category comparison.",
                 'Your plan does not include the premium model "claude-sonnet".',
                 "Your plan does not include streaming."),
        **errors(404, "Domain not found.", "Category not found."),
        **errors(409, "A request with this Idempotency-Key is still in progress. Retry after "
                      "it has completed.",
                 description="The first request with this `Idempotency-Key` is still "
                             "running."),
    },
)

compare_list = extend_schema(
    operation_id="compare_list", tags=COMPARE, summary="List comparisons",
    description="The organization's stored comparisons, newest first, cursor-paginated; "
                "GET /v1/compare/{id}/ has each one's whole response. No charge.",
    parameters=CURSOR_PARAMETERS,
    examples=[OpenApiExample("Comparison", {
        "comparison_id": COMPARISON_ID, "query": COMPARE_QUESTION["query"],
        "domain": "business-continuity", "categories": ["us", "sg"], "mode": "compliance",
        "model": "extractive", "credits_used": 2, "created_at": "2026-03-25T22:35:07Z"},
        response_only=True)],
    responses={200: paginated("PaginatedComparisonList",
                              ComparisonSummarySerializer(many=True)),
               **errors(404, "Invalid cursor")},
)

compare_detail = extend_schema(
    operation_id="compare_retrieve", tags=COMPARE, summary="Get a comparison",
    description="The response of `POST /v1/compare/` again (no charge). Another "
                "organization's comparison is not found.",
    parameters=[uuid_path("comparison_id", "comparison")],
    examples=[OpenApiExample("Comparison", COMPARISON, response_only=True)],
    responses={200: ComparisonSerializer, **errors(404, COMPARISON_NOT_FOUND)},
)
