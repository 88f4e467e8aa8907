"""The per-process memo of models, domains and categories (core.lookups) on the query path:
repeated queries skip those SELECTs, an ORM change is seen at once in this process, and a
change made elsewhere (no signal here) is seen once the entry is older than the TTL."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from assistant.models import AIModel
from core import lookups
from knowledge.models import Category, Domain
from tests.assistant.conftest import ask

LOOKUP_TABLES = ("assistant_aimodel", "knowledge_category", "knowledge_domain")


def lookup_statements(api):
    """The response to a query, and the statements it made that read a lookup table."""
    with CaptureQueriesContext(connection) as captured:
        response = ask(api)
    assert response.status_code == 200, response.content
    return response, [q["sql"] for q in captured.captured_queries
                      if any(f'FROM "{table}"' in q["sql"] for table in LOOKUP_TABLES)]


def test_second_query_reads_model_domain_and_category_from_memory(api):
    _, first = lookup_statements(api)
    assert len(first) == 2  # the default model; category joined with its domain
    response, second = lookup_statements(api)
    assert second == []
    assert response.json()["model"] == "extractive"


def test_saving_a_model_through_the_orm_is_seen_at_once(api):
    assert ask(api).status_code == 200
    model = AIModel.objects.get(pk="extractive")
    model.is_active = False
    model.save()  # admin and services save: the memo is emptied
    response = ask(api, model="extractive")
    assert response.status_code == 400
    assert response.json()["detail"] == ('model: unknown model "extractive". '
                                         "See GET /v1/models/.")


def test_deactivated_domain_is_seen_at_once(api):
    assert ask(api).status_code == 200
    domain = Domain.objects.get(slug="business-continuity")
    domain.is_active = False
    domain.save()
    response = ask(api)
    assert response.status_code == 404 and response.json() == {"detail": "Domain not found."}


def test_change_without_a_signal_is_seen_after_the_ttl(api, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(lookups, "_clock", lambda: clock[0])
    assert ask(api).status_code == 200
    # Another process renames the category: this process gets no signal.
    Category.objects.filter(domain__slug="business-continuity", code="us").update(code="usa")
    clock[0] += lookups.TTL_SECONDS - 0.5
    assert ask(api).status_code == 200  # still remembered
    clock[0] += 1.0
    response = ask(api)
    assert response.status_code == 404 and response.json() == {"detail": "Category not found."}
    assert ask(api, category="usa").status_code == 200


def test_failed_lookups_are_not_remembered(api):
    assert ask(api, domain="no-such-domain").status_code == 404
    Domain.objects.filter(slug="business-continuity").update(slug="no-such-domain")
    assert ask(api, domain="no-such-domain").status_code == 200
