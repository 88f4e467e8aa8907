"""Reads of the knowledge base."""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q, QuerySet

from core.api import is_uuid
from core.exceptions import NotFound
from knowledge.models import Category, Document, Domain

READY_PUBLIC = Q(documents__organization__isnull=True,
                 documents__status=Document.Status.READY)


def domains_active() -> QuerySet[Domain]:
    """Active domains with their categories and the number of ready library documents:
    two queries whatever the number of domains."""
    return (Domain.objects.filter(is_active=True)
            .annotate(document_count=Count("documents", filter=READY_PUBLIC))
            .prefetch_related(Prefetch("categories", queryset=Category.objects.order_by("code")))
            .order_by("name"))


def domain_get(slug: str) -> Domain:
    domain = domains_active().filter(slug=slug).first()
    if domain is None:
        raise NotFound("Domain")
    return domain


def categories_of(domain: Domain) -> QuerySet[Category]:
    return (Category.objects.filter(domain=domain)
            .annotate(document_count=Count("documents", filter=READY_PUBLIC))
            .order_by("code"))


def documents_of(organization, *, status: str | None = None) -> QuerySet[Document]:
    queryset = (Document.objects.filter(organization=organization)
                .select_related("domain", "category", "uploaded_by",
                                "uploaded_by_api_key"))
    return queryset.filter(status=status) if status else queryset


def document_get(organization, document_id) -> Document:
    document = (documents_of(organization).filter(pk=document_id).first()
                if is_uuid(str(document_id)) else None)
    if document is None:
        raise NotFound("Document")
    return document


def downloadable_get(organization, document_id) -> Document:
    """Library documents are downloadable by any authenticated caller; private ones only
    inside their organization (another organization's is a 404)."""
    if not is_uuid(str(document_id)):
        raise NotFound("Document")
    document = (Document.objects.filter(pk=document_id)
                .filter(Q(organization__isnull=True) | Q(organization=organization)).first())
    if document is None:
        raise NotFound("Document")
    return document
