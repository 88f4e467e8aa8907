"""POST /v1/compare/ (API.md 12): every status of the error contract with its exact body and
no credit spent, the comparison itself (answers as /v1/query/ gives them, a table citing
[code:n]), the one reservation and its partial refund, streaming, idempotency, and the
stored comparisons."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from assistant.comparing import LABELLED, table_rows
from assistant.models import AIModel, ChatSession, Comparison, Message
from assistant.providers.base import ProviderError
from assistant.providers.extractive import ExtractiveProvider
from billing import services as billing
from billing.models import IdempotencyRecord, LedgerEntry, Plan, Reservation
from tests.assistant.conftest import balance, set_balance

QUESTION = "How often must the plan be reviewed or tested, and who approves it?"
CREDITS_EXHAUSTED = "Credit quota exhausted. Upgrade your plan or wait for your quota to reset."
NO_COMPARE = "Your plan does not include cross-category comparison."


def compare(api, query=QUESTION, headers=None, **fields):
    body = {"query": query, "domain": "business-continuity", "categories": ["us", "sg"],
            "mode": "compliance", **fields}
    return api.post("/v1/compare/", body, format="json", **(headers or {}))


def on_plan(org, slug: str, credits: int = 100) -> None:
    """The plan is set explicitly (the demo organization's default plan is not relied on)."""
    billing.plan_change(org, Plan.objects.get(slug=slug))
    org.refresh_from_db()
    set_balance(org, credits)


@pytest.fixture
def pro(org, library):
    on_plan(org, "professional")
    return org


def markers_valid(answer: dict) -> bool:
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", answer["response"])}
    return numbers <= set(range(1, len(answer["sources"]) + 1))


# --- The comparison -----------------------------------------------------------------------------
def test_comparison_answers_each_category_and_cites_code_markers(api, pro):
    response = compare(api)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"comparison_id", "query", "domain", "mode", "model", "answers",
                         "comparison", "credits_used", "input_tokens", "output_tokens",
                         "cost_usd", "total_latency_ms"}
    assert [a["category"] for a in body["answers"]] == ["us", "sg"]
    assert [a["category_name"] for a in body["answers"]] == ["US", "SG"]
    for answer in body["answers"]:
        assert answer["insufficient_context"] is False and answer["credits_used"] == 1
        assert answer["sources"] and markers_valid(answer)
        assert re.search(r"\[\d+\]", answer["response"])
    assert body["credits_used"] == 2 and balance(pro) == 98
    sources = {a["category"]: len(a["sources"]) for a in body["answers"]}
    labels = LABELLED.findall(body["comparison"])
    assert labels and all(1 <= int(n) <= sources[code] for code, n in labels)
    rows = table_rows(body["comparison"], ["us", "sg"])
    assert rows
    for row in rows:  # each cell cites its own category
        for code, cell in row.items():
            assert {c for c, _ in LABELLED.findall(cell)} == {code}
    # "annually" (sg) and "every year" (us) are the same frequency; the roles differ.
    assert "| How often | **every year**" in body["comparison"]
    assert "**annually**" in body["comparison"] and "| Agree |" in body["comparison"]
    assert not ChatSession.objects.exists() and not Message.objects.exists()


def test_the_answers_are_those_of_the_query_endpoint(api, pro):
    body = compare(api).json()
    for answer in body["answers"]:
        alone = api.post("/v1/query/", {"query": QUESTION, "domain": "business-continuity",
                                        "category": answer["category"],
                                        "mode": "compliance"}, format="json").json()
        assert answer["response"] == alone["response"]
        assert [s["id"] for s in answer["sources"]] == [s["id"] for s in alone["sources"]]


def test_one_reservation_and_the_ledger_reference_the_comparison(api, pro):
    body = compare(api).json()
    reservation = Reservation.objects.get(organization=pro)
    assert str(reservation.comparison_id) == body["comparison_id"]
    assert reservation.amount == 2 and reservation.status == "settled"
    charge = LedgerEntry.objects.get(organization=pro, kind="query_charge")
    assert (charge.amount, str(charge.comparison_id)) == (-2, body["comparison_id"])
    assert charge.domain == "business-continuity" and charge.model == "extractive"
    stored = Comparison.objects.get(pk=body["comparison_id"])
    assert stored.response == body and stored.credits_used == 2
    assert stored.categories == ["us", "sg"]
    ledger = api.get("/v1/billings/ledger/").json()["results"]
    assert ledger[0]["comparison_id"] == body["comparison_id"]
    usage = api.get("/v1/billings/usage/?group_by=domain").json()
    assert usage["rows"] == [{"key": "business-continuity", "credits": 2, "queries": 1}]


