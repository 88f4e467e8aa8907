from __future__ import annotations

import uuid

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from billing.models import Plan

TIER_RANK = {Plan.ModelTier.STANDARD: 0, Plan.ModelTier.PREMIUM: 1, Plan.ModelTier.ENTERPRISE: 2}


class AIModel(models.Model):
    """A generation model clients can pick (API.md 6); rows are managed by operators."""

    class Provider(models.TextChoices):
        EXTRACTIVE = "extractive", "Extractive (built in, offline)"
        ANTHROPIC = "anthropic", "Anthropic (API or Bedrock)"
        OPENAI = "openai", "OpenAI-compatible"

    id = models.SlugField(primary_key=True, max_length=100,
                          help_text="The id clients send as `model`.")
    name = models.CharField(max_length=200)
    provider = models.CharField(max_length=20, choices=Provider.choices)
    provider_model = models.CharField(
        max_length=200, blank=True,
        help_text="The provider's model name, e.g. claude-sonnet-4-5, gpt-4o-mini, or a "
                  "Bedrock id like us.anthropic.claude-3-5-haiku-20241022-v1:0.")
    tier = models.CharField(max_length=20, choices=Plan.ModelTier.choices,
                            default=Plan.ModelTier.STANDARD)
    credits_per_query = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    is_default = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    options = models.JSONField(
        default=dict, blank=True,
        help_text='Provider options, e.g. {"max_tokens": 1024, "temperature": 0.2}, '
                  '{"platform": "bedrock"} or {"base_url": "http://localhost:11434/v1"}.')
    input_usd_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, default=0,
                                             help_text="USD per million input tokens.")
    output_usd_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, default=0,
                                              help_text="USD per million output tokens.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-is_default", "credits_per_query", "id"]
        verbose_name = "AI model"
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True),
                                    name="one_default_model"),
            models.CheckConstraint(condition=models.Q(credits_per_query__gte=1),
                                   name="model_costs_at_least_one_credit"),
        ]

    def __str__(self) -> str:
        return self.id

    def available_to(self, plan: Plan) -> bool:
        return TIER_RANK.get(self.tier, 99) <= TIER_RANK.get(plan.model_tier, -1)

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        cost = (float(self.input_usd_per_mtok) * input_tokens
                + float(self.output_usd_per_mtok) * output_tokens) / 1_000_000
        return round(cost, 6)


class ChatSession(models.Model):
    """A conversation in one domain/category (API.md 8)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                     related_name="sessions")
    domain = models.ForeignKey("knowledge.Domain", on_delete=models.PROTECT, related_name="+")
    category = models.ForeignKey("knowledge.Category", on_delete=models.PROTECT,
                                 related_name="+")
    title = models.CharField(max_length=200)
    created_by = models.ForeignKey("core.User", on_delete=models.SET_NULL, null=True,
                                   blank=True, related_name="+")
    api_key = models.ForeignKey("organizations.ApiKey", on_delete=models.SET_NULL, null=True,
                                blank=True, related_name="+")
    message_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["organization", "-last_activity_at"])]

    def __str__(self) -> str:
        return self.title


class Message(models.Model):
    """One turn. Written only once the answer is complete, so a request that dies halfway
    leaves no partial message behind."""

    class Sender(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    class Quality(models.TextChoices):
        HIGH = "high"
        MEDIUM = "medium"
        LOW = "low"
        INSUFFICIENT = "insufficient"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="messages")
    sender = models.CharField(max_length=10, choices=Sender.choices)
    content = models.TextField()
    mode = models.CharField(max_length=20, blank=True)
    model = models.CharField(max_length=100, blank=True)
    sources = models.JSONField(default=list, blank=True)
    suggestions = models.JSONField(default=list, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    credits_used = models.PositiveIntegerField(default=0)
    context_quality = models.CharField(max_length=20, choices=Quality.choices, null=True,
                                       blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "-sender"]  # a question before its answer at the same instant
        indexes = [models.Index(fields=["session", "created_at"])]

    def __str__(self) -> str:
        return f"{self.sender}: {self.content[:60]}"


class Comparison(models.Model):
    """One question answered for several categories of a domain side by side (API.md 12).
    Written once, when every answer and the comparison are complete; `GET /v1/compare/{id}/`
    returns `response` again."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                     related_name="comparisons")
    domain = models.ForeignKey("knowledge.Domain", on_delete=models.PROTECT, related_name="+")
    categories = models.JSONField(default=list, help_text="Category codes, in request order.")
    query = models.TextField()
    mode = models.CharField(max_length=20, blank=True)
    model = models.CharField(max_length=100, blank=True)
    response = models.JSONField(default=dict, help_text="The response body, as first sent.")
    credits_used = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey("core.User", on_delete=models.SET_NULL, null=True,
                                   blank=True, related_name="+")
    api_key = models.ForeignKey("organizations.ApiKey", on_delete=models.SET_NULL, null=True,
                                blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at", "-id"])]

    def __str__(self) -> str:
        return self.query[:80]
