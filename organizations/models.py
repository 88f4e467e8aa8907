from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


MANAGER_ROLES = frozenset({Role.OWNER, Role.ADMIN})


def default_credit_alert_thresholds() -> list[int]:
    return [80, 95]


class Organization(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    plan = models.ForeignKey("billing.Plan", on_delete=models.PROTECT, related_name="+")
    # Domain slugs this organization may query; empty means every domain.
    allowed_domains = models.JSONField(default=list, blank=True)
    # Percentages of the period's granted credits at which a credits.threshold_reached
    # event fires (API.md 13): 1-100, at most 5, sorted.
    credit_alert_thresholds = models.JSONField(default=default_credit_alert_thresholds,
                                               blank=True)
    is_active = models.BooleanField(default=True)
    # Per-organization limits set by operators (enterprise); null means "use the plan's".
    max_api_keys_override = models.PositiveIntegerField(null=True, blank=True)
    max_members_override = models.PositiveIntegerField(null=True, blank=True)
    max_documents_override = models.PositiveIntegerField(null=True, blank=True)
    max_storage_gb_override = models.DecimalField(max_digits=10, decimal_places=2, null=True,
                                                  blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.slug

    # Effective limits: 0 means unlimited (API.md 5.1).
    @property
    def max_api_keys(self) -> int:
        return _pick(self.max_api_keys_override, self.plan.max_api_keys)

    @property
    def max_members(self) -> int:
        return _pick(self.max_members_override, self.plan.max_members)

    @property
    def max_documents(self) -> int:
        return _pick(self.max_documents_override, self.plan.max_documents)

    @property
    def max_storage_bytes(self) -> int:
        gb = _pick(self.max_storage_gb_override, self.plan.max_storage_gb)
        return int(gb * 1024**3)


def _pick(override, plan_value):
    return plan_value if override is None else override


class Membership(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["joined_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="membership_unique")
        ]
        indexes = [models.Index(fields=["user", "joined_at"])]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class ApiKey(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="api_keys")
    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=20, db_index=True)
    # SHA-256 of the whole key; the raw key is never stored.
    digest = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired()


class Invitation(models.Model):
    """An invitation to join an organization, sent to an email that has no account yet
    (API.md 14). Its token is an HMAC (keyed by SECRET_KEY) of its id and `nonce`, derived
    again when the email is sent (organizations.services.invitation_token); only a SHA-256
    digest of it is stored. It is pending until accepted, revoked or expired, and pending
    invitations count against `max_members`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    digest = models.CharField(max_length=64, unique=True)
    # Random; with SECRET_KEY it makes the token. Empty on invitations made before tokens were
    # derived (their random token was emailed and exists nowhere else).
    nonce = models.CharField(max_length=64, blank=True, default="")
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "email"])]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization} ({self.role})"

    def is_pending(self, now: datetime | None = None) -> bool:
        return (self.accepted_at is None and self.revoked_at is None
                and self.expires_at > (now or timezone.now()))