def test_a_category_without_grounded_answer_is_refunded_its_share(api, pro):
    response = compare(api, query="How long must test plans and after-action reports be kept?")
    body = response.json()
    us, sg = body["answers"]
    assert us["insufficient_context"] is False and us["credits_used"] == 1
    assert sg["insufficient_context"] is True and sg["credits_used"] == 0
    assert sg["sources"] == [] and "does not cover" in sg["response"]
    assert body["credits_used"] == 1 and balance(pro) == 99
    assert "nothing to compare" in body["comparison"] and not LABELLED.findall(
        body["comparison"])
    entries = LedgerEntry.objects.filter(organization=pro).exclude(kind="adjustment")
    assert sorted((e.kind, e.amount, e.memo) for e in entries if e.kind != "monthly_grant") == [
        ("query_charge", -2, ""), ("refund", 1, "insufficient context: sg")]
    assert {str(e.comparison_id) for e in entries if e.kind != "monthly_grant"} == {
        body["comparison_id"]}


def test_no_category_answered_costs_nothing(api, pro):
    body = compare(api, query="What is the best recipe for chocolate cake with raspberries?"
                   ).json()
    assert body["credits_used"] == 0 and balance(pro) == 100
    assert all(a["insufficient_context"] for a in body["answers"])
    assert Reservation.objects.get(organization=pro).status == "refunded"


def test_stored_comparison_is_returned_again_without_charge(api, pro,
                                                            django_assert_max_num_queries):
    body = compare(api).json()
    with django_assert_max_num_queries(8):
        again = api.get(f"/v1/compare/{body['comparison_id']}/")
    assert again.status_code == 200 and again.json() == body
    assert balance(pro) == 98


def test_comparisons_are_listed_newest_first_and_paginated(api, pro,
                                                          django_assert_max_num_queries):
    first = compare(api).json()["comparison_id"]
    second = compare(api, query="How long must test plans be kept?").json()["comparison_id"]
    with django_assert_max_num_queries(8):
        page = api.get("/v1/compare/?limit=1").json()
    assert [c["comparison_id"] for c in page["results"]] == [second]
    assert set(page["results"][0]) == {"comparison_id", "query", "domain", "categories",
                                       "mode", "model", "credits_used", "created_at"}
    rest = api.get(page["next"]).json()
    assert [c["comparison_id"] for c in rest["results"]] == [first]


