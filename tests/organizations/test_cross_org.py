"""Tenant isolation (API.md 1, 404 row): organization B's owner or API key can neither see nor
change anything of organization A through any organization-scoped endpoint."""

from __future__ import annotations

import uuid

import pytest

from organizations.models import ApiKey, Membership, Organization, Role

pytestmark = pytest.mark.django_db

ORG_NOT_FOUND = {"detail": "Organization not found."}
KEY_NOT_FOUND = {"detail": "API key not found."}


@pytest.fixture
def tenants(owner, org, make_user, make_org, add_member, make_key, domains):
    """Org A ("acme", starter) with an owner, a member and a key; org B ("globex", starter)
    with its own owner and key."""
    Organization.objects.filter(pk=org.pk).update(allowed_domains=["bcm"])
    member_a = make_user("member-a@example.com")
    add_member(org, member_a, Role.MEMBER)
    key_a, raw_a = make_key(org, name="acme key")
    owner_b = make_user("owner-b@example.com")
    org_b = make_org(owner_b, name="Globex", slug="globex")
    key_b, raw_b = make_key(org_b, name="globex key")
    return {
        "org_a": org, "owner_a": owner, "member_a": member_a, "key_a": key_a, "raw_a": raw_a,
        "org_b": org_b, "owner_b": owner_b, "key_b": key_b, "raw_b": raw_b,
    }


def state_of_a(t) -> tuple:
    org = Organization.objects.get(pk=t["org_a"].pk)
    key = ApiKey.objects.get(pk=t["key_a"].pk)
    return (
        (org.slug, org.name, org.allowed_domains, org.plan_id, org.is_active, org.updated_at),
        sorted(Membership.objects.filter(organization=org).values_list("user__email", "role")),
        (key.name, key.digest, key.key_prefix, key.expires_at, key.revoked_at),
        ApiKey.objects.filter(organization=org).count(),
    )


def org_requests(t):
    member = t["member_a"].pk
    owner = t["owner_a"].pk
    return {
        "org-detail": ("get", "/v1/orgs/acme/", None),
        "org-update": ("patch", "/v1/orgs/acme/", {"name": "Pwned", "allowed_domains": []}),
        "member-list": ("get", "/v1/orgs/acme/members/", None),
        "member-add": ("post", "/v1/orgs/acme/members/",
                       {"email": "owner-b@example.com", "role": "owner"}),
        "member-role": ("patch", f"/v1/orgs/acme/members/{member}/", {"role": "owner"}),
        "member-remove": ("delete", f"/v1/orgs/acme/members/{member}/", None),
        "owner-remove": ("delete", f"/v1/orgs/acme/members/{owner}/", None),
    }


def key_requests(key_id):
    return {
        "key-update": ("patch", f"/v1/billings/api-keys/{key_id}/update/",
                       {"name": "pwned", "expires_at": None}),
        "key-rotate": ("post", f"/v1/billings/api-keys/{key_id}/rotate/", None),
        "key-revoke": ("delete", f"/v1/billings/api-keys/{key_id}/", None),
    }


ORG_ENDPOINTS = ["org-detail", "org-update", "member-list", "member-add", "member-role",
                 "member-remove", "owner-remove"]
KEY_ENDPOINTS = ["key-update", "key-rotate", "key-revoke"]


def call(api, method, url, data):
    return getattr(api, method)(url, data, format="json")


@pytest.mark.parametrize("caller", ["owner-b-jwt", "key-b"])
@pytest.mark.parametrize("endpoint", ORG_ENDPOINTS)
def test_another_organization_cannot_reach_org_a_through_its_slug(
    tenants, jwt_client, key_client, client, caller, endpoint
):
    t = tenants
    api = jwt_client(t["owner_b"]) if caller == "owner-b-jwt" else key_client(t["raw_b"])
    before = state_of_a(t)

    response = call(api, *org_requests(t)[endpoint])

    assert response.status_code == 404
    assert response.json() == ORG_NOT_FOUND
    assert state_of_a(t) == before
    assert client.get("/auth/me/", HTTP_AUTHORIZATION=f"Bearer {t['raw_a']}").status_code == 200


@pytest.mark.parametrize("endpoint", KEY_ENDPOINTS)
def test_org_b_owner_cannot_reach_org_a_keys_by_id(tenants, jwt_client, client, endpoint):
    t = tenants
    before = state_of_a(t)

    response = call(jwt_client(t["owner_b"]), *key_requests(t["key_a"].pk)[endpoint])

    assert response.status_code == 404
    assert response.json() == KEY_NOT_FOUND
    assert state_of_a(t) == before
    assert client.get("/auth/me/", HTTP_AUTHORIZATION=f"Bearer {t['raw_a']}").status_code == 200


@pytest.mark.parametrize("endpoint", KEY_ENDPOINTS)
def test_org_b_owner_naming_org_a_in_x_organization_gets_404(tenants, jwt_client, endpoint):
    t = tenants
    before = state_of_a(t)

    response = call(jwt_client(t["owner_b"], t["org_a"]), *key_requests(t["key_a"].pk)[endpoint])

    assert response.status_code == 404
    assert response.json() == ORG_NOT_FOUND
    assert state_of_a(t) == before


@pytest.mark.parametrize("endpoint", KEY_ENDPOINTS)
def test_org_b_api_key_on_org_a_key_ids_gets_the_same_answer_as_for_a_random_id(
    tenants, key_client, client, endpoint
):
    """Keys never manage keys (API.md 2.2): the answer is the same 403 whether the id is
    organization A's or made up, so it reveals nothing about A."""
    t = tenants
    api = key_client(t["raw_b"])
    before = state_of_a(t)

    response = call(api, *key_requests(t["key_a"].pk)[endpoint])
    made_up = call(api, *key_requests(uuid.uuid4())[endpoint])

    assert response.status_code == 403
    assert response.json() == made_up.json()
    assert made_up.status_code == 403
    assert state_of_a(t) == before
    assert client.get("/auth/me/", HTTP_AUTHORIZATION=f"Bearer {t['raw_a']}").status_code == 200


@pytest.mark.parametrize("endpoint", KEY_ENDPOINTS)
def test_owner_of_b_who_is_also_in_a_acts_in_b_and_cannot_reach_a_keys(
    tenants, jwt_client, endpoint
):
    """Membership in A does not leak into requests acting in B."""
    t = tenants
    Membership.objects.create(organization=t["org_a"], user=t["owner_b"], role=Role.ADMIN)
    before = state_of_a(t)

    response = call(jwt_client(t["owner_b"], t["org_b"]), *key_requests(t["key_a"].pk)[endpoint])

    assert response.status_code == 404
    assert response.json() == KEY_NOT_FOUND
    assert state_of_a(t) == before


def test_org_b_key_list_does_not_include_org_a_keys(tenants, jwt_client):
    body = jwt_client(tenants["owner_b"]).get("/v1/billings/api-keys/").json()

    assert [k["name"] for k in body] == ["globex key"]


def test_org_b_member_list_does_not_include_org_a_members(tenants, jwt_client):
    body = jwt_client(tenants["owner_b"]).get("/v1/orgs/globex/members/").json()

    assert [m["email"] for m in body] == ["owner-b@example.com"]
