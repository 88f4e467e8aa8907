"""GET /v1/billings/plans|subscription|usage|ledger/ (API.md 5.1, 5.3-5.5)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing import services
from billing.models import LedgerEntry
from organizations.models import Organization, Role

Kind = LedgerEntry.Kind
PLAN_FIELDS = {"slug", "name", "description", "tier", "price_monthly_usd", "monthly_credits",
               "model_tier", "max_api_keys", "max_storage_gb", "max_documents", "max_members",
               "has_api_access", "has_streaming", "has_export", "has_cross_category_compare",
               "has_custom_documents"}


def fresh(org):
    return Organization.objects.select_related("plan", "subscription", "credit_account").get(
        pk=org.pk)


def test_plans_are_public_and_match_the_contract(client, db):
    response = client.get("/v1/billings/plans/")
    assert response.status_code == 200
    plans = {p["slug"]: p for p in response.json()}
    assert list(plans) == ["free", "starter", "professional", "enterprise"]
    assert all(set(p) == PLAN_FIELDS for p in plans.values())
    assert plans["starter"]["price_monthly_usd"] == "49.00"
    assert plans["professional"]["max_storage_gb"] == "5.00"
    assert (plans["free"]["monthly_credits"], plans["free"]["has_api_access"]) == (50, False)
    assert plans["enterprise"]["model_tier"] == "enterprise"
    assert plans["starter"]["tier"] == "starter"


@pytest.mark.parametrize("url", ["/v1/billings/subscription/", "/v1/billings/usage/",
                                 "/v1/billings/ledger/"])
def test_billing_endpoints_need_credentials(client, db, url):
    response = client.get(url)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_subscription_shows_plan_period_and_quota(org, make_key, key_client):
    _, raw = make_key(org)
    held = services.credits_reserve(fresh(org), 1)
    services.credits_settle(services.credits_reserve(fresh(org), 120))
    body = key_client(raw).get("/v1/billings/subscription/").json()
    assert body["organization"] == "acme" and body["status"] == "active"
    assert body["plan"]["slug"] == "starter" and set(body["plan"]) == PLAN_FIELDS
    assert body["current_quota"] == {
        "monthly_credits": 5000, "credits_granted": 5000, "credits_used": 120,
        "credits_reserved": 1, "credits_remaining": 4879, "is_exhausted": False,
        "period_start": body["current_period_start"], "period_end": body["current_period_end"],
    }
    assert held.status == "reserved"


def test_subscription_with_an_api_key_reads_no_ledger(org, make_key, key_client,
                                                     django_assert_max_num_queries):
    """The key lookup loads the account with its period figures: nothing else to read, however
    long the ledger."""
    _, raw = make_key(org)
    api = key_client(raw)
    for _ in range(3):
        services.credits_settle(services.credits_reserve(fresh(org), 1))
    with django_assert_max_num_queries(2):  # first use: lookup + last_used_at write
        assert api.get("/v1/billings/subscription/").status_code == 200
    with django_assert_max_num_queries(1) as captured:
        assert api.get("/v1/billings/subscription/").status_code == 200
    assert "billing_ledgerentry" not in " ".join(q["sql"] for q in captured.captured_queries)


def test_subscription_rolls_over_lazily(org, jwt_client, owner):
    import time_machine

    end = fresh(org).subscription.current_period_end
    services.credits_settle(services.credits_reserve(fresh(org), 10))
    with time_machine.travel(end + timedelta(hours=1)):
        body = jwt_client(owner).get("/v1/billings/subscription/").json()
    assert body["current_period_start"].startswith(end.date().isoformat())
    assert body["current_quota"]["credits_used"] == 0
    assert body["current_quota"]["credits_remaining"] == 5000


def test_subscription_of_a_user_without_organization_is_403(make_user, jwt_client):
    response = jwt_client(make_user()).get("/v1/billings/subscription/")
    assert response.status_code == 403
    assert "Create one" in response.json()["detail"]


def test_subscription_is_per_acting_organization(org, owner, make_org, jwt_client):
    other = make_org(owner, plan="free", slug="side")
    body = jwt_client(owner, other).get("/v1/billings/subscription/").json()
    assert body["organization"] == "side"
    assert body["current_quota"]["credits_remaining"] == 50


def test_usage_groups_kept_charges_net_of_refunds(org, make_key, key_client, owner):
    key, raw = make_key(org)
    acting_refs = dict(actor_api_key=key, model="m-a", domain="bcm")
    services.credits_settle(services.credits_reserve(fresh(org), 2, **acting_refs))
    services.credits_settle(services.credits_reserve(fresh(org), 3, model="m-b", domain="bcm",
                                                     actor_user=owner))
    services.credits_refund(services.credits_reserve(fresh(org), 7, **acting_refs))
    services.credits_reserve(fresh(org), 5, **acting_refs)  # still open
    api = key_client(raw)

    by_model = api.get("/v1/billings/usage/?group_by=model").json()
    assert by_model["group_by"] == "model"
    rows = {r["key"]: r for r in by_model["rows"]}
    assert rows["m-a"] == {"key": "m-a", "credits": 7, "queries": 1}
    assert rows["m-b"] == {"key": "m-b", "credits": 3, "queries": 1}
    assert by_model["total_queries"] == 2

    by_key = api.get("/v1/billings/usage/?group_by=api_key").json()
    assert {r["key"] for r in by_key["rows"]} == {str(key.id), None}

    by_day = api.get("/v1/billings/usage/").json()
    today = timezone.now().date().isoformat()
    assert by_day["rows"] == [{"key": today, "credits": 10, "queries": 2}]
    assert by_day["total_credits"] == 10


def test_usage_validates_its_query_parameters(org, jwt_client, owner):
    api = jwt_client(owner)
    response = api.get("/v1/billings/usage/?group_by=hour")
    assert response.status_code == 400
    assert response.json()["detail"] == 'group_by: "hour" is not a valid choice.'
    response = api.get("/v1/billings/usage/?start=yesterday")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("start: ")
    response = api.get("/v1/billings/usage/?start=2027-02-01&end=2027-01-01")
    assert response.status_code == 400
    assert response.json()["detail"] == "end: must be on or after start."


def test_usage_of_an_explicit_range_excludes_other_days(org, jwt_client, owner):
    services.credits_settle(services.credits_reserve(fresh(org), 4))
    body = jwt_client(owner).get("/v1/billings/usage/?start=2020-01-01&end=2020-01-31").json()
    assert body["start"] == "2020-01-01" and body["end"] == "2020-01-31"
    assert body["rows"] == [] and body["total_credits"] == 0


def test_ledger_is_newest_first_and_cursor_paginated(org, make_key, key_client):
    key, raw = make_key(org)
    for _ in range(3):
        services.credits_settle(services.credits_reserve(fresh(org), 1, actor_api_key=key))
    api = key_client(raw)
    first = api.get("/v1/billings/ledger/?limit=2").json()
    assert set(first) == {"next", "previous", "results"}
    assert [e["kind"] for e in first["results"]] == ["query_charge", "query_charge"]
    assert first["results"][0]["balance_after"] == 4997
    assert first["results"][0]["actor"]["type"] == "api_key"
    assert first["results"][0]["actor"]["key_prefix"] == key.key_prefix
    second = api.get(first["next"]).json()
    assert [e["kind"] for e in second["results"]] == ["query_charge", "monthly_grant"]
    assert second["next"] is None
    ids = [e["id"] for e in first["results"] + second["results"]]
    assert len(set(ids)) == 4


def test_ledger_is_for_owners_admins_and_keys_not_members(org, make_user, add_member,
                                                          jwt_client):
    member, admin = make_user(), make_user()
    add_member(org, member, Role.MEMBER)
    add_member(org, admin, Role.ADMIN)
    response = jwt_client(member).get("/v1/billings/ledger/")
    assert response.status_code == 403
    assert response.json() == {"detail": "Only owners and admins can read the ledger."}
    assert jwt_client(admin).get("/v1/billings/ledger/").status_code == 200


def test_ledger_never_shows_another_organization(org, owner, make_org, jwt_client, make_user):
    intruder = make_user()
    make_org(intruder, plan="starter", slug="globex")
    services.credits_settle(services.credits_reserve(fresh(org), 9))
    body = jwt_client(intruder).get("/v1/billings/ledger/").json()
    assert all(e["amount"] != -9 for e in body["results"])
    assert len(body["results"]) == 1
    response = jwt_client(intruder).get("/v1/billings/subscription/",
                                        HTTP_X_ORGANIZATION="acme")
    assert response.status_code == 404
    assert response.json() == {"detail": "Organization not found."}
