"""The check every test-client response goes through (tests/openapi_responses.py): a strict
OpenAPI 3.0 reading of the document, so a body the document does not allow fails the test
that got it."""

from __future__ import annotations

import pytest
from django.test import Client

from tests import openapi_responses

PLAN = {"slug": "starter", "name": "Starter", "description": "", "tier": "starter",
        "price_monthly_usd": "49.00", "monthly_credits": 5000, "model_tier": "standard",
        "max_api_keys": 1, "max_storage_gb": "1.00", "max_documents": 50, "max_members": 3,
        "has_api_access": True, "has_streaming": True, "has_export": False,
        "has_cross_category_compare": False, "has_custom_documents": True}
ENTRY = {"id": 1, "kind": "monthly_grant", "amount": 5000, "balance_after": 5000,
         "created_at": "2026-03-01T09:00:00Z", "period_start": "2026-03-01T09:00:00Z",
         "actor": None, "reservation_id": None, "session_id": None, "message_id": None,
         "comparison_id": None,
         "model": "", "domain": "", "idempotency_key": None, "memo": ""}


@pytest.fixture(scope="module")
def contract():
    return openapi_responses.contract()


def problems(contract, method, path, status, body) -> list[str]:
    return [mismatch.problem for mismatch in contract.check(method, path, status, body)]


def test_the_test_client_is_checked():
    if not openapi_responses.ENABLED:
        pytest.skip("EGRET_CHECK_RESPONSES=0")
    assert hasattr(Client.request, "__wrapped__")


def test_a_documented_body_passes(contract):
    assert problems(contract, "get", "/v1/billings/plans/", 200, [PLAN]) == []
    page = {"next": None, "previous": None, "results": [ENTRY]}
    assert problems(contract, "get", "/v1/billings/ledger/", 200, page) == []


def test_a_missing_field_fails(contract):
    plan = {key: value for key, value in PLAN.items() if key != "monthly_credits"}
    assert problems(contract, "get", "/v1/billings/plans/", 200, [plan]) == [
        "0: 'monthly_credits' is a required property"]


def test_null_where_the_document_says_not_nullable_fails(contract):
    page = {"next": None, "previous": None, "results": [{**ENTRY, "created_at": None}]}
    assert "results/0/created_at: None for not nullable" in problems(
        contract, "get", "/v1/billings/ledger/", 200, page)


def test_a_nullable_reference_takes_null_and_its_object(contract):
    actor = {"type": "user", "id": "0f8c2a4e-6b1d-4c3e-9a57-2d6e8b1f4c90",
             "email": "ada@example.com"}
    for value in (None, actor):
        page = {"next": None, "previous": None, "results": [{**ENTRY, "actor": value}]}
        assert problems(contract, "get", "/v1/billings/ledger/", 200, page) == []
    page = {"next": None, "previous": None, "results": [{**ENTRY, "actor": {"type": "user"}}]}
    assert problems(contract, "get", "/v1/billings/ledger/", 200, page) == [
        "results/0/actor: 'id' is a required property"]


def test_an_undocumented_key_fails_except_in_error_bodies(contract):
    assert problems(contract, "get", "/v1/billings/plans/", 200, [{**PLAN, "secret": 1}])
    error = {"detail": "Not found.", "hint": "extra keys are allowed in errors"}
    assert problems(contract, "get", "/v1/domains/{slug}/", 404, error) == []


def test_paths_match_literal_routes_before_templated_ones(contract):
    assert contract.template("/v1/sessions/recent/") == "/v1/sessions/recent/"
    assert contract.template("/v1/sessions/6e0f3b1a-2c4d-4e5f-8a9b-0c1d2e3f4a5b/") == \
        "/v1/sessions/{session_id}/"
    assert contract.template("/nowhere/") is None


def test_undocumented_statuses_are_not_checked(contract):
    assert problems(contract, "get", "/v1/billings/plans/", 418, {"anything": True}) == []
