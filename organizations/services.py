"""Every write to organizations, memberships and API keys goes through these functions."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import urlsafe_base64_encode
from django.utils.text import slugify

from billing import services as billing_services
from billing.models import Plan
from core import keyformat
from core import services as account_services
from core.api import is_uuid
from core.emails import email_later, email_send
from core.exceptions import BadRequest, FieldError, Forbidden, NotFound
from core.models import User, normalize_email
from organizations.models import ApiKey, Invitation, Membership, Organization, Role

DEFAULT_PLAN = "free"
SLUG_MAX_LENGTH = 50


def _locked(organization: Organization) -> Organization:
    """Serialize writers that check a plan limit (PostgreSQL row lock; SQLite's IMMEDIATE
    transactions already serialize writers)."""
    return Organization.objects.select_for_update().select_related("plan").get(
        pk=organization.pk
    )


# --- Organizations ------------------------------------------------------------------------
def _derived_slugs(name: str):
    base = slugify(name)[: SLUG_MAX_LENGTH - 4].strip("-") or "org"
    yield base
    n = 2
    while True:
        yield f"{base}-{n}"
        n += 1


def organization_create(
    *, owner: User, name: str, slug: str | None = None, plan_slug: str = DEFAULT_PLAN
) -> Organization:
    """The creator becomes owner; the organization starts on `plan_slug` with its first
    period's credits granted."""
    plan = Plan.objects.get(slug=plan_slug)
    candidates = [slug] if slug else _derived_slugs(name)
    for candidate in candidates:
        if Organization.objects.filter(slug=candidate).exists():
            continue
        try:
            with transaction.atomic():
                organization = Organization.objects.create(slug=candidate, name=name, plan=plan)
                Membership.objects.create(organization=organization, user=owner, role=Role.OWNER)
                billing_services.account_open(organization)
                return organization
        except IntegrityError:
            continue  # another request took the slug between the check and the insert
    raise FieldError("slug", "an organization with this slug already exists.", code="unique")


def organization_create_by_operator(*, name: str, owner_email: str, slug: str | None = None,
                                    plan_slug: str = DEFAULT_PLAN) -> tuple[Organization, bool]:
    """Admin and `org_create`: the owner is created when the email is new (with no usable
    password) and then gets the set-password email, as does an existing owner who never set
    one. Returns the organization and whether the owner was created."""
    email = normalize_email(owner_email)
    with transaction.atomic():
        owner = User.objects.filter(email=email).first()
        created = owner is None
        if created:
            owner = User.objects.create_user(email)
        organization = organization_create(owner=owner, name=name, slug=slug,
                                           plan_slug=plan_slug)
        if not owner.has_usable_password():
            account_services.password_set_invite(owner, organization_name=organization.name)
    return organization, created


def organization_update(
    organization: Organization, *, name: str | None = None,
    allowed_domains: list[str] | None = None, credit_alert_thresholds: list[int] | None = None,
) -> Organization:
    fields = ["updated_at"]
    if credit_alert_thresholds is not None:
        organization.credit_alert_thresholds = credit_alert_thresholds
        fields.append("credit_alert_thresholds")
    if name is not None:
        organization.name = name
        fields.append("name")
    if allowed_domains is not None:
        organization.allowed_domains = allowed_domains
        fields.append("allowed_domains")
    organization.save(update_fields=fields)
    return organization


def organization_set_plan(organization: Organization, plan: Plan) -> Organization:
    organization.plan = plan
    organization.save(update_fields=["plan", "updated_at"])
    return organization


# --- Members ------------------------------------------------------------------------------
def _limit_reached(limit: int, used: int) -> bool:
    return limit != 0 and used >= limit


def _pending(invitations, now: datetime | None = None):
    return invitations.filter(accepted_at__isnull=True, revoked_at__isnull=True,
                              expires_at__gt=now or timezone.now())


def _require_room(organization: Organization, *, pending_invitations: bool = True) -> None:
    """Members plus pending invitations must stay within `max_members` (0: unlimited)."""
    limit = organization.max_members
    used = organization.memberships.count()
    if pending_invitations:
        used += _pending(organization.invitations).count()
    if _limit_reached(limit, used):
        raise Forbidden(f"Your plan allows at most {limit} member{'s' if limit != 1 else ''}; "
                        "upgrade your plan to add more.")


def member_add(organization: Organization, *, email: str, role: str, granted_by_role: str,
               invited_by: User | None = None) -> Membership | Invitation:
    """An existing user joins at once; an email with no account gets an invitation. The 400s
    about the email come before the 403s about the role and the plan (API.md 1)."""
    email = normalize_email(email)
    user = User.objects.filter(email=email).first()
    with transaction.atomic():
        organization = _locked(organization)
        if user is None:
            _require_no_pending_invitation(organization, email)
        elif organization.memberships.filter(user=user).exists():
            raise FieldError("email", "this user is already a member of the organization.",
                             code="unique")
        if role == Role.OWNER and granted_by_role != Role.OWNER:
            raise Forbidden("Only owners can grant the owner role.")
        if user is None:
            return _invite(organization, email=email, role=role, invited_by=invited_by)
        # Before the room check: the place an invitation of this email held is theirs.
        _invitations_close(organization, email, timezone.now())
        _require_room(organization)
        return Membership.objects.create(organization=organization, user=user, role=role)