def test_another_organizations_comparison_is_404(api, pro, make_user, make_org, jwt_client):
    theirs_owner = make_user()
    theirs = make_org(theirs_owner, name="Other", slug="other")
    on_plan(theirs, "professional")
    their_id = compare(jwt_client(theirs_owner, theirs)).json()["comparison_id"]
    for path in (f"/v1/compare/{their_id}/", "/v1/compare/not-a-uuid/",
                 "/v1/compare/6f1f8a52-7c53-4d0c-8d5e-3f7d3b0d2a11/"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json() == {"detail": "Comparison not found."}
    assert api.get("/v1/compare/").json()["results"] == []


def test_api_key_can_compare(pro, make_key, key_client):
    _, raw = make_key(pro)
    response = compare(key_client(raw))
    assert response.status_code == 200
    assert LedgerEntry.objects.get(kind="query_charge").actor_api_key_id is not None


# --- Every status of API.md 1, with no credit spent -------------------------------------------
def test_missing_credentials_is_401(client, library):
    response = compare(client)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert client.get("/v1/compare/").status_code == 401


@pytest.mark.parametrize("field", ["query", "domain", "categories", "mode"])
def test_missing_field_is_named(api, pro, field):
    body = {"query": QUESTION, "domain": "business-continuity", "categories": ["us", "sg"],
            "mode": "compliance"}
    del body[field]
    response = api.post("/v1/compare/", body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == f"{field} field is required."
    assert balance(pro) == 100 and not Reservation.objects.exists()


@pytest.mark.parametrize("categories, detail", [
    (["us"], "categories: give 2 to 4 category codes of the domain (got 1)."),
    (["us", "sg", "a", "b", "c"], "categories: give 2 to 4 category codes of the domain (got 5)."),
    ([], "categories: give 2 to 4 category codes of the domain (got 0)."),
    (["us", "sg", "us"], 'categories: "us" is listed twice; each category is compared once.'),
    ("us", 'categories: Expected a list of items but got type "str".'),
])
def test_categories_must_be_two_to_four_distinct_codes(api, pro, categories, detail):
    response = compare(api, categories=categories)
    assert response.status_code == 400 and response.json()["detail"] == detail
    assert balance(pro) == 100 and not Reservation.objects.exists()


@pytest.mark.parametrize("extra, detail", [
    ({"mode": "fast"}, 'mode: "fast" is not a valid choice.'),
    ({"max_sources": 0}, "max_sources: Ensure this value is greater than or equal to 1."),
    ({"model": "gpt-9"}, 'model: unknown model "gpt-9". See GET /v1/models/.'),
    ({"knowledge_scope": "private"}, 'knowledge_scope: "private" needs at least one ready '
                                     'document in the organization\'s knowledge base '
                                     '(kb_status "active").'),
    ({"query": "   "}, "query: This field may not be blank."),
])
def test_invalid_field_is_named(api, pro, extra, detail):
    response = compare(api, **extra)
    assert response.status_code == 400 and response.json()["detail"] == detail
    assert balance(pro) == 100


@pytest.mark.parametrize("extra, detail", [
    ({"category": "us"}, "category: unknown field."),
    ({"session_id": "3b6f0d52-8a1e-4c7b-9f3d-5e2a1c0b9d84"}, "session_id: unknown field."),
])
def test_fields_a_comparison_does_not_take_are_400(api, pro, extra, detail):
    response = compare(api, **extra)
    assert response.status_code == 400 and response.json()["detail"] == detail
    assert balance(pro) == 100 and not Comparison.objects.exists()


def test_malformed_json_is_400(api, pro):
    response = api.generic("POST", "/v1/compare/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")


@pytest.mark.parametrize("domain, categories, detail", [
    ("no-such-domain", ["us", "sg"], "Domain not found."),
    ("business-continuity", ["us", "zz"], "Category not found."),
    ("privacy", ["eu", "us"], "Category not found."),  # the test library has no privacy/us
])
def test_unknown_domain_or_category_is_404(api, pro, domain, categories, detail):
    response = compare(api, domain=domain, categories=categories)
    assert response.status_code == 404 and response.json() == {"detail": detail}
    assert balance(pro) == 100 and not Reservation.objects.exists()


def test_plan_without_comparison_is_403(api, org, library):
    on_plan(org, "starter")
    response = compare(api)
    assert response.status_code == 403 and response.json() == {"detail": NO_COMPARE}
    assert balance(org) == 100 and not Reservation.objects.exists()


def test_domain_outside_allowed_domains_is_403(api, pro):
    pro.allowed_domains = ["privacy"]
    pro.save(update_fields=["allowed_domains"])
    response = compare(api)
    assert response.status_code == 403
    assert response.json() == {"detail": "Your organization does not have access to this "
                                         "domain."}
    assert balance(pro) == 100


def test_premium_model_above_the_plan_and_streaming_without_the_feature_are_403(api, org,
                                                                                library):
    on_plan(org, "professional")
    AIModel.objects.create(id="top", name="Top", provider="extractive", tier="enterprise")
    response = compare(api, model="top")
    assert response.status_code == 403
    assert response.json() == {"detail": 'Your plan does not include the enterprise model '
                                         '"top".'}
    Plan.objects.filter(slug="professional").update(has_streaming=False)
    response = compare(api, stream=True)
    assert response.status_code == 403
    assert response.json() == {"detail": "Your plan does not include streaming."}
    assert balance(org) == 100


def test_order_of_checks_400_then_404_then_403_then_402(api, org, library):
    on_plan(org, "starter", credits=1)  # no comparison on this plan, and too few credits
    org.allowed_domains = ["privacy"]
    org.save(update_fields=["allowed_domains"])
    assert compare(api, domain="nope", categories=["us"]).status_code == 400
    assert compare(api, domain="nope").json() == {"detail": "Domain not found."}
    assert compare(api, categories=["us", "zz"]).json() == {"detail": "Category not found."}
    response = compare(api)
    assert response.status_code == 403 and response.json()["detail"] == (
        "Your organization does not have access to this domain.")
    org.allowed_domains = []
    org.save(update_fields=["allowed_domains"])
    assert compare(api).json() == {"detail": NO_COMPARE}
    on_plan(org, "professional", credits=1)
    response = compare(api)
    assert response.status_code == 402 and response.json() == {"detail": CREDITS_EXHAUSTED}
    assert balance(org) == 1 and not Reservation.objects.exists()


def test_balance_below_the_whole_cost_is_402(api, pro):
    set_balance(pro, 3)
    AIModel.objects.create(id="costly", name="Costly", provider="extractive", tier="standard",
                           credits_per_query=2)
    response = compare(api, model="costly")  # 2 categories × 2 credits > 3
    assert response.status_code == 402 and response.json() == {"detail": CREDITS_EXHAUSTED}
    assert balance(pro) == 3 and not Reservation.objects.filter(amount=4).exists()


def test_no_credits_is_402_before_the_body_is_read(api, pro):
    set_balance(pro, 0)
    response = compare(api, categories=["only-one"])
    assert response.status_code == 402 and response.json() == {"detail": CREDITS_EXHAUSTED}
    assert api.get("/v1/compare/").status_code == 200  # listing costs nothing


def test_wrong_method_and_media_type(api, pro):
    response = api.put("/v1/compare/", {}, format="json")
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "PUT" not allowed.'}
    response = api.generic("POST", "/v1/compare/", "query=x", content_type="text/plain")
    assert response.status_code == 415
    assert response.json() == {"detail": 'Unsupported media type "text/plain" in request.'}
    response = api.get("/v1/compare/", HTTP_ACCEPT="application/xml")
    assert response.status_code == 406
    assert response.json() == {"detail": 'Could not satisfy the request Accept header.'}
    assert balance(pro) == 100


def test_provider_failure_is_500_and_refunds_everything(api, pro, monkeypatch):
    def broken(self, request):
        raise ProviderError("upstream said 529 overloaded")

    monkeypatch.setattr(ExtractiveProvider, "generate", broken)
    response = compare(api)
    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"detail", "request_id"} and "529" not in body["detail"]
    assert "retry" in body["detail"].lower()
    assert balance(pro) == 100
    assert Reservation.objects.get(organization=pro).status == "refunded"
    assert not Comparison.objects.exists()


def test_comparison_failure_after_the_answers_refunds_everything(api, pro, monkeypatch):
    real = ExtractiveProvider.generate

    def compare_breaks(self, request):
        if request.task == "compare":
            raise ProviderError("timeout")
        return real(self, request)

    monkeypatch.setattr(ExtractiveProvider, "generate", compare_breaks)
    assert compare(api).status_code == 500
    assert balance(pro) == 100 and not Comparison.objects.exists()


# --- Idempotency --------------------------------------------------------------------------------
def test_idempotency_key_replays_without_a_second_charge(api, pro):
    first = compare(api, headers={"HTTP_IDEMPOTENCY_KEY": "cmp-1"})
    again = compare(api, headers={"HTTP_IDEMPOTENCY_KEY": "cmp-1"})
    assert again.status_code == 200 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert balance(pro) == 98 and Comparison.objects.count() == 1
    other = compare(api, query="Something else entirely?",
                    headers={"HTTP_IDEMPOTENCY_KEY": "cmp-1"})
    assert other.status_code == 400
    assert other.json()["detail"] == ("This Idempotency-Key was already used with a different "
                                      "request. Use a new key for a new request.")
    assert balance(pro) == 98


def test_idempotency_key_in_progress_is_409(api, pro):
    first = compare(api, headers={"HTTP_IDEMPOTENCY_KEY": "cmp-2"})
    record = IdempotencyRecord.objects.get(key="cmp-2")
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state="in_progress", response_body=None, created_at=timezone.now(),
        expires_at=timezone.now() + timedelta(hours=1))
    response = compare(api, headers={"HTTP_IDEMPOTENCY_KEY": "cmp-2"})
    assert response.status_code == 409
    assert response.json()["detail"] == ("A request with this Idempotency-Key is still in "
                                         "progress. Retry after it has completed.")
    assert first.status_code == 200 and balance(pro) == 98


