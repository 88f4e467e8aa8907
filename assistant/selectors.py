"""Reads for the assistant, always scoped to the acting organization."""

from __future__ import annotations

from django.db.models import QuerySet

from assistant.models import AIModel, ChatSession, Comparison, Message
from core import lookups
from core.api import is_uuid
from core.exceptions import FieldError, NotFound
from knowledge.models import Category, Domain

HISTORY_TURNS = 6  # earlier messages given to the generator


def models_active() -> QuerySet[AIModel]:
    return AIModel.objects.filter(is_active=True)


def model_get(model_id: str | None) -> AIModel:
    """The named active model, or the default; unknown is a 400 (API.md 7). Read through the
    per-process memo of core.lookups: this runs on every query."""
    return lookups.remembered(("assistant.model", model_id or None),
                              lambda: _model_load(model_id))


def _model_load(model_id: str | None) -> AIModel:
    if model_id:
        model = models_active().filter(pk=model_id).first()
        if model is None:
            raise FieldError("model", f"unknown model \"{model_id}\". See GET /v1/models/.")
        return model
    model = models_active().filter(is_default=True).first() or models_active().first()
    if model is None:
        raise FieldError("model", "no model is available; ask the operator to add one.")
    return model


def domain_category_get(domain_slug: str, category_code: str) -> tuple[Domain, Category]:
    """One query for both, remembered per process (core.lookups); 404 names which one is
    missing."""
    return lookups.remembered(("assistant.domain_category", domain_slug, category_code),
                              lambda: _domain_category_load(domain_slug, category_code))


def _domain_category_load(domain_slug: str, category_code: str) -> tuple[Domain, Category]:
    category = (Category.objects.select_related("domain")
                .filter(domain__slug=domain_slug, domain__is_active=True, code=category_code)
                .first())
    if category is not None:
        return category.domain, category
    if not Domain.objects.filter(slug=domain_slug, is_active=True).exists():
        raise NotFound("Domain")
    raise NotFound("Category")


def sessions_of(organization) -> QuerySet[ChatSession]:
    return (ChatSession.objects.filter(organization=organization)
            .select_related("domain", "category"))


def session_get(organization, session_id) -> ChatSession:
    if session_id is None or not is_uuid(str(session_id)):
        raise NotFound("Session")
    session = sessions_of(organization).filter(pk=session_id).first()
    if session is None:
        raise NotFound("Session")
    return session


def sessions_recent(organization, limit: int) -> list[ChatSession]:
    return list(sessions_of(organization).order_by("-last_activity_at", "-created_at")[:limit])


def messages_of(session: ChatSession) -> QuerySet[Message]:
    return Message.objects.filter(session=session).order_by("created_at", "-sender")


def history_of(session: ChatSession | None) -> list[Message]:
    if session is None:
        return []
    recent = list(Message.objects.filter(session=session)
                  .order_by("-created_at", "sender")
                  .only("sender", "content", "created_at")[:HISTORY_TURNS])
    return recent[::-1]


def comparisons_of(organization) -> QuerySet[Comparison]:
    return Comparison.objects.filter(organization=organization).select_related("domain")


def comparison_get(organization, comparison_id) -> Comparison:
    if comparison_id is None or not is_uuid(str(comparison_id)):
        raise NotFound("Comparison")
    comparison = comparisons_of(organization).filter(pk=comparison_id).first()
    if comparison is None:
        raise NotFound("Comparison")
    return comparison
