"""Query budgets: API-key requests are one indexed lookup (plus the rare last_used_at write);
lists cost the same number of queries whatever their length."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from organizations.models import ApiKey, Organization, Role

pytestmark = pytest.mark.django_db


def count_queries(api, url: str, expected_length: int | None = None) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200, response.content
    if expected_length is not None:
        assert len(response.json()) == expected_length
    return len(queries.captured_queries)


def test_me_with_an_api_key_uses_at_most_two_queries(key_client, org, make_key,
                                                     django_assert_max_num_queries):
    _, raw = make_key(org)
    api = key_client(raw)

    with django_assert_max_num_queries(2):  # first use: lookup + last_used_at write
        assert api.get("/auth/me/").status_code == 200
    with django_assert_max_num_queries(2):
        assert api.get("/auth/me/").status_code == 200
    with django_assert_max_num_queries(1):  # within the minute: the lookup only
        assert api.get("/auth/me/").status_code == 200


def test_me_with_an_api_key_stays_within_budget_after_the_touch_interval(
    key_client, org, make_key, django_assert_max_num_queries
):
    _, raw = make_key(org)
    api = key_client(raw)
    api.get("/auth/me/")

    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        with django_assert_max_num_queries(2):
            assert api.get("/auth/me/").status_code == 200


def test_org_list_costs_the_same_for_one_and_ten_organizations(jwt_client, make_user, make_org,
                                                               add_member):
    boss = make_user("boss@example.com")
    one = make_user("one@example.com")
    ten = make_user("ten@example.com")
    make_org(one, name="Solo")
    for i in range(10):
        organization = make_org(boss if i % 2 else ten, name=f"Org {i}")
        if i % 2:
            add_member(organization, ten, Role.MEMBER)
            add_member(organization, make_user(), Role.ADMIN)
    api_one, api_ten = jwt_client(one), jwt_client(ten)  # token rows written outside the count

    queries_one = count_queries(api_one, "/v1/orgs/", expected_length=1)
    queries_ten = count_queries(api_ten, "/v1/orgs/", expected_length=10)

    assert queries_one == queries_ten
    assert queries_ten <= 3


def test_org_list_with_an_api_key_is_cheap(key_client, org, make_key):
    _, raw = make_key(org)
    api = key_client(raw)
    api.get("/auth/me/")  # last_used_at written

    assert count_queries(api, "/v1/orgs/", expected_length=1) <= 2


def test_member_list_costs_the_same_for_one_and_many_members(jwt_client, owner, org, make_user,
                                                             add_member):
    api = jwt_client(owner)
    few = count_queries(api, "/v1/orgs/acme/members/", expected_length=1)
    Organization.objects.filter(pk=org.pk).update(max_members_override=20)
    for _ in range(8):
        add_member(org, make_user())

    many = count_queries(api, "/v1/orgs/acme/members/", expected_length=9)

    assert few == many
    assert many <= 4


def test_api_key_list_costs_the_same_for_one_and_many_keys(jwt_client, owner, org, make_user,
                                                           make_key, add_member):
    api = jwt_client(owner)
    make_key(org)
    few = count_queries(api, "/v1/billings/api-keys/", expected_length=1)
    for _ in range(6):
        creator = make_user()
        add_member(org, creator, Role.ADMIN)
        key, _ = make_key(org)
        ApiKey.objects.filter(pk=key.pk).update(created_by=creator)

    many = count_queries(api, "/v1/billings/api-keys/", expected_length=7)

    assert few == many
    assert many <= 4