# --- Invitations (API.md 14) -------------------------------------------------------------
def _invitation_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def invitation_token(invitation: Invitation, secret: str | None = None) -> str:
    """The token of the invitation's link: an HMAC of its id and random nonce keyed by
    SECRET_KEY (or `secret`), so the email task can derive it from the id alone and it is
    stored nowhere (the row keeps its digest)."""
    mac = salted_hmac("egret.invitation", f"{invitation.pk}:{invitation.nonce}",
                      secret=secret, algorithm="sha256")
    return urlsafe_base64_encode(mac.digest())


def _token_matches(invitation: Invitation, token: str) -> bool:
    """Compared in constant time with the token derived from the current key or a fallback
    one (SECRET_KEY_FALLBACKS, as reset links). An invitation made before tokens were derived
    has no nonce: its digest, which matched, is the check."""
    if not invitation.nonce:
        return True
    keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return any(constant_time_compare(invitation_token(invitation, key), token) for key in keys)


def _require_no_pending_invitation(organization: Organization, email: str) -> None:
    if _pending(organization.invitations.filter(email=email)).exists():
        raise FieldError("email", "an invitation to this email is already pending; revoke it "
                                  "to send a new one.", code="unique")


def _invitations_close(organization: Organization, email: str, now: datetime) -> None:
    """Someone who joined needs no other invitation to the organization, and a pending one
    would count a second place against max_members."""
    _pending(organization.invitations.filter(email=email), now).update(revoked_at=now)


def _invite(organization: Organization, *, email: str, role: str,
            invited_by: User | None) -> Invitation:
    """Called with the organization locked. The token exists only in the email, which the task
    sends with a token it derives (invitation_token)."""
    _require_room(organization)
    invitation = Invitation(
        organization=organization, email=email, role=role, invited_by=invited_by,
        nonce=secrets.token_urlsafe(32),
        expires_at=timezone.now() + timedelta(days=settings.EGRET_INVITATION_DAYS))
    invitation.digest = _invitation_digest(invitation_token(invitation))
    invitation.save(force_insert=True)
    from organizations.tasks import send_invitation_email  # it calls back into this module

    email_later(send_invitation_email, str(invitation.pk))
    return invitation


def invitation_email_send(invitation_id: str) -> None:
    """Run by the task: derives the token and sends the invitation, unless it was revoked,
    accepted or has expired since."""
    invitation = Invitation.objects.select_related("organization", "invited_by").filter(
        pk=invitation_id).first()
    if invitation is None or not invitation.is_pending():
        return
    inviter = invitation.invited_by
    query = urlencode({"token": invitation_token(invitation)})
    email_send(invitation.email, "invitation", {
        "email": invitation.email, "organization": invitation.organization.name,
        "role": invitation.role, "expires_at": invitation.expires_at,
        "inviter": (inviter.name or inviter.email) if inviter else "Egret",
        "link": f"{settings.EGRET_PUBLIC_APP_URL}/invitations/accept?{query}",
    })


def invitations_of(organization: Organization):
    """Invitations not yet accepted or revoked (expired ones included), newest first."""
    return organization.invitations.filter(accepted_at__isnull=True, revoked_at__isnull=True
                                           ).select_related("invited_by")


def invitation_get(organization: Organization, invitation_id: str) -> Invitation:
    """An invitation not yet accepted: an accepted one is no longer listed, and is not found
    either (remove the member instead)."""
    invitation = (organization.invitations.filter(pk=invitation_id, accepted_at__isnull=True)
                  .first() if is_uuid(invitation_id) else None)
    if invitation is None:
        raise NotFound("Invitation")
    return invitation


def invitation_revoke(invitation: Invitation) -> None:
    """Idempotent."""
    Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True,
                              revoked_at__isnull=True).update(revoked_at=timezone.now())


def _invited_account(invitation: Invitation, *, user: User | None, password: str | None,
                     name: str) -> User | None:
    """Checks who may accept: the invited email's own account (JWT), or nobody yet (a new
    account with `password`). Returns the user who joins, None when one is to be created."""
    if user is not None:
        if user.email != invitation.email:
            raise Forbidden("This invitation was sent to another email address.")
        return user
    if User.objects.filter(email=invitation.email).exists():
        raise FieldError("token", "the invited email already has an account; log in and accept "
                                  "the invitation with your access token.",
                         code="account_exists")
    if not password:
        raise FieldError("password", "This field is required.", code="required")
    account_services.password_validate(password, User(email=invitation.email, name=name),
                                       "password")
    return None