# --- Streaming ----------------------------------------------------------------------------------
def events_of(response) -> list[dict]:
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def test_stream_tags_each_event_with_its_category_and_ends_with_one_done(api, pro):
    response = compare(api, stream=True)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    events = events_of(response)
    kinds = [(e["type"], e.get("category")) for e in events]
    first_sg = kinds.index(("sources", "sg"))
    assert kinds[0] == ("sources", "us")
    assert set(kinds[1:first_sg]) == {("text_delta", "us")}
    first_null = kinds.index(("text_delta", None))
    assert set(kinds[first_sg + 1:first_null]) == {("text_delta", "sg")}
    assert set(kinds[first_null:-1]) == {("text_delta", None)}
    assert kinds[-1] == ("done", None) and [k for k, _ in kinds].count("done") == 1
    done = events[-1]
    for answer in done["answers"]:
        text = "".join(e["text"] for e in events
                       if e["type"] == "text_delta" and e["category"] == answer["category"])
        assert text == answer["response"] and markers_valid(answer)
        sources = next(e for e in events if e["type"] == "sources"
                       and e["category"] == answer["category"])
        assert sources["sources"] == answer["sources"]
        assert sources["comparison_id"] == done["comparison_id"]
    comparison = "".join(e["text"] for e in events
                         if e["type"] == "text_delta" and e["category"] is None)
    assert comparison == done["comparison"] and LABELLED.findall(comparison)
    assert done["credits_used"] == 2 and balance(pro) == 98
    stored = api.get(f"/v1/compare/{done['comparison_id']}/").json()
    assert stored == {k: v for k, v in done.items() if k != "type"}


