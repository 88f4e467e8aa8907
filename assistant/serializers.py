from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from assistant.models import AIModel, ChatSession, Comparison, Message
from core.schema import documented_json
from core.strict import StrictSerializer

MODES = ("compliance", "advisory", "auto")
SCOPES = ("all", "public", "private")
MAX_QUERY_CHARS = 4000
MIN_COMPARED, MAX_COMPARED = 2, 4
MODE_HELP = ("`compliance`: closest to the sources, most citations; `advisory`: interpretive "
             "guidance; `auto`: the service classifies the question and picks one.")
SCOPE_HELP = ("`all`: the library and the organization's documents; `public`: the library; "
              "`private`: the organization's documents (needs `kb_status` `active`).")


# Shape only (API.md 7); lookups and permissions come after, in the contract's order. Fields
# are declared in the order their 400s are reported. (A comment, not a docstring: the OpenAPI
# document would publish a docstring, as "QueryRequest".)
@extend_schema_serializer(component_name="Query")
class QueryRequestSerializer(StrictSerializer):
    query = serializers.CharField(max_length=MAX_QUERY_CHARS, trim_whitespace=True,
                                  help_text="The question.")
    domain = serializers.CharField(max_length=100, help_text="A domain slug.")
    category = serializers.CharField(max_length=100, help_text="A category code of `domain`.")
    mode = serializers.ChoiceField(choices=MODES, help_text=MODE_HELP)
    model = serializers.CharField(max_length=100, required=False,
                                  help_text="A model id from GET /v1/models/ (default model "
                                            "when absent).")
    model_id = serializers.CharField(max_length=100, required=False,
                                     help_text="Same as `model`; send one of the two.")
    stream = serializers.BooleanField(required=False, default=False,
                                      help_text="true: answer as an NDJSON stream.")
    session_id = serializers.UUIDField(required=False, allow_null=True,
                                       help_text="Continue this session (same domain and "
                                                 "category).")
    knowledge_scope = serializers.ChoiceField(choices=SCOPES, required=False, default="all",
                                              help_text=SCOPE_HELP)
    max_sources = serializers.IntegerField(min_value=1, max_value=20, required=False, default=5,
                                           help_text="Most passages to retrieve and cite.")

    def validate_query(self, value: str) -> str:
        if "\x00" in value:
            raise serializers.ValidationError("must not contain NUL characters.")
        return value

    def validate(self, attrs: dict) -> dict:
        model = attrs.pop("model", None)
        model_id = attrs.pop("model_id", None)
        if model and model_id and model != model_id:
            raise serializers.ValidationError(
                {"model": ["model and model_id name different models; send one."]})
        attrs["model"] = model or model_id
        return attrs


# API.md 12: the fields of a query, with `categories` in place of `category` and no session.
@extend_schema_serializer(component_name="CompareRequest")
class CompareRequestSerializer(StrictSerializer):
    query = serializers.CharField(max_length=MAX_QUERY_CHARS, trim_whitespace=True,
                                  help_text="The question, asked of every category.")
    domain = serializers.CharField(max_length=100, help_text="A domain slug.")
    categories = serializers.ListField(
        child=serializers.CharField(max_length=100),
        help_text=f"{MIN_COMPARED} to {MAX_COMPARED} distinct category codes of `domain`; "
                  "answers come back in this order.")
    mode = serializers.ChoiceField(choices=MODES, help_text=MODE_HELP)
    model = serializers.CharField(max_length=100, required=False,
                                  help_text="A model id from GET /v1/models/ (default model "
                                            "when absent). Each category costs its "
                                            "`credits_per_query`.")
    model_id = serializers.CharField(max_length=100, required=False,
                                     help_text="Same as `model`; send one of the two.")
    stream = serializers.BooleanField(required=False, default=False,
                                      help_text="true: answer as an NDJSON stream.")
    knowledge_scope = serializers.ChoiceField(
        choices=SCOPES, required=False, default="all",
        help_text=SCOPE_HELP)
    max_sources = serializers.IntegerField(min_value=1, max_value=20, required=False, default=5,
                                           help_text="Most passages to retrieve and cite, "
                                                     "per category.")

    validate_query = QueryRequestSerializer.validate_query
    validate = QueryRequestSerializer.validate

    def validate_categories(self, value: list[str]) -> list[str]:
        if not MIN_COMPARED <= len(value) <= MAX_COMPARED:
            raise serializers.ValidationError(
                f"give {MIN_COMPARED} to {MAX_COMPARED} category codes of the domain "
                f"(got {len(value)}).")
        repeated = next((code for i, code in enumerate(value) if code in value[:i]), None)
        if repeated is not None:
            raise serializers.ValidationError(f"\"{repeated}\" is listed twice; each category "
                                              "is compared once.")
        return value


class ComparisonSummarySerializer(serializers.ModelSerializer):
    """A stored comparison in the list; GET /v1/compare/{id}/ has the whole response."""

    comparison_id = serializers.UUIDField(source="id")
    domain = serializers.CharField(source="domain.slug")
    categories = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Comparison
        fields = ["comparison_id", "query", "domain", "categories", "mode", "model",
                  "credits_used", "created_at"]


class AIModelSerializer(serializers.ModelSerializer):
    available = serializers.SerializerMethodField()

    class Meta:
        model = AIModel
        fields = ["id", "name", "provider", "tier", "credits_per_query", "is_default",
                  "available"]

    def get_available(self, obj: AIModel) -> bool:
        return obj.available_to(self.context["plan"])


class SessionSerializer(serializers.ModelSerializer):
    session_id = serializers.UUIDField(source="id")
    domain_slug = serializers.CharField(source="domain.slug")
    domain_name = serializers.CharField(source="domain.name")
    category_code = serializers.CharField(source="category.code")
    category_name = serializers.CharField(source="category.name")

    class Meta:
        model = ChatSession
        fields = ["session_id", "title", "domain_slug", "domain_name", "category_code",
                  "category_name", "created_at", "last_activity_at", "message_count"]


class SourceSerializer(serializers.Serializer):
    """A passage an answer cites."""

    # The shape of pipeline.source_dict: `sources` in answers, stream events, stored messages.
    id = serializers.IntegerField(help_text="The passage's id.")
    document_id = serializers.UUIDField()
    uri = serializers.CharField(help_text="egret://documents/<document_id>#chunk-<n>")
    filename = serializers.CharField()
    title = serializers.CharField()
    section = serializers.CharField(help_text="The heading the passage sits under, or \"\".")
    page = serializers.IntegerField(allow_null=True, help_text="PDF page, else null.")
    excerpt = serializers.CharField()
    score = serializers.FloatField(min_value=0, max_value=1, help_text="Relevance, 0..1.")
    download_url = serializers.CharField()
    scope = serializers.ChoiceField(choices=["public", "private"],
                                    help_text="public: the library; private: the "
                                              "organization's own documents.")


class MessageSerializer(serializers.ModelSerializer):
    bedrock_model_id = serializers.CharField(source="model")
    sources = documented_json(SourceSerializer(many=True),
                              help_text="The passages the answer cites; [] on questions.")

    class Meta:
        model = Message
        fields = ["id", "session_id", "sender", "content", "model", "bedrock_model_id",
                  "sources", "input_tokens", "output_tokens", "credits_used",
                  "context_quality", "created_at"]


class RecentQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False, default=20)


class RenameSerializer(StrictSerializer):
    represents = SessionSerializer
    title = serializers.CharField(min_length=1, max_length=200)


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=("markdown", "json"), required=False,
                                     default="markdown")
