"""POST /v1/query/ (API.md 7): every status of the error contract, with no credit spent on
any of them, and the answer itself: sources, markers, messages, charge."""

from __future__ import annotations

import re

import pytest

from assistant.models import AIModel, ChatSession, Message
from assistant.providers.base import ProviderError
from assistant.providers.extractive import ExtractiveProvider
from billing.models import LedgerEntry, Plan, Reservation
from knowledge.models import Document
from tests.assistant.conftest import ask, balance, set_balance

REQUIRED = {"query", "domain", "category", "mode"}


def test_answer_has_sources_markers_and_costs_one_credit(api, org):
    before = balance(org)
    response = ask(api)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) >= {"session_id", "message_id", "response", "sources", "suggestions",
                         "mode", "model", "insufficient_context", "credits_used",
                         "input_tokens", "output_tokens", "cost_usd", "retrieval_ms",
                         "generation_ms", "total_latency_ms"}
    assert body["model"] == "extractive" and body["mode"] == "compliance"
    assert body["insufficient_context"] is False and body["credits_used"] == 1
    assert body["sources"][0]["title"] == "Business Impact Analysis"
    assert body["sources"][0]["scope"] == "public"
    assert 0 <= body["sources"][0]["score"] <= 1
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", body["response"])}
    assert markers and markers <= set(range(1, len(body["sources"]) + 1))
    assert "once a year" in body["response"]
    assert len(body["suggestions"]) == 3
    assert balance(org) == before - 1
    reservation = Reservation.objects.get(organization=org)
    assert reservation.status == "settled" and str(reservation.message_id) == body["message_id"]
    charge = LedgerEntry.objects.get(organization=org, kind="query_charge")
    assert charge.model == "extractive" and charge.domain == "business-continuity"
    session = ChatSession.objects.get(pk=body["session_id"])
    assert session.title == "How often must we review the business impact analysis?"
    assert session.message_count == 2
    assistant = Message.objects.get(pk=body["message_id"])
    assert assistant.content == body["response"] and assistant.context_quality in (
        "high", "medium", "low")


def test_api_key_can_query(org, library, make_key, key_client):
    _, raw = make_key(org)
    response = ask(key_client(raw))
    assert response.status_code == 200
    assert LedgerEntry.objects.get(kind="query_charge").actor_api_key_id is not None


