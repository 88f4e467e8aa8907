from __future__ import annotations

from django.conf import settings
from django.http import FileResponse
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import NewestFirstPagination, OrganizationScopedView, validated
from core.exceptions import FieldError, Forbidden
from core.strict import refuse_extra_fields
from knowledge import schema, selectors, services
from knowledge.serializers import (CategorySerializer, DocumentListQuerySerializer,
                                   DocumentSerializer, DomainSerializer)


class PublicCatalogueView(APIView):
    """The catalogue is public: no credentials needed, none looked at."""

    authentication_classes: list = []
    permission_classes = [AllowAny]


class DomainListView(PublicCatalogueView):
    @schema.domain_list
    def get(self, request: Request) -> Response:
        return Response(DomainSerializer(selectors.domains_active(), many=True).data)


class DomainDetailView(PublicCatalogueView):
    @schema.domain_detail
    def get(self, request: Request, slug: str) -> Response:
        return Response(DomainSerializer(selectors.domain_get(slug)).data)


class CategoryListView(PublicCatalogueView):
    @schema.category_list
    def get(self, request: Request, slug: str) -> Response:
        domain = selectors.domain_get(slug)
        return Response(CategorySerializer(selectors.categories_of(domain), many=True).data)


UPLOAD_FIELDS = frozenset({"file", "title", "domain", "category"})


class DocumentListView(OrganizationScopedView):
    parser_classes = [MultiPartParser, FormParser]

    @schema.document_list
    def get(self, request: Request) -> Response:
        query = validated(DocumentListQuerySerializer, request.query_params.dict())
        documents = selectors.documents_of(self.acting(request).organization,
                                           status=query.get("status"))
        paginator = NewestFirstPagination()
        page = paginator.paginate_queryset(documents, request, self)
        return paginator.get_paginated_response(DocumentSerializer(page, many=True).data)

    @schema.document_upload
    def post(self, request: Request) -> Response:
        acting = self.acting(request)
        # Refuse an oversized body before reading it.
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.EGRET_MAX_UPLOAD_BYTES + 64 * 1024:
            raise services.upload_limit_error()
        refuse_extra_fields(request.data, accepted=UPLOAD_FIELDS,
                            read_only=frozenset(DocumentSerializer().fields))
        upload = request.FILES.get("file")
        if upload is None:
            raise FieldError("file", "file field is required.", code="required")
        document, created = services.document_upload(
            acting.organization, data=upload.read(), filename=upload.name or "upload",
            title=str(request.data.get("title", "")).strip(),
            domain_slug=str(request.data.get("domain", "")).strip(),
            category_code=str(request.data.get("category", "")).strip(),
            uploaded_by=acting.user, uploaded_by_api_key=acting.api_key)
        return Response(DocumentSerializer(document).data,
                        status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)


class DocumentDetailView(OrganizationScopedView):
    @schema.document_detail
    def get(self, request: Request, document_id: str) -> Response:
        document = selectors.document_get(self.acting(request).organization, document_id)
        return Response(DocumentSerializer(document).data)

    @schema.document_delete
    def delete(self, request: Request, document_id: str) -> Response:
        acting = self.acting(request)
        document = selectors.document_get(acting.organization, document_id)
        own = (document.uploaded_by_id is not None and document.uploaded_by_id ==
               getattr(acting.user, "pk", None)) or (
            document.uploaded_by_api_key_id is not None and
            document.uploaded_by_api_key_id == getattr(acting.api_key, "pk", None))
        if not own and acting.role not in ("owner", "admin"):
            raise Forbidden("Only owners, admins and the uploader can delete a document.")
        services.document_delete(document)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DocumentDownloadView(OrganizationScopedView):
    @schema.document_download
    def get(self, request: Request, document_id: str) -> FileResponse:
        document = selectors.downloadable_get(self.acting(request).organization, document_id)
        return FileResponse(document.file.open("rb"), as_attachment=True,
                            filename=document.filename, content_type=document.content_type)
