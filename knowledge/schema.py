"""OpenAPI documentation of the catalogue (API.md 6) and document (API.md 9) endpoints."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

from core.schema import CURSOR_PARAMETERS, errors, paginated, uuid_path
from knowledge.serializers import (CategorySerializer, DocumentListQuerySerializer,
                                   DocumentSerializer, DomainSerializer)

CATALOGUE = ["Catalogue"]
DOCUMENTS = ["Documents"]
# What an upload may be; a download comes back with the type it was stored with.
DOCUMENT_TYPES = ["application/pdf",
                  "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                  "text/markdown", "text/plain", "text/html"]


class DocumentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="PDF, DOCX, Markdown, plain text or HTML (the type "
                                           "is detected from the content). 25 MB by default.")
    title = serializers.CharField(required=False, help_text="Default: from the file.")
    domain = serializers.CharField(required=False, help_text="A domain slug. Without one, the "
                                                             "document serves every domain.")
    category = serializers.CharField(required=False, help_text="A category code of `domain`.")


DOMAIN = {"slug": "privacy", "name": "Privacy",
          "description": "Guidance on collecting, using, sharing and protecting personal data.",
          "categories": [{"code": "eu", "name": "European Union"},
                         {"code": "us", "name": "United States"}],
          "document_count": 12}
DOCUMENT = {"id": "5f1d2c3b-4a5e-4f6a-8b7c-9d0e1f2a3b4c", "title": "Breach response plan 2026",
            "filename": "breach-response-plan-2026.pdf", "content_type": "application/pdf",
            "size_bytes": 482113, "status": "ready", "error": "", "page_count": 12,
            "chunk_count": 57, "domain": "privacy", "category": "eu",
            "uploaded_by": "ada@example.com", "uploaded_by_key": None,
            "created_at": "2026-03-20T14:12:31Z",
            "download_url": "/v1/documents/5f1d2c3b-4a5e-4f6a-8b7c-9d0e1f2a3b4c/download/"}
PROCESSING = {**DOCUMENT, "status": "processing", "page_count": None, "chunk_count": 0}

DOMAIN_SLUG = OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH,
                               description="A domain slug, e.g. `privacy`.")
DOCUMENT_ID = uuid_path("document_id", "document")
DOMAIN_NOT_FOUND = "Domain not found."
DOCUMENT_NOT_FOUND = "Document not found."

domain_list = extend_schema(
    operation_id="domains_list", tags=CATALOGUE, summary="List domains",
    description="Active domains with their categories. Public.",
    examples=[OpenApiExample("Domain", DOMAIN, response_only=True)],
    responses={200: DomainSerializer(many=True)},
)

domain_detail = extend_schema(
    operation_id="domains_retrieve", tags=CATALOGUE, summary="Get a domain",
    description="Public. Unknown or inactive: 404.",
    parameters=[DOMAIN_SLUG],
    examples=[OpenApiExample("Domain", DOMAIN, response_only=True)],
    responses={200: DomainSerializer, **errors(404, DOMAIN_NOT_FOUND)},
)

category_list = extend_schema(
    operation_id="domains_categories_list", tags=CATALOGUE, summary="List a domain's categories",
    description="Public. `document_count` counts the ready library documents.",
    parameters=[DOMAIN_SLUG],
    examples=[OpenApiExample("Category", {"code": "eu", "name": "European Union",
                                          "description": "Lawful bases, rights, breaches.",
                                          "document_count": 6}, response_only=True)],
    responses={200: CategorySerializer(many=True), **errors(404, DOMAIN_NOT_FOUND)},
)

document_list = extend_schema(
    operation_id="documents_list", tags=DOCUMENTS, summary="List documents",
    description="The organization's documents, newest first, cursor-paginated.",
    parameters=[DocumentListQuerySerializer, *CURSOR_PARAMETERS],
    examples=[OpenApiExample("Page", {"next": None, "previous": None, "results": [DOCUMENT]},
                             response_only=True)],
    responses={200: paginated("PaginatedDocumentList", DocumentSerializer(many=True)),
               **errors(400, 'status: "done" is not a valid choice.'),
               **errors(404, "Invalid cursor")},
)

document_upload = extend_schema(
    operation_id="documents_create", tags=DOCUMENTS, summary="Upload a document",
    description="Adds a file to the organization's knowledge base; ingestion runs in the "
                "background (`status` goes from `processing` to `ready` or `failed`). The same "
                "file (same SHA-256) again returns the existing document with 200. Needs a "
                "plan with custom documents; its document and storage limits apply.",
    request={"multipart/form-data": DocumentUploadSerializer},
    responses={
        202: OpenApiResponse(DocumentSerializer, "Accepted; ingestion has started.",
                             [OpenApiExample("Processing", PROCESSING)]),
        200: OpenApiResponse(DocumentSerializer, "This file is already in the knowledge "
                                                 "base: the existing document.",
                             [OpenApiExample("Existing", DOCUMENT)]),
        **errors(400, "file field is required.", "file: the file is empty.",
                 "file: Unsupported file type: image/png. Accepted: PDF, DOCX, Markdown, "
                 "plain text, HTML.", "category: a category needs its domain."),
        **errors(403, "Your plan does not include custom documents.",
                 "Your plan allows at most 50 documents; delete one or upgrade your plan.",
                 "This upload would exceed your plan's storage of 1.00 GB."),
        **errors(404, DOMAIN_NOT_FOUND, "Category not found.",
                 description="`domain` or `category` names none."),
        **errors(413, "The file is larger than the 25 MB limit (26214400 bytes)."),
    },
)

document_detail = extend_schema(
    operation_id="documents_retrieve", tags=DOCUMENTS, summary="Get a document",
    parameters=[DOCUMENT_ID],
    examples=[OpenApiExample("Document", DOCUMENT, response_only=True)],
    responses={200: DocumentSerializer, **errors(404, DOCUMENT_NOT_FOUND)},
)

document_delete = extend_schema(
    operation_id="documents_destroy", tags=DOCUMENTS, summary="Delete a document",
    description="Its passages leave the search index at once. Owners, admins and the "
                "uploader.",
    parameters=[DOCUMENT_ID],
    responses={204: None,
               **errors(403, "Only owners, admins and the uploader can delete a document."),
               **errors(404, DOCUMENT_NOT_FOUND)},
)

document_download = extend_schema(
    operation_id="documents_download", tags=DOCUMENTS, summary="Download a document",
    description="The original file, as an attachment with its stored type (documented as "
                "`application/octet-stream`: read the body as bytes). Library documents "
                "(cited in answers with `scope: public`) are downloadable by any caller; "
                "private ones only within their organization.",
    parameters=[DOCUMENT_ID,
                OpenApiParameter("Content-Disposition", OpenApiTypes.STR,
                                 OpenApiParameter.HEADER, response=[200],
                                 description='`attachment; filename="<filename>"`.')],
    responses={
        (200, "application/octet-stream"): OpenApiResponse(
            OpenApiTypes.BINARY, "The original file's bytes. The `Content-Type` header is the "
                                 "type it was stored with: " + ", ".join(
                                     f"`{media_type}`" for media_type in DOCUMENT_TYPES) + "."),
        **errors(404, DOCUMENT_NOT_FOUND),
    },
)
