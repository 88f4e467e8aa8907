from rest_framework import serializers

from knowledge.models import Category, Document, Domain
from organizations.models import ApiKey


class CategoryBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["code", "name"]


class CategorySerializer(serializers.ModelSerializer):
    document_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Category
        fields = ["code", "name", "description", "document_count"]


class DomainSerializer(serializers.ModelSerializer):
    categories = CategoryBriefSerializer(many=True, read_only=True)
    document_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Domain
        fields = ["slug", "name", "description", "categories", "document_count"]


class UploaderKeySerializer(serializers.ModelSerializer):
    """The API key a document was uploaded with."""

    class Meta:
        model = ApiKey
        fields = ["id", "key_prefix", "name"]


class DocumentSerializer(serializers.ModelSerializer):
    # null: the document serves every domain of the organization.
    domain = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    category = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    uploaded_by = serializers.SerializerMethodField(
        help_text="Email of the user who uploaded the document; null when it was uploaded "
                  "with an API key (see `uploaded_by_key`).")
    uploaded_by_key = UploaderKeySerializer(
        source="uploaded_by_api_key", read_only=True, allow_null=True,
        help_text="The API key the document was uploaded with; null when a user uploaded it.")
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Document
        fields = ["id", "title", "filename", "content_type", "size_bytes", "status", "error",
                  "page_count", "chunk_count", "domain", "category", "uploaded_by",
                  "uploaded_by_key", "created_at", "download_url"]

    def get_uploaded_by(self, obj: Document) -> str | None:
        return obj.uploaded_by.email if obj.uploaded_by_id else None

    def get_download_url(self, obj: Document) -> str:
        return obj.download_url


class DocumentListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Document.Status.choices, required=False)
