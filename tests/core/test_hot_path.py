"""The API-key quota read, the hottest authenticated request (docs/benchmarks.md, "Hot path:
the quota read"): one query, the key read from the database on every request (so revocation,
expiry and deactivation take effect at once), the plan as the plans endpoint shows it."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from billing import selectors
from billing.models import Plan
from billing.serializers import PlanSerializer, plan_representation
from core import keyformat
from core.authentication import INVALID_API_KEY, WWW_AUTHENTICATE, _key_by_digest
from core.tenancy import NO_API_ACCESS
from core.throttles import PrincipalRateThrottle
from organizations.models import ApiKey, Organization

URL = "/v1/billings/subscription/"


def warmed(key_client, raw):
    """A client whose key has been used once (its last_used_at written)."""
    api = key_client(raw)
    assert api.get(URL).status_code == 200
    return api


def test_quota_read_is_one_query_naming_the_key(org, make_key, key_client,
                                                django_assert_num_queries):
    _, raw = make_key(org)
    api = warmed(key_client, raw)
    with django_assert_num_queries(1) as captured:
        response = api.get(URL)
    assert response.status_code == 200
    assert response.json()["organization"] == "acme"
    assert "organizations_apikey" in captured.captured_queries[0]["sql"]


def test_quota_read_body_is_the_serializers_and_selectors_output(org, make_key, key_client,
                                                                 owner, jwt_client):
    """Field for field what the plan serializer and the quota selector give, rendered by
    DRF's JSON renderer; the same for a key and for a member's access token."""
    _, raw = make_key(org)
    organization = Organization.objects.select_related(
        "plan", "subscription", "credit_account").get(pk=org.pk)
    subscription = organization.subscription
    expected = JSONRenderer().render({
        "organization": organization.slug,
        "plan": PlanSerializer(organization.plan).data,
        "status": subscription.status,
        "current_period_start": subscription.current_period_start,
        "current_period_end": subscription.current_period_end,
        "current_quota": selectors.current_quota(organization),
    })
    by_key = warmed(key_client, raw).get(URL)
    by_token = jwt_client(owner, org).get(URL)
    assert by_key.content == expected
    assert by_token.content == expected
    assert by_key["Content-Type"] == "application/json"


@pytest.mark.parametrize("header", [
    {"HTTP_AUTHORIZATION": "Bearer " + keyformat.generate()},  # well formed, unknown
    {"HTTP_AUTHORIZATION": "Bearer egret_not-a-key"},  # malformed: no query
    {"HTTP_X_API_KEY": keyformat.generate()},
])
def test_quota_read_refuses_a_bad_key_with_the_contracts_401(db, header,
                                                              django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        response = APIClient().get(URL, **header)
    assert response.status_code == 401
    assert response.json() == {"detail": INVALID_API_KEY}
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE
    assert response["X-Request-ID"]


def test_quota_read_without_credentials_or_with_a_bad_token(db):
    response = APIClient().get(URL)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE
    response = APIClient().get(URL, HTTP_AUTHORIZATION="Bearer not.a.token")
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"
    assert response.json()["messages"][0]["message"] == "Token is invalid or expired"


def test_quota_read_over_the_rate_gets_429_with_retry_after(org, make_key, key_client,
                                                            monkeypatch):
    import time_machine

    monkeypatch.setattr(PrincipalRateThrottle, "rate", "3/min", raising=False)
    _, raw = make_key(org)
    api = key_client(raw)
    with time_machine.travel(timezone.now(), tick=False):
        statuses = [api.get(URL).status_code for _ in range(3)]
        response = api.get(URL)
    assert statuses == [200, 200, 200]
    assert response.status_code == 429
    assert response.json() == {"detail": "Request was throttled. Expected available in 60 seconds."}
    assert response["Retry-After"] == "60"
    assert response["X-Request-ID"]


def test_revoked_key_is_refused_on_the_next_request(org, make_key, key_client,
                                                    django_assert_max_num_queries):
    key, raw = make_key(org)
    api = warmed(key_client, raw)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    with django_assert_max_num_queries(1):
        response = api.get(URL)
    assert response.status_code == 401
    assert response.json() == {"detail": INVALID_API_KEY}


@pytest.mark.parametrize("change, status, detail", [
    pytest.param(lambda org, key: ApiKey.objects.filter(pk=key.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)), 401, INVALID_API_KEY,
        id="key expired"),
    pytest.param(lambda org, key: Organization.objects.filter(pk=org.pk).update(
        is_active=False), 401, INVALID_API_KEY, id="organization deactivated"),
    pytest.param(lambda org, key: Plan.objects.filter(pk=org.plan_id).update(
        has_api_access=False), 403, NO_API_ACCESS, id="plan without API access"),
])
def test_a_change_is_refused_on_the_next_request(org, make_key, key_client, change, status,
                                                detail):
    key, raw = make_key(org)
    api = warmed(key_client, raw)
    change(org, key)
    response = api.get(URL)
    assert response.status_code == status
    assert response.json() == {"detail": detail}


def test_plan_and_figures_are_read_fresh_on_every_request(org, make_key, key_client):
    _, raw = make_key(org)
    api = warmed(key_client, raw)
    Organization.objects.filter(pk=org.pk).update(plan=Plan.objects.get(slug="professional"))
    Plan.objects.filter(slug="professional").update(description="Changed a moment ago.")
    body = api.get(URL).json()
    assert body["plan"]["slug"] == "professional"
    assert body["plan"]["description"] == "Changed a moment ago."


def test_plan_in_the_quota_read_is_the_plans_endpoint_representation(db):
    plans = list(Plan.objects.all())
    assert len(plans) == 4
    for plan in plans:
        assert plan_representation(plan) == PlanSerializer(plan).data
    assert plan_representation(plans[0])["price_monthly_usd"] == str(plans[0].price_monthly_usd)


def test_plan_representation_follows_the_plans_values(db):
    """Kept per values, not per plan: a changed price is shown at once, and what a caller does
    with the dict it got does not reach the next caller."""
    plan = Plan.objects.get(slug="starter")
    first = plan_representation(plan)
    first["name"] = "changed by a caller"
    assert plan_representation(plan) == PlanSerializer(plan).data
    Plan.objects.filter(pk=plan.pk).update(price_monthly_usd=Decimal("12.34"))
    plan.refresh_from_db()
    assert plan_representation(plan)["price_monthly_usd"] == "12.34"
    assert plan_representation(plan) == PlanSerializer(plan).data


def test_prepared_lookup_builds_what_the_orm_builds(org, make_key):
    Organization.objects.filter(pk=org.pk).update(allowed_domains=["acme.example"],
                                                  max_storage_gb_override=Decimal("2.50"))
    key, raw = make_key(org, expires_at=timezone.now() + timedelta(days=3))
    digest = keyformat.digest(raw)
    expected = ApiKey.objects.select_related(
        "organization__plan", "organization__subscription", "organization__credit_account"
    ).get(digest=digest)

    for _ in range(2):  # compiled on the first call, reused on the second
        found = _key_by_digest.get(digest)
        pairs = [(found, expected), (found.organization, expected.organization),
                 (found.organization.plan, expected.organization.plan),
                 (found.organization.subscription, expected.organization.subscription),
                 (found.organization.credit_account, expected.organization.credit_account)]
        for got, want in pairs:
            assert type(got) is type(want)
            for field in want._meta.concrete_fields:
                assert getattr(got, field.attname) == getattr(want, field.attname), field.name
            assert not got._state.adding and got._state.db == "default"
        assert found.organization.allowed_domains == ["acme.example"]
        assert found.expires_at.tzinfo is not None
    with pytest.raises(ApiKey.DoesNotExist):
        _key_by_digest.get(keyformat.digest(keyformat.generate()))


def test_prepared_lookup_reads_related_objects_without_queries(org, make_key,
                                                              django_assert_num_queries):
    _, raw = make_key(org)
    with django_assert_num_queries(1):
        found = _key_by_digest.get(keyformat.digest(raw))
        assert found.organization.plan.slug == "starter"
        assert found.organization.subscription.status == "active"
        assert found.organization.credit_account.balance == 5000


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_prepared_lookup_in_another_thread_uses_that_threads_connection(org, make_key):
    """Connections are per thread: each thread runs the statement on its own connection,
    with the one compiled form all threads share (a gthread worker has hundreds)."""
    _, raw = make_key(org)
    digest = keyformat.digest(raw)
    assert _key_by_digest.get(digest).organization.slug == "acme"
    compiled = _key_by_digest.compiled()
    seen: list = []

    def other() -> None:
        try:
            with CaptureQueriesContext(connections["default"]) as queries:
                seen.append(_key_by_digest.get(digest).organization.slug)
            seen.append(len(queries))
            seen.append(_key_by_digest.compiled() is compiled)
        finally:
            connections["default"].close()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen == ["acme", 1, True]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_prepared_lookup_is_prepared_once_per_connection_on_postgresql(org, make_key,
                                                                      django_assert_num_queries):
    """On PostgreSQL each lookup is an EXECUTE of a statement the server planned once per
    connection; the PREPARE is connection setup (not a request's query), and a new
    connection (the old one closed, as the pool does with a broken one) prepares it again."""
    _, raw = make_key(org)
    digest = keyformat.digest(raw)
    for _ in range(2):
        connections["default"].close()
        with django_assert_num_queries(1) as captured:
            assert _key_by_digest.get(digest).organization.slug == "acme"
        sql = captured.captured_queries[0]["sql"]
        assert sql.startswith("EXECUTE egret_organizations_apikey_")
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE name = %s",
                           [sql.split()[1].split("(")[0]])
            assert cursor.fetchone() == (1,)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_prepared_statement_outlives_a_rolled_back_transaction(org, make_key):
    """PREPARE is not undone by a rollback: a lookup made in a transaction that is rolled
    back leaves the statement for the next one on the same connection."""
    from django.db import transaction

    _, raw = make_key(org)
    digest = keyformat.digest(raw)
    connections["default"].close()  # a new connection: the PREPARE happens inside the block

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        _key_by_digest.get(digest)
        raise Undo
    assert _key_by_digest.get(digest).organization.slug == "acme"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_prepared_lookup_survives_a_migration_of_a_selected_column(org, make_key):
    """A column's type changed under a prepared statement makes PostgreSQL refuse it ("cached
    plan must not change result type"): the lookup runs the plain query and prepares again."""
    _, raw = make_key(org)
    digest = keyformat.digest(raw)
    assert _key_by_digest.get(digest).name == "ci"
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT data_type, character_maximum_length FROM "
                       "information_schema.columns WHERE table_name = 'organizations_apikey' "
                       "AND column_name = 'name'")
        assert cursor.fetchone()[0] == "character varying"
        cursor.execute("ALTER TABLE organizations_apikey ALTER COLUMN name TYPE text")
    try:
        with CaptureQueriesContext(connections["default"]) as queries:
            assert _key_by_digest.get(digest).name == "ci"
        assert queries[0]["sql"].startswith("EXECUTE ")
        assert "organizations_apikey" in queries[-1]["sql"]
        assert _key_by_digest.get(digest).name == "ci"  # prepared again
    finally:
        length = ApiKey._meta.get_field("name").max_length
        with connections["default"].cursor() as cursor:
            cursor.execute(f"ALTER TABLE organizations_apikey ALTER COLUMN name "
                           f"TYPE varchar({length})")