@pytest.mark.parametrize("field", ["query", "domain", "category", "mode"])
def test_missing_field_is_named(api, org, field):
    before = balance(org)
    body = {"query": "q?", "domain": "business-continuity", "category": "us",
            "mode": "compliance"}
    del body[field]
    response = api.post("/v1/query/", body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == f"{field} field is required."
    assert balance(org) == before


@pytest.mark.parametrize("extra, detail", [
    ({"mode": "fast"}, 'mode: "fast" is not a valid choice.'),
    ({"query": "   "}, "query: This field may not be blank."),
    ({"query": "x" * 4001}, "query: Ensure this field has no more than 4000 characters."),
    ({"max_sources": 0}, "max_sources: Ensure this value is greater than or equal to 1."),
    ({"max_sources": 21}, "max_sources: Ensure this value is less than or equal to 20."),
    ({"knowledge_scope": "everything"},
     'knowledge_scope: "everything" is not a valid choice.'),
    ({"session_id": "nope"}, "session_id: Must be a valid UUID."),
    ({"stream": "maybe"}, "stream: Must be a valid boolean."),
])
def test_invalid_field_is_named(api, org, extra, detail):
    before = balance(org)
    response = ask(api, **extra) if "query" not in extra else ask(api, **extra)
    assert response.status_code == 400
    assert response.json()["detail"] == detail
    assert balance(org) == before


def test_unknown_model_is_400_and_premium_model_is_403(api, org):
    before = balance(org)
    response = ask(api, model="gpt-imaginary")
    assert response.status_code == 400
    assert response.json()["detail"].startswith('model: unknown model "gpt-imaginary"')
    AIModel.objects.create(id="premium-x", name="Premium", provider="extractive",
                           tier="premium", credits_per_query=3)
    response = ask(api, model_id="premium-x")
    assert response.status_code == 403
    assert response.json()["detail"] == ('Your plan does not include the premium model '
                                         '"premium-x".')
    assert balance(org) == before


def test_private_scope_needs_an_active_knowledge_base(api, org):
    response = ask(api, knowledge_scope="private")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("knowledge_scope:")


def test_malformed_json_is_400(api, org):
    response = api.generic("POST", "/v1/query/", "{not json", content_type="application/json")
    assert response.status_code == 400 and "detail" in response.json()


def test_missing_credentials_bad_jwt_and_bad_key_are_401(client, library):
    response = ask(client)
    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication credentials were not provided."
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    response = ask(client)
    assert response.status_code == 401 and response.json()["code"] == "token_not_valid"
    client.credentials(HTTP_AUTHORIZATION="Bearer egret_live_nope")
    response = ask(client)
    assert response.status_code == 401
    assert response.json()["detail"] == ("Invalid or expired API key. Check that the key is "
                                         "active and has not expired.")


@pytest.mark.parametrize("domain, category, detail", [
    ("no-such-domain", "us", "Domain not found."),
    ("business-continuity", "zz", "Category not found."),
    ("privacy", "us", "Category not found."),
])
def test_unknown_domain_or_category_is_404(api, org, domain, category, detail):
    before = balance(org)
    response = ask(api, domain=domain, category=category)
    assert response.status_code == 404 and response.json()["detail"] == detail
    assert balance(org) == before


def test_unknown_and_foreign_sessions_are_404(api, org, make_user, make_org, jwt_client):
    response = ask(api, session_id="6f1f8a52-7c53-4d0c-8d5e-3f7d3b0d2a11")
    assert response.status_code == 404 and response.json()["detail"] == "Session not found."
    other_owner = make_user()
    other = make_org(other_owner, name="Other", slug="other")
    theirs = ask(jwt_client(other_owner, other)).json()["session_id"]
    before = balance(org)
    response = ask(api, session_id=theirs)
    assert response.status_code == 404 and response.json()["detail"] == "Session not found."
    assert balance(org) == before


def test_session_of_another_category_is_400(api, org):
    session_id = ask(api).json()["session_id"]
    before = balance(org)
    response = ask(api, session_id=session_id, category="sg")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("session_id: the session belongs to")
    assert balance(org) == before


def test_domain_outside_allowed_domains_is_403(api, org):
    org.allowed_domains = ["privacy"]
    org.save(update_fields=["allowed_domains"])
    before = balance(org)
    response = ask(api)
    assert response.status_code == 403
    assert response.json()["detail"] == "Your organization does not have access to this domain."
    assert balance(org) == before


def test_order_of_checks_400_before_404_before_403(api, org):
    org.allowed_domains = ["privacy"]
    org.save(update_fields=["allowed_domains"])
    assert ask(api, domain="nope", mode="fast").status_code == 400
    assert ask(api, domain="nope").status_code == 404
    assert ask(api).status_code == 403


def test_streaming_without_the_plan_feature_is_403(api, org):
    Plan.objects.filter(pk=org.plan_id).update(has_streaming=False)
    response = ask(api, stream=True)
    assert response.status_code == 403
    assert response.json()["detail"] == "Your plan does not include streaming."


def test_no_credits_is_402_and_spends_nothing(api, org):
    set_balance(org, 0)
    response = ask(api)
    assert response.status_code == 402
    assert response.json()["detail"] == ("Credit quota exhausted. Upgrade your plan or wait "
                                         "for your quota to reset.")
    assert not Reservation.objects.filter(organization=org).exists()


def test_balance_below_the_model_cost_is_402(api, org):
    AIModel.objects.create(id="costly", name="Costly", provider="extractive", tier="standard",
                           credits_per_query=3)
    set_balance(org, 2)
    response = ask(api, model="costly")
    assert response.status_code == 402
    assert balance(org) == 2 and not Message.objects.exists()


def test_provider_failure_is_500_and_refunded(api, org, monkeypatch):
    def broken(self, request):
        raise ProviderError("upstream said 529 overloaded")

    monkeypatch.setattr(ExtractiveProvider, "generate", broken)
    before = balance(org)
    response = ask(api)
    assert response.status_code == 500
    body = response.json()
    assert "retry" in body["detail"].lower() and body["request_id"]
    assert "529" not in body["detail"]
    assert balance(org) == before
    assert Reservation.objects.get(organization=org).status == "refunded"
    assert not Message.objects.exists() and not ChatSession.objects.exists()


def test_insufficient_context_costs_nothing(api, org):
    before = balance(org)
    response = ask(api, query="What is the best recipe for chocolate cake with raspberries?")
    assert response.status_code == 200
    body = response.json()
    assert body["insufficient_context"] is True and body["credits_used"] == 0
    assert body["sources"] == [] and "does not cover" in body["response"]
    assert balance(org) == before
    message = Message.objects.get(pk=body["message_id"])
    assert message.context_quality == "insufficient" and message.credits_used == 0


def test_auto_mode_returns_the_mode_it_chose(api, org):
    body = ask(api, mode="auto", query="What is the best way to approach our business "
                                       "impact analysis review?").json()
    assert body["mode"] in ("compliance", "advisory")
    from assistant.classifier import classify
    assert body["mode"] == classify("What is the best way to approach our business impact "
                                    "analysis review?")


def test_other_organizations_private_documents_never_come_back(api, org, make_user, make_org,
                                                               django_capture_on_commit_callbacks,
                                                               jwt_client):
    from django.core.files.uploadedfile import SimpleUploadedFile
    other_owner = make_user()
    other = make_org(other_owner, name="Other", slug="other")
    with django_capture_on_commit_callbacks(execute=True):
        response = jwt_client(other_owner, other).post("/v1/documents/", {
            "file": SimpleUploadedFile("secret.md", b"# Zephyr protocol\n\nThe zephyr "
                                       b"business impact analysis review happens weekly.")},
            format="multipart")
    assert response.status_code == 202
    assert Document.objects.get(organization=other).status == "ready"
    body = ask(api, query="zephyr business impact analysis review").json()
    assert all(source["scope"] == "public" for source in body["sources"])
    assert "weekly" not in body["response"]


def test_query_continuing_a_session_stays_within_20_sql_queries(
        org, library, make_key, key_client, django_assert_max_num_queries):
    _, raw = make_key(org)
    api = key_client(raw)
    session_id = ask(api).json()["session_id"]
    with django_assert_max_num_queries(20):
        response = ask(api, query="And how fast must Tier 1 functions recover?",
                       session_id=session_id)
    assert response.status_code == 200 and response.json()["credits_used"] == 1


def test_jwt_query_continuing_a_session_stays_within_20_sql_queries(
        api, org, django_assert_max_num_queries):
    session_id = ask(api).json()["session_id"]
    with django_assert_max_num_queries(20):
        response = ask(api, query="And how fast must Tier 1 functions recover?",
                       session_id=session_id)
    assert response.status_code == 200
