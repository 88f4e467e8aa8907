"""Which organization a request acts in, and with which role (API.md 2.1, 2.2).

Every organization-scoped view goes through `acting_context`, so tenant filtering is decided
in one place: a JWT user acts in the organization named by `X-Organization` (or by the URL),
else in their default one (the first they joined); an API key acts only in its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework.request import Request

from core.authentication import ApiKeyPrincipal
from core.exceptions import Forbidden, NotFound
from organizations.models import MANAGER_ROLES, Membership, Organization, Role

API_KEY_ROLE = "api_key"
NO_ORGANIZATION = (
    "You are not a member of any organization. Create one with POST /v1/orgs/ "
    "or ask an owner to add you."
)
NO_API_ACCESS = "Your plan does not include API access."


@dataclass
class Acting:
    organization: Organization
    role: str  # owner | admin | member | api_key
    principal: object

    @property
    def is_api_key(self) -> bool:
        return self.role == API_KEY_ROLE

    @property
    def api_key(self):
        return self.principal.api_key if self.is_api_key else None

    @property
    def user(self):
        return None if self.is_api_key else self.principal

    def require_user(self, what: str) -> None:
        if self.is_api_key:
            raise Forbidden(f"API keys cannot {what}; use a user's access token.")

    def require_manager(self, what: str) -> None:
        self.require_user(what)
        if self.role not in MANAGER_ROLES:
            raise Forbidden(f"Only owners and admins can {what}.")

    def require_owner(self, what: str) -> None:
        self.require_user(what)
        if self.role != Role.OWNER:
            raise Forbidden(f"Only owners can {what}.")


def acting_context(request: Request, slug: str | None = None) -> Acting:
    """Resolve once per request; `slug` is the organization named in the URL, if any."""
    cached = getattr(request, "_egret_acting", None)
    if cached is not None and (slug is None or cached.organization.slug == slug):
        return cached
    acting = _resolve(request, slug)
    request._egret_acting = acting
    # On the HttpRequest too: the request's log line (core.middleware) names the organization.
    getattr(request, "_request", request)._egret_acting = acting
    return acting


def _resolve(request: Request, slug: str | None) -> Acting:
    principal = request.user
    if isinstance(principal, ApiKeyPrincipal):
        organization = principal.organization
        if slug is not None and slug != organization.slug:
            raise NotFound("Organization")
        if not organization.plan.has_api_access:
            raise Forbidden(NO_API_ACCESS)
        return Acting(organization, API_KEY_ROLE, principal)

    wanted = slug or request.headers.get("X-Organization", "").strip() or None
    memberships = Membership.objects.select_related(
        "organization__plan", "organization__subscription", "organization__credit_account"
    ).filter(
        user=principal, organization__is_active=True
    )
    if wanted is not None:
        membership = memberships.filter(organization__slug=wanted).first()
        if membership is None:
            raise NotFound("Organization")
    else:
        membership = memberships.order_by("joined_at").first()
        if membership is None:
            raise Forbidden(NO_ORGANIZATION)
    return Acting(membership.organization, membership.role, principal)

