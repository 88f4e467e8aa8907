"""OpenAPI documentation of the organization, member and API-key endpoints (API.md 3, 4)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (OpenApiExample, OpenApiParameter, OpenApiResponse,
                                   PolymorphicProxySerializer, extend_schema)
from rest_framework import serializers

from core.schema import (NOT_IN_AN_ORGANIZATION, TOKEN_NOT_VALID, WWW_AUTHENTICATE, errors,
                         uuid_path)
from organizations.serializers import (ApiKeyCreateSerializer, ApiKeySerializer,
                                       ApiKeyUpdateSerializer, InvitationAcceptSerializer,
                                       InvitationCreatedSerializer, InvitationSerializer,
                                       MemberAddSerializer, MembershipSerializer,
                                       MemberRoleSerializer, MemberSerializer,
                                       OrganizationCreateSerializer, OrganizationSerializer,
                                       OrganizationUpdateSerializer)


class ApiKeyWithSecretSerializer(ApiKeySerializer):
    """A key as created or rotated: the only time the full key is shown."""

    key = serializers.CharField(help_text="The full key (`egret_` + 40 characters). Shown "
                                          "once: only its digest is stored.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


ORGANIZATION = {
    "id": "3b6f0d52-8a1e-4c7b-9f3d-5e2a1c0b9d84", "slug": "acme", "name": "Acme",
    "owner_email": "ada@example.com", "allowed_domains": ["privacy"],
    "credit_alert_thresholds": [80, 95],
    "plan": "starter", "role": "owner", "max_documents": 50, "document_count": 3,
    "max_storage_bytes": 1073741824, "storage_used_bytes": 2621440, "storage_used_mb": 2.5,
    "max_storage_mb": 1024.0, "max_members": 3, "member_count": 2, "kb_status": "active",
    "is_active": True, "created_at": "2026-03-01T09:00:00Z",
    "updated_at": "2026-03-20T14:12:31Z",
}
MEMBER = {"user_id": "0f8c2a4e-6b1d-4c3e-9a57-2d6e8b1f4c90", "email": "grace@example.com",
          "name": "Grace Hopper", "role": "member", "joined_at": "2026-03-02T10:15:00Z"}
API_KEY = {"id": "8d2f1c6a-3e4b-4f5a-9c7d-1b2a3c4d5e6f", "name": "CI", "key_prefix":
           "egret_Xq3Lb9Tz0aKp7W", "is_active": True, "created_at": "2026-03-01T09:00:00Z",
           "last_used_at": "2026-03-25T22:30:00Z", "expires_at": None,
           "created_by": "ada@example.com"}
API_KEY_WITH_SECRET = {**API_KEY, "last_used_at": None,
                       "key": "egret_Xq3Lb9Tz0aKp7WmN4vR8sD2fG6hJ1kL5pQ9w3E"}

ORGS = ["Organizations"]
KEYS = ["API keys"]
SLUG = OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH,
                        description="The organization's slug. Not a member: 404.")
NOT_A_MEMBER = "Organization not found."
NO_KEY_MANAGEMENT = "API keys cannot manage API keys; use a user's access token."
NOT_KEY_MANAGER = "Only owners and admins can manage API keys."
KEY_NOT_FOUND = "API key not found."


def _response(example_name: str, value: dict) -> OpenApiExample:
    return OpenApiExample(example_name, value, response_only=True)


def _request(example_name: str, value: dict) -> OpenApiExample:
    return OpenApiExample(example_name, value, request_only=True)


organization_list = extend_schema(
    operation_id="orgs_list", tags=ORGS, summary="List my organizations",
    description="The caller's organizations (a bare array). An API key sees only its own.",
    parameters=[NOT_IN_AN_ORGANIZATION],
    examples=[_response("Organizations", ORGANIZATION)],
    responses={200: OrganizationSerializer(many=True),
               **errors(403, "Your plan does not include API access.")},
)

organization_create = extend_schema(
    operation_id="orgs_create", tags=ORGS, summary="Create an organization",
    description="The caller becomes its owner; it starts on the `free` plan with its monthly "
                "credits granted. Without `slug`, one is derived from the name (`-2`, `-3`... "
                "when taken). People only (JWT).",
    parameters=[NOT_IN_AN_ORGANIZATION],
    request=OrganizationCreateSerializer,
    examples=[_request("Name only", {"name": "Acme"}),
              _request("Name and slug", {"name": "Acme Corp", "slug": "acme-corp"}),
              _response("Created", {**ORGANIZATION, "plan": "free", "allowed_domains": [],
                                    "max_documents": 0, "document_count": 0,
                                    "max_storage_bytes": 0, "storage_used_bytes": 0,
                                    "storage_used_mb": 0.0, "max_storage_mb": 0.0,
                                    "max_members": 1, "member_count": 1,
                                    "kb_status": "empty"})],
    responses={201: OrganizationSerializer,
               **errors(400, "name field is required.",
                        "slug: an organization with this slug already exists."),
               **errors(403, "API keys cannot create organizations; use a user's access "
                             "token.")},
)

organization_detail = extend_schema(
    operation_id="orgs_retrieve", tags=ORGS, summary="Get an organization",
    parameters=[SLUG],
    examples=[_response("Organization", ORGANIZATION)],
    responses={200: OrganizationSerializer},
)

organization_update = extend_schema(
    operation_id="orgs_partial_update", tags=ORGS, summary="Update an organization",
    description="Owners and admins (JWT). Partial: send only what changes. Each slug in "
                "`allowed_domains` must be an existing domain; duplicates are removed; an "
                "empty list allows every domain. `credit_alert_thresholds`: whole "
                "percentages 1-100, at most 5 (sorted, duplicates removed; default [80, 95]); "
                "each fires one `credits.threshold_reached` webhook event per billing period.",
    parameters=[SLUG],
    request=OrganizationUpdateSerializer,
    examples=[_request("Restrict domains", {"allowed_domains": ["privacy", "business-continuity"]}),
              _request("Credit alerts", {"credit_alert_thresholds": [50, 80, 95]}),
              _request("Rename", {"name": "Acme Holdings"}),
              _response("Updated", ORGANIZATION)],
    responses={200: OrganizationSerializer,
               **errors(400, 'allowed_domains: unknown domain "no-such-domain".',
                        "credit_alert_thresholds: 0 is not a whole percentage from 1 to 100.",
                        "credit_alert_thresholds: at most 5 thresholds."),
               **errors(403, "Only owners and admins can change organization settings.")},
)

member_list = extend_schema(
    operation_id="orgs_members_list", tags=ORGS, summary="List members",
    description="People only (JWT).",
    parameters=[SLUG],
    examples=[_response("Members", MEMBER)],
    responses={200: MemberSerializer(many=True),
               **errors(403, "API keys cannot list members; use a user's access token.")},
)

INVITATION = {"invitation_id": "5c1d9e7a-2b4f-4e8a-9d3c-7f6a5b4c3d2e",
              "email": "linus@example.com", "role": "member",
              "expires_at": "2026-04-01T10:15:00Z"}

member_add = extend_schema(
    operation_id="orgs_members_create", tags=ORGS, summary="Add a member",
    description="An email with an account joins at once (the member object). An email with no "
                "account gets an invitation by email, valid 7 days (the invitation object); "
                "it joins when the person accepts (`POST /auth/invitations/accept/`). Owners "
                "and admins; only owners can grant `owner`. Members plus pending invitations "
                "count against the plan's `max_members`.",
    parameters=[SLUG],
    request=MemberAddSerializer,
    examples=[_request("Add a member", {"email": "grace@example.com", "role": "member"}),
              _response("Added", MEMBER), _response("Invited", INVITATION)],
    responses={201: OpenApiResponse(PolymorphicProxySerializer(
                   component_name="MemberOrInvitation",
                   serializers=[MemberSerializer, InvitationCreatedSerializer],
                   resource_type_field_name=None),
                   "The member added, or the invitation sent to an email with no account."),
               **errors(400, "email: this user is already a member of the organization.",
                        "email: an invitation to this email is already pending; revoke it "
                        "to send a new one.", 'role: "boss" is not a valid choice.'),
               **errors(403, "Only owners and admins can add members.",
                        "Your plan allows at most 3 members; upgrade your plan to add more.")},
)

_INVITATION_ID = uuid_path("invitation_id", "invitation")
_NOT_INVITATION_MANAGER = "Only owners and admins can manage invitations."
_NO_INVITATIONS_WITH_KEYS = "API keys cannot manage invitations; use a user's access token."

invitation_list = extend_schema(
    operation_id="orgs_invitations_list", tags=ORGS, summary="List invitations",
    description="Invitations not yet accepted or revoked, newest first; expired ones say so "
                "in `status`. Owners and admins (JWT).",
    parameters=[SLUG],
    examples=[_response("Invitations", {**INVITATION, "status": "pending",
                                        "invited_by": "ada@example.com",
                                        "created_at": "2026-03-25T10:15:00Z"})],
    responses={200: InvitationSerializer(many=True),
               **errors(403, _NOT_INVITATION_MANAGER, _NO_INVITATIONS_WITH_KEYS)},
)

invitation_revoke = extend_schema(
    operation_id="orgs_invitations_destroy", tags=ORGS, summary="Revoke an invitation",
    description="Its link stops working at once. Idempotent; an invitation already accepted "
                "is not found (remove the member instead).",
    parameters=[SLUG, _INVITATION_ID],
    responses={204: None, **errors(403, _NOT_INVITATION_MANAGER, _NO_INVITATIONS_WITH_KEYS),
               **errors(404, "Invitation not found.")},
)

invitation_accept = extend_schema(
    operation_id="auth_invitations_accept", tags=["Auth"], summary="Accept an invitation",
    description="With the `token` of an invitation email. Without credentials, creates the "
                "account of the invited email (`password` required; Django's validators "
                "apply), then joins; with an access token of the invited email, that "
                "account joins. Then log in as usual. Throttled like login.",
    parameters=[WWW_AUTHENTICATE],
    request=InvitationAcceptSerializer,
    examples=[_request("New account", {"token": "q8Zr1xV0bLkN3mT6yW2eH5aJ9cF4gD7s_uP-oI8nE1A",
                                       "password": "correct-horse-battery-44",
                                       "name": "Linus"}),
              _response("Joined", {"organization": "acme", **MEMBER,
                                   "email": "linus@example.com", "name": "Linus"})],
    responses={200: MembershipSerializer,
               **errors(400, "token: invalid or expired.", "password field is required.",
                        "password: This password is too common.",
                        "token: the invited email already has an account; log in and accept "
                        "the invitation with your access token."),
               **errors(401, TOKEN_NOT_VALID, description="An access token was sent and is "
                                                          "invalid or expired."),
               **errors(403, "This invitation was sent to another email address.",
                        "Your plan allows at most 3 members; upgrade your plan to add more.")},
)

_USER_ID = uuid_path("user_id", "member's user")

member_change_role = extend_schema(
    operation_id="orgs_members_partial_update", tags=ORGS, summary="Change a member's role",
    description="Owners only (JWT). The last owner cannot be demoted.",
    parameters=[SLUG, _USER_ID],
    request=MemberRoleSerializer,
    examples=[_request("Make admin", {"role": "admin"}),
              _response("Changed", {**MEMBER, "role": "admin"})],
    responses={200: MemberSerializer,
               **errors(400, "role field is required.", "The last owner cannot be demoted; "
                                                        "make another member an owner first."),
               **errors(403, "Only owners can change member roles."),
               **errors(404, "Member not found.")},
)

member_remove = extend_schema(
    operation_id="orgs_members_destroy", tags=ORGS, summary="Remove a member",
    description="Owners and admins remove others (only owners remove an owner); any member "
                "may remove themselves (leave). The last owner cannot be removed.",
    parameters=[SLUG, _USER_ID],
    responses={204: None,
               **errors(400, "The last owner cannot be removed; make another member an owner "
                             "first."),
               **errors(403, "Only owners and admins can remove members.",
                        "Only owners can remove an owner."),
               **errors(404, "Member not found.")},
)

_KEY_ID = uuid_path("key_id", "API key")
_KEY_403 = (NO_KEY_MANAGEMENT, NOT_KEY_MANAGER)

api_key_list = extend_schema(
    operation_id="api_keys_list", tags=KEYS, summary="List API keys",
    description="Newest first, revoked keys included (`is_active: false`). Owners and admins "
                "(JWT).",
    examples=[_response("Keys", API_KEY)],
    responses={200: ApiKeySerializer(many=True), **errors(403, *_KEY_403)},
)

api_key_create = extend_schema(
    operation_id="api_keys_create", tags=KEYS, summary="Create an API key",
    description="The response holds the full `key`, shown this once. Needs a plan with API "
                "access; the plan's `max_api_keys` counts active keys.",
    request=ApiKeyCreateSerializer,
    examples=[_request("Key", {"name": "CI", "expires_at": "2030-01-01T00:00:00Z"}),
              _response("Created", {**API_KEY_WITH_SECRET,
                                    "expires_at": "2030-01-01T00:00:00Z"})],
    responses={201: ApiKeyWithSecretSerializer,
               **errors(400, "name field is required.", "expires_at: must be in the future."),
               **errors(403, *_KEY_403, "Your plan does not include API access.",
                        "Your plan allows at most 1 active API key; revoke one or upgrade "
                        "your plan.")},
)

api_key_update = extend_schema(
    operation_id="api_keys_partial_update", tags=KEYS, summary="Update an API key",
    description="Change the expiry (`null`: never expires) or the name.",
    parameters=[_KEY_ID],
    request=ApiKeyUpdateSerializer,
    examples=[_request("Set expiry", {"expires_at": "2030-06-30T00:00:00Z"}),
              _request("Never expire", {"expires_at": None}),
              _response("Updated", {**API_KEY, "expires_at": "2030-06-30T00:00:00Z"})],
    responses={200: ApiKeySerializer,
               **errors(400, "expires_at: must be in the future."),
               **errors(403, *_KEY_403), **errors(404, KEY_NOT_FOUND)},
)

api_key_rotate = extend_schema(
    operation_id="api_keys_rotate", tags=KEYS, summary="Rotate an API key",
    description="A new secret for the same key (id, name and expiry kept); the old secret "
                "stops working at once. The response holds the new `key`, shown this once.",
    parameters=[_KEY_ID],
    request=None,
    examples=[_response("Rotated", API_KEY_WITH_SECRET)],
    responses={200: ApiKeyWithSecretSerializer,
               **errors(400, "This API key is revoked; revocation is permanent. Create a new "
                             "key."),
               **errors(403, *_KEY_403), **errors(404, KEY_NOT_FOUND)},
)

api_key_revoke = extend_schema(
    operation_id="api_keys_destroy", tags=KEYS, summary="Revoke an API key",
    description="Permanent and idempotent: revoking a revoked key is a 204 too.",
    parameters=[_KEY_ID],
    responses={204: None, **errors(403, *_KEY_403), **errors(404, KEY_NOT_FOUND)},
)