def invitation_accept(token: str, *, user: User | None, password: str | None = None,
                      name: str = "") -> Membership:
    invitation = Invitation.objects.select_related("organization").filter(
        digest=_invitation_digest(token)).first()
    if (invitation is None or not _token_matches(invitation, token)
            or not invitation.is_pending() or not invitation.organization.is_active):
        raise FieldError("token", account_services.INVALID_TOKEN)
    joining = _invited_account(invitation, user=user, password=password, name=name)
    now = timezone.now()
    with transaction.atomic():
        organization = _locked(invitation.organization)
        # Claimed by one conditional UPDATE: of two concurrent accepts, one joins.
        if not _pending(Invitation.objects.filter(pk=invitation.pk), now).update(accepted_at=now):
            raise FieldError("token", account_services.INVALID_TOKEN)
        _invitations_close(organization, invitation.email, now)
        if joining is None:
            joining = User.objects.create_user(invitation.email, password, name=name)
        membership = organization.memberships.filter(user=joining).first()
        if membership is None:
            _require_room(organization, pending_invitations=False)
            membership = Membership.objects.create(organization=organization, user=joining,
                                                   role=invitation.role)
    return membership


def _member(organization: Organization, user_id: str) -> Membership:
    membership = (
        organization.memberships.select_related("user").filter(user_id=user_id).first()
        if is_uuid(user_id) else None
    )
    if membership is None:
        raise NotFound("Member")
    return membership


def member_get(organization: Organization, user_id: str) -> Membership:
    return _member(organization, user_id)


def _other_owners(organization: Organization, membership: Membership) -> int:
    return organization.memberships.filter(role=Role.OWNER).exclude(pk=membership.pk).count()


def member_change_role(organization: Organization, membership: Membership, role: str) -> Membership:
    with transaction.atomic():
        _locked(organization)
        membership.refresh_from_db()
        if membership.role == Role.OWNER and role != Role.OWNER and not _other_owners(
            organization, membership
        ):
            raise BadRequest("The last owner cannot be demoted; make another member an owner first.")
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def member_remove(organization: Organization, membership: Membership, *, acting_role: str,
                  acting_user: User) -> None:
    leaving = membership.user_id == acting_user.pk
    if not leaving:
        if acting_role not in (Role.OWNER, Role.ADMIN):
            raise Forbidden("Only owners and admins can remove members.")
        if membership.role == Role.OWNER and acting_role != Role.OWNER:
            raise Forbidden("Only owners can remove an owner.")
    with transaction.atomic():
        _locked(organization)
        membership.refresh_from_db()
        if membership.role == Role.OWNER and not _other_owners(organization, membership):
            raise BadRequest("The last owner cannot be removed; make another member an owner first.")
        membership.delete()


# --- API keys -----------------------------------------------------------------------------
def _validate_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= timezone.now():
        raise FieldError("expires_at", "must be in the future.")


def api_key_create(
    organization: Organization, *, name: str, created_by: User | None,
    expires_at: datetime | None = None, enforce_plan: bool = True,
) -> tuple[ApiKey, str]:
    """Returns the key and its raw secret, which exists only in this return value."""
    _validate_expiry(expires_at)
    with transaction.atomic():
        organization = _locked(organization)
        if enforce_plan:
            if not organization.plan.has_api_access:
                raise Forbidden("Your plan does not include API access.")
            limit = organization.max_api_keys
            now = timezone.now()
            active = organization.api_keys.filter(revoked_at__isnull=True).exclude(
                expires_at__lte=now
            ).count()
            if _limit_reached(limit, active):
                raise Forbidden(
                    f"Your plan allows at most {limit} active API key{'s' if limit != 1 else ''}; "
                    "revoke one or upgrade your plan."
                )
        raw = keyformat.generate()
        key = ApiKey.objects.create(
            organization=organization, name=name, created_by=created_by,
            expires_at=expires_at, key_prefix=keyformat.display_prefix(raw),
            digest=keyformat.digest(raw),
        )
    return key, raw


def api_key_get(organization: Organization, key_id: str) -> ApiKey:
    key = (
        organization.api_keys.select_related("created_by").filter(pk=key_id).first()
        if is_uuid(key_id) else None
    )
    if key is None:
        raise NotFound("API key")
    return key


def api_key_rotate(key: ApiKey) -> str:
    """New secret, same id, name and expiry; the old secret stops working at once."""
    if key.revoked_at is not None:
        raise BadRequest("This API key is revoked; revocation is permanent. Create a new key.")
    raw = keyformat.generate()
    key.key_prefix = keyformat.display_prefix(raw)
    key.digest = keyformat.digest(raw)
    key.save(update_fields=["key_prefix", "digest"])
    return raw


def api_key_revoke(key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        key.refresh_from_db(fields=["revoked_at"])
    return key


def api_key_update(key: ApiKey, changes: dict) -> ApiKey:
    if "expires_at" in changes:
        _validate_expiry(changes["expires_at"])
        key.expires_at = changes["expires_at"]
    if "name" in changes:
        key.name = changes["name"]
    key.save(update_fields=["expires_at", "name"])
    return key
