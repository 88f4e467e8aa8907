from __future__ import annotations

import json
import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.schema import documented_json
from core.strict import StrictSerializer
from knowledge.models import Domain
from organizations.models import ApiKey, Invitation, Membership, Organization, Role

MAX_CREDIT_ALERTS = 5
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MB = 1024 * 1024


KB_STATUSES = ["empty", "processing", "active"]


class OrganizationSerializer(serializers.ModelSerializer):
    allowed_domains = documented_json(
        serializers.ListField(child=serializers.CharField()),
        help_text="Domain slugs the organization may query; empty: every domain.")
    credit_alert_thresholds = documented_json(
        serializers.ListField(child=serializers.IntegerField()),
        help_text="Percentages of the period's granted credits at which a "
                  "credits.threshold_reached webhook event fires (1-100, at most 5).")
    plan = serializers.CharField(source="plan.slug")
    role = serializers.CharField()
    owner_email = serializers.EmailField(allow_null=True)
    member_count = serializers.IntegerField()
    max_members = serializers.IntegerField()
    max_documents = serializers.IntegerField()
    max_storage_bytes = serializers.IntegerField()
    max_storage_mb = serializers.SerializerMethodField()
    # The organization's private knowledge base; the document store fills these in.
    document_count = serializers.SerializerMethodField()
    storage_used_bytes = serializers.SerializerMethodField()
    storage_used_mb = serializers.SerializerMethodField()
    kb_status = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = [
            "id", "slug", "name", "owner_email", "allowed_domains", "credit_alert_thresholds",
            "plan", "role",
            "max_documents", "document_count", "max_storage_bytes", "storage_used_bytes",
            "storage_used_mb", "max_storage_mb", "max_members", "member_count", "kb_status",
            "is_active", "created_at", "updated_at",
        ]

    def get_max_storage_mb(self, obj: Organization) -> float:
        return round(obj.max_storage_bytes / MB, 2)

    def get_document_count(self, obj: Organization) -> int:
        return getattr(obj, "document_count", 0)

    def get_storage_used_bytes(self, obj: Organization) -> int:
        return getattr(obj, "storage_used_bytes", 0)

    def get_storage_used_mb(self, obj: Organization) -> float:
        return round(self.get_storage_used_bytes(obj) / MB, 2)

    @extend_schema_field(serializers.ChoiceField(choices=KB_STATUSES))
    def get_kb_status(self, obj: Organization) -> str:
        """active: at least one document is ready to search; processing: none is yet, but
        some are being ingested; empty: neither."""
        if getattr(obj, "ready_documents", 0):
            return "active"
        return "processing" if getattr(obj, "processing_documents", 0) else "empty"


class OrganizationCreateSerializer(StrictSerializer):
    represents = OrganizationSerializer
    name = serializers.CharField(max_length=200)
    slug = serializers.CharField(max_length=50, min_length=2, required=False)

    def validate_slug(self, value: str) -> str:
        if not SLUG_RE.match(value):
            raise serializers.ValidationError(
                "use lowercase letters, digits and single hyphens (e.g. \"acme-corp\")."
            )
        return value


class OrganizationUpdateSerializer(StrictSerializer):
    represents = OrganizationSerializer
    name = serializers.CharField(max_length=200, required=False)
    allowed_domains = serializers.ListField(child=serializers.CharField(), required=False)
    credit_alert_thresholds = serializers.ListField(child=serializers.JSONField(),
                                                    required=False)

    def validate_credit_alert_thresholds(self, value: list) -> list[int]:
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= 100:
                raise serializers.ValidationError(
                    f"{json.dumps(item)} is not a whole percentage from 1 to 100.")
        unique = sorted(set(value))
        if len(unique) > MAX_CREDIT_ALERTS:
            raise serializers.ValidationError(f"at most {MAX_CREDIT_ALERTS} thresholds.")
        return unique

    def validate_allowed_domains(self, value: list[str]) -> list[str]:
        unique = list(dict.fromkeys(value))
        known = set(Domain.objects.filter(slug__in=unique).values_list("slug", flat=True))
        for slug in unique:
            if slug not in known:
                raise serializers.ValidationError(f'unknown domain "{slug}".')
        return unique


class MemberSerializer(serializers.ModelSerializer):
    user_id = serializers.UUIDField(source="user.id")
    email = serializers.EmailField(source="user.email")
    name = serializers.CharField(source="user.name")

    class Meta:
        model = Membership
        fields = ["user_id", "email", "name", "role", "joined_at"]


class MemberAddSerializer(StrictSerializer):
    represents = MemberSerializer
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class InvitationCreatedSerializer(serializers.ModelSerializer):
    """`POST /v1/orgs/{slug}/members/` for an email with no account (API.md 14)."""

    invitation_id = serializers.UUIDField(source="id")

    class Meta:
        model = Invitation
        fields = ["invitation_id", "email", "role", "expires_at"]


INVITATION_STATUSES = ["pending", "expired"]


class InvitationSerializer(InvitationCreatedSerializer):
    invited_by = serializers.EmailField(source="invited_by.email", default=None,
                                       allow_null=True)
    status = serializers.SerializerMethodField()

    class Meta(InvitationCreatedSerializer.Meta):
        fields = [*InvitationCreatedSerializer.Meta.fields, "status", "invited_by", "created_at"]

    @extend_schema_field(serializers.ChoiceField(choices=INVITATION_STATUSES))
    def get_status(self, obj: Invitation) -> str:
        return "pending" if obj.is_pending() else "expired"


class InvitationAcceptSerializer(StrictSerializer):
    token = serializers.CharField(max_length=200, help_text="`token` from the invitation link.")
    password = serializers.CharField(
        max_length=128, required=False, write_only=True, trim_whitespace=False,
        help_text="The new account's password; not needed with an access token of the "
                  "invited email.")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class MembershipSerializer(MemberSerializer):
    """A membership as an accepted invitation returns it: with its organization."""

    organization = serializers.CharField(source="organization.slug",
                                         help_text="The organization's slug.")

    class Meta(MemberSerializer.Meta):
        fields = ["organization", *MemberSerializer.Meta.fields]


class MemberRoleSerializer(StrictSerializer):
    represents = MemberSerializer
    role = serializers.ChoiceField(choices=Role.choices)


class ApiKeySerializer(serializers.ModelSerializer):
    created_by = serializers.EmailField(source="created_by.email", default=None,
                                       allow_null=True)
    is_active = serializers.BooleanField()

    class Meta:
        model = ApiKey
        fields = ["id", "name", "key_prefix", "is_active", "created_at", "last_used_at",
                  "expires_at", "created_by"]


class ApiKeyCreateSerializer(StrictSerializer):
    represents = ApiKeySerializer
    also_read_only = ("key",)
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ApiKeyUpdateSerializer(StrictSerializer):
    represents = ApiKeySerializer
    also_read_only = ("key",)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    name = serializers.CharField(max_length=100, required=False)


def api_key_body(key: ApiKey, raw: str | None = None) -> dict:
    body = dict(ApiKeySerializer(key).data)
    if raw is not None:
        body["key"] = raw
    return body
