from __future__ import annotations

from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import OrganizationScopedView, validated
from core.authentication import ApiKeyPrincipal, JWTAuthentication
from core.exceptions import Forbidden
from core.throttles import LoginIPRateThrottle
from organizations import schema, selectors, services
from organizations.models import Membership
from organizations.serializers import (
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    ApiKeyUpdateSerializer,
    InvitationAcceptSerializer,
    InvitationCreatedSerializer,
    InvitationSerializer,
    MemberAddSerializer,
    MemberRoleSerializer,
    MemberSerializer,
    MembershipSerializer,
    OrganizationCreateSerializer,
    OrganizationSerializer,
    OrganizationUpdateSerializer,
    api_key_body,
)


class OrganizationListView(OrganizationScopedView):
    @schema.organization_list
    def get(self, request: Request) -> Response:
        if isinstance(request.user, ApiKeyPrincipal):
            self.acting(request)  # a key whose plan lost API access gets the same 403 here
        organizations = selectors.organizations_visible_to(request.user)
        return Response(OrganizationSerializer(organizations, many=True).data)

    @schema.organization_create
    def post(self, request: Request) -> Response:
        if isinstance(request.user, ApiKeyPrincipal):
            raise Forbidden("API keys cannot create organizations; use a user's access token.")
        data = validated(OrganizationCreateSerializer, request.data)
        organization = services.organization_create(owner=request.user, **data)
        detail = selectors.organization_detail(organization, "owner")
        return Response(OrganizationSerializer(detail).data, status=status.HTTP_201_CREATED)


class OrganizationDetailView(OrganizationScopedView):
    @schema.organization_detail
    def get(self, request: Request, slug: str) -> Response:
        acting = self.acting(request, slug)
        detail = selectors.organization_detail(acting.organization, acting.role)
        return Response(OrganizationSerializer(detail).data)

    @schema.organization_update
    def patch(self, request: Request, slug: str) -> Response:
        acting = self.acting(request, slug)
        acting.require_manager("change organization settings")
        data = validated(OrganizationUpdateSerializer, request.data)
        services.organization_update(acting.organization, **data)
        detail = selectors.organization_detail(acting.organization, acting.role)
        return Response(OrganizationSerializer(detail).data)


class MemberListView(OrganizationScopedView):
    @schema.member_list
    def get(self, request: Request, slug: str) -> Response:
        acting = self.acting(request, slug)
        acting.require_user("list members")
        return Response(MemberSerializer(selectors.members_of(acting.organization), many=True).data)

    @schema.member_add
    def post(self, request: Request, slug: str) -> Response:
        acting = self.acting(request, slug)
        acting.require_manager("add members")
        data = validated(MemberAddSerializer, request.data)
        added = services.member_add(acting.organization, granted_by_role=acting.role,
                                    invited_by=acting.user, **data)
        serializer = MemberSerializer if isinstance(added, Membership) else \
            InvitationCreatedSerializer
        return Response(serializer(added).data, status=status.HTTP_201_CREATED)


class MemberDetailView(OrganizationScopedView):
    @schema.member_change_role
    def patch(self, request: Request, slug: str, user_id: str) -> Response:
        acting = self.acting(request, slug)
        acting.require_owner("change member roles")
        membership = services.member_get(acting.organization, user_id)
        data = validated(MemberRoleSerializer, request.data)
        membership = services.member_change_role(acting.organization, membership, data["role"])
        return Response(MemberSerializer(membership).data)

    @schema.member_remove
    def delete(self, request: Request, slug: str, user_id: str) -> Response:
        acting = self.acting(request, slug)
        acting.require_user("remove members")
        membership = services.member_get(acting.organization, user_id)
        services.member_remove(acting.organization, membership, acting_role=acting.role,
                               acting_user=acting.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationListView(OrganizationScopedView):
    @schema.invitation_list
    def get(self, request: Request, slug: str) -> Response:
        acting = self.acting(request, slug)
        acting.require_manager("manage invitations")
        invitations = services.invitations_of(acting.organization)
        return Response(InvitationSerializer(invitations, many=True).data)


class InvitationDetailView(OrganizationScopedView):
    @schema.invitation_revoke
    def delete(self, request: Request, slug: str, invitation_id: str) -> Response:
        acting = self.acting(request, slug)
        acting.require_manager("manage invitations")
        services.invitation_revoke(services.invitation_get(acting.organization, invitation_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationAcceptView(APIView):
    """Anyone holding the emailed token; with an access token of the invited email the
    existing account joins, without one a new account is created."""

    authentication_classes = [JWTAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [LoginIPRateThrottle]

    @schema.invitation_accept
    def post(self, request: Request) -> Response:
        data = validated(InvitationAcceptSerializer, request.data)
        membership = services.invitation_accept(data["token"], user=request.user,
                                                password=data.get("password"),
                                                name=data["name"])
        return Response(MembershipSerializer(membership).data)


class ApiKeyListView(OrganizationScopedView):
    @schema.api_key_list
    def get(self, request: Request) -> Response:
        acting = self.acting(request)
        acting.require_manager("manage API keys")
        return Response(ApiKeySerializer(selectors.api_keys_of(acting.organization), many=True).data)

    @schema.api_key_create
    def post(self, request: Request) -> Response:
        acting = self.acting(request)
        acting.require_manager("manage API keys")
        data = validated(ApiKeyCreateSerializer, request.data)
        key, raw = services.api_key_create(acting.organization, created_by=acting.user, **data)
        return Response(api_key_body(key, raw), status=status.HTTP_201_CREATED)


class ApiKeyDetailView(OrganizationScopedView):
    @schema.api_key_revoke
    def delete(self, request: Request, key_id: str) -> Response:
        acting = self.acting(request)
        acting.require_manager("manage API keys")
        services.api_key_revoke(services.api_key_get(acting.organization, key_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeyUpdateView(OrganizationScopedView):
    @schema.api_key_update
    def patch(self, request: Request, key_id: str) -> Response:
        acting = self.acting(request)
        acting.require_manager("manage API keys")
        key = services.api_key_get(acting.organization, key_id)
        data = validated(ApiKeyUpdateSerializer, request.data)
        return Response(api_key_body(services.api_key_update(key, data)))


class ApiKeyRotateView(OrganizationScopedView):
    @schema.api_key_rotate
    def post(self, request: Request, key_id: str) -> Response:
        acting = self.acting(request)
        acting.require_manager("manage API keys")
        key = services.api_key_get(acting.organization, key_id)
        raw = services.api_key_rotate(key)
        return Response(api_key_body(key, raw))