def test_stream_replay_joins_the_deltas_of_each_category(api, pro):
    first = events_of(compare(api, stream=True, headers={"HTTP_IDEMPOTENCY_KEY": "s-1"}))
    replay = compare(api, stream=True, headers={"HTTP_IDEMPOTENCY_KEY": "s-1"})
    assert replay["Idempotent-Replayed"] == "true"
    events = events_of(replay)
    assert [(e["type"], e.get("category")) for e in events] == [
        ("sources", "us"), ("text_delta", "us"), ("sources", "sg"), ("text_delta", "sg"),
        ("text_delta", None), ("done", None)]
    assert events[-1] == first[-1] and balance(pro) == 98


def test_stream_closed_early_is_refunded(api, pro, monkeypatch):
    response = compare(api, stream=True)
    stream = iter(response.streaming_content)
    next(stream)
    # The end of a request closes a connection inside a transaction; keep the test's open.
    monkeypatch.setattr(connection, "close_if_unusable_or_obsolete", lambda: None)
    response.close()
    assert balance(pro) == 100
    assert Reservation.objects.get(organization=pro).status == "refunded"
    assert not Comparison.objects.exists()


def test_stream_failure_ends_with_an_error_event_and_refunds(api, pro, monkeypatch):
    def broken(self, request):
        raise ProviderError("boom")
        yield  # pragma: no cover - a generator

    monkeypatch.setattr(ExtractiveProvider, "stream", broken)
    events = events_of(compare(api, stream=True))
    assert events[0]["type"] == "sources" and events[-1]["type"] == "error"
    assert set(events[-1]) == {"type", "detail", "request_id"}
    assert balance(pro) == 100 and not Comparison.objects.exists()


# --- Admin ------------------------------------------------------------------------------------
def test_admin_shows_comparisons_read_only(api, pro, staff):
    body = compare(api).json()
    listing = staff.get("/admin/assistant/comparison/")
    assert listing.status_code == 200 and QUESTION.encode() in listing.content
    page = staff.get(f"/admin/assistant/comparison/{body['comparison_id']}/change/")
    assert page.status_code == 200
    assert b'name="query"' not in page.content and b"Save" not in page.content
    assert staff.get("/admin/assistant/comparison/add/").status_code == 403
    response = staff.post(f"/admin/assistant/comparison/{body['comparison_id']}/change/",
                          {"query": "changed"})
    assert response.status_code == 403
    assert Comparison.objects.get().query == QUESTION
