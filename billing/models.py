from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone


class Plan(models.Model):
    class ModelTier(models.TextChoices):
        STANDARD = "standard"
        PREMIUM = "premium"
        ENTERPRISE = "enterprise"

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    tier = models.SlugField()
    sort_order = models.PositiveSmallIntegerField(default=0)
    price_monthly_usd = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    monthly_credits = models.PositiveIntegerField(default=0)
    model_tier = models.CharField(max_length=20, choices=ModelTier.choices,
                                  default=ModelTier.STANDARD)
    # For limits, 0 means "set per organization by the operator" (unlimited without an override).
    max_api_keys = models.PositiveIntegerField(default=0)
    max_storage_gb = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    max_documents = models.PositiveIntegerField(default=0)
    max_members = models.PositiveIntegerField(default=0)
    has_api_access = models.BooleanField(default=False)
    has_streaming = models.BooleanField(default=True)
    has_export = models.BooleanField(default=False)
    has_cross_category_compare = models.BooleanField(default=False)
    has_custom_documents = models.BooleanField(default=False)

    class Meta:
        ordering = ["sort_order", "slug"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_enterprise(self) -> bool:
        return self.tier == "enterprise"


class Subscription(models.Model):
    """The organization's billing period. The plan itself is `Organization.plan` (one place);
    the subscription says when the current period runs and what an enterprise gets."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        CANCELED = "canceled"

    organization = models.OneToOneField("organizations.Organization", on_delete=models.CASCADE,
                                        related_name="subscription")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    # Periods are whole months from the anchor (day clamped to the month's length).
    anchor = models.DateTimeField()
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    # Enterprise: the monthly allowance agreed with the customer (null = the plan's).
    monthly_credits_override = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.organization} {self.current_period_start:%Y-%m-%d}..{self.current_period_end:%Y-%m-%d}"

    def monthly_credits(self, plan: Plan) -> int:
        if self.monthly_credits_override is not None:
            return self.monthly_credits_override
        return plan.monthly_credits


class CreditAccount(models.Model):
    """One per organization. Only `billing.services` writes `balance`, always with a ledger
    entry in the same transaction."""

    organization = models.OneToOneField("organizations.Organization", on_delete=models.CASCADE,
                                        related_name="credit_account")
    balance = models.BigIntegerField(default=0)
    # The billing period the balance belongs to; moved by the rollover under the row lock, so
    # every ledger entry is tagged with the right period atomically with its balance change.
    period_start = models.DateTimeField()
    # The current period's figures (API.md 5.3), moved by the same statement as the balance so
    # the subscription endpoint reads them instead of summing the period's ledger;
    # `manage.py billing_verify` recomputes them from the ledger.
    period_granted = models.BigIntegerField(default=0)
    period_used = models.BigIntegerField(default=0)
    period_reserved = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(balance__gte=0),
                                   name="credit_balance_not_negative"),
            models.CheckConstraint(condition=models.Q(period_granted__gte=0),
                                   name="credit_period_granted_not_negative"),
            models.CheckConstraint(condition=models.Q(period_used__gte=0),
                                   name="credit_period_used_not_negative"),
            models.CheckConstraint(condition=models.Q(period_reserved__gte=0),
                                   name="credit_period_reserved_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.organization}: {self.balance}"


class Reservation(models.Model):
    """Credits held for one request. Moves once: reserved -> settled | refunded."""

    class Status(models.TextChoices):
        RESERVED = "reserved"
        SETTLED = "settled"
        REFUNDED = "refunded"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No database FK constraint (see LedgerEntry.organization).
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                     related_name="reservations", db_constraint=False)
    amount = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RESERVED)
    period_start = models.DateTimeField()
    session_id = models.UUIDField(null=True, blank=True)
    message_id = models.UUIDField(null=True, blank=True)
    # The cross-category comparison (assistant.Comparison) the credits were held for.
    comparison_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "created_at"], name="reservation_open_idx",
                         condition=models.Q(status="reserved")),
        ]


class LedgerEntry(models.Model):
    """Append-only: one row per change of balance; the balance is the sum of the amounts."""

    class Kind(models.TextChoices):
        MONTHLY_GRANT = "monthly_grant"
        TOP_UP = "top_up"
        ADJUSTMENT = "adjustment"
        EXPIRY = "expiry"
        QUERY_CHARGE = "query_charge"
        REFUND = "refund"

    id = models.BigAutoField(primary_key=True)
    # No database FK constraint and no single-column index: every reservation inserts a
    # ledger entry and a reservation while it holds the account's row lock, and each FK check
    # would take a KEY SHARE lock on the organization row (a MultiXact once several requests
    # overlap). The organization id is copied from the credit account row by the same
    # statement, organizations are deactivated rather than deleted, and a deletion cascades in
    # Django; the composite indexes below start with the organization (docs/benchmarks.md).
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                     related_name="ledger_entries", db_constraint=False,
                                     db_index=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    amount = models.BigIntegerField()
    balance_after = models.BigIntegerField()
    # The billing period this entry belongs to (an expiry belongs to the period it closes).
    period_start = models.DateTimeField()
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    actor_api_key = models.ForeignKey("organizations.ApiKey", on_delete=models.SET_NULL,
                                      null=True, blank=True, related_name="+")
    reservation = models.ForeignKey(Reservation, on_delete=models.PROTECT, null=True,
                                    blank=True, related_name="entries")
    session_id = models.UUIDField(null=True, blank=True)
    message_id = models.UUIDField(null=True, blank=True)
    comparison_id = models.UUIDField(null=True, blank=True)
    model = models.CharField(max_length=100, blank=True)
    domain = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    memo = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["organization", "period_start", "kind"]),
                   models.Index(fields=["organization", "-created_at", "-id"])]
        constraints = [
            # Rollover happens once per period, whatever races (the lock is the first guard).
            models.UniqueConstraint(
                fields=["organization", "period_start", "kind"],
                condition=models.Q(kind__in=["monthly_grant", "expiry"]),
                name="ledger_one_rollover_entry_per_period",
            ),
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="ledger_idempotency_key_unique",
            ),
        ]


class IdempotencyRecord(models.Model):
    """The stored outcome of a POST made with an `Idempotency-Key` (kept 24 hours)."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                     related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=20, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="idempotency_unique_key")
        ]
        indexes = [models.Index(fields=["expires_at"])]
