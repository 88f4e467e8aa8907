from __future__ import annotations

from decimal import Decimal

from django.db import models


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
