from __future__ import annotations

from rest_framework import serializers

from assistant.models import AIModel, ChatSession, Message

MODES = ("compliance", "advisory", "auto")
SCOPES = ("all", "public", "private")
MAX_QUERY_CHARS = 4000


class QueryRequestSerializer(serializers.Serializer):
    """Shape only (API.md 7); lookups and permissions come after, in the contract's order.
    Fields are declared in the order their 400s are reported."""

    query = serializers.CharField(max_length=MAX_QUERY_CHARS, trim_whitespace=True)
    domain = serializers.CharField(max_length=100)
    category = serializers.CharField(max_length=100)
    mode = serializers.ChoiceField(choices=MODES)
    model = serializers.CharField(max_length=100, required=False)
    model_id = serializers.CharField(max_length=100, required=False)
    stream = serializers.BooleanField(required=False, default=False)
    session_id = serializers.UUIDField(required=False, allow_null=True)
    knowledge_scope = serializers.ChoiceField(choices=SCOPES, required=False, default="all")
    max_sources = serializers.IntegerField(min_value=1, max_value=20, required=False, default=5)

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


class MessageSerializer(serializers.ModelSerializer):
    bedrock_model_id = serializers.CharField(source="model")

    class Meta:
        model = Message
        fields = ["id", "session_id", "sender", "content", "model", "bedrock_model_id",
                  "sources", "input_tokens", "output_tokens", "credits_used",
                  "context_quality", "created_at"]


class RecentQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False, default=20)


class RenameSerializer(serializers.Serializer):
    title = serializers.CharField(min_length=1, max_length=200)


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=("markdown", "json"), required=False,
                                     default="markdown")
