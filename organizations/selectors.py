"""Reads of organizations, members and keys; every function takes the acting principal or
organization so tenant filtering cannot be forgotten."""

from __future__ import annotations

from django.db.models import (BigIntegerField, Count, IntegerField, OuterRef, QuerySet,
                              Subquery, Sum, Value)
from django.db.models.functions import Coalesce

from core.authentication import ApiKeyPrincipal
from core.tenancy import API_KEY_ROLE
from organizations.models import ApiKey, Membership, Organization, Role


def _with_stats(queryset: QuerySet[Organization]) -> QuerySet[Organization]:
    members = (
        Membership.objects.filter(organization=OuterRef("pk"))
        .order_by()
        .values("organization")
        .annotate(n=Count("pk"))
        .values("n")
    )
    owner_email = (
        Membership.objects.filter(organization=OuterRef("pk"), role=Role.OWNER)
        .order_by("joined_at")
        .values("user__email")[:1]
    )
    from knowledge.models import Document

    def documents(aggregate, **filters):
        rows = (Document.objects.filter(organization=OuterRef("pk"), **filters).order_by()
                .values("organization").annotate(n=aggregate).values("n"))
        return Coalesce(Subquery(rows, output_field=BigIntegerField()), 0)

    return queryset.select_related("plan").annotate(
        member_count=Coalesce(Subquery(members, output_field=IntegerField()), 0),
        owner_email=Subquery(owner_email),
        document_count=documents(Count("pk")),
        storage_used_bytes=documents(Sum("size_bytes")),
        ready_documents=documents(Count("pk"), status=Document.Status.READY),
        processing_documents=documents(Count("pk"), status=Document.Status.PROCESSING),
    )


def organizations_visible_to(principal) -> QuerySet[Organization]:
    """One query, whatever the number of organizations; each row carries the caller's role."""
    if isinstance(principal, ApiKeyPrincipal):
        queryset = Organization.objects.filter(pk=principal.organization.pk).annotate(
            role=Value(API_KEY_ROLE)
        )
    else:
        role = Membership.objects.filter(organization=OuterRef("pk"), user=principal).values(
            "role"
        )[:1]
        queryset = Organization.objects.filter(
            memberships__user=principal, is_active=True
        ).annotate(role=Subquery(role))
    return _with_stats(queryset).order_by("created_at")


def organization_detail(organization: Organization, role: str) -> Organization:
    return _with_stats(Organization.objects.filter(pk=organization.pk)).annotate(
        role=Value(role)
    ).get()


def members_of(organization: Organization) -> QuerySet[Membership]:
    return organization.memberships.select_related("user").order_by("joined_at")


def api_keys_of(organization: Organization) -> QuerySet[ApiKey]:
    return organization.api_keys.select_related("created_by").order_by("-created_at")
