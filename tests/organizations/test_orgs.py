"""Organizations (API.md 3): list, create, detail, update."""

from __future__ import annotations

import pytest

from organizations.models import Organization, Role

pytestmark = pytest.mark.django_db

ORG_FIELDS = {
    "id", "slug", "name", "owner_email", "allowed_domains", "credit_alert_thresholds", "plan",
    "role", "max_documents", "document_count", "max_storage_bytes", "storage_used_bytes",
    "storage_used_mb",
    "max_storage_mb", "max_members", "member_count", "kb_status", "is_active", "created_at",
    "updated_at",
}
NOT_FOUND = {"detail": "Organization not found."}


# --- List ----------------------------------------------------------------------------------
def test_list_is_a_bare_array_of_the_callers_organizations_with_their_role(
    jwt_client, owner, org, make_user, make_org, add_member
):
    boss = make_user("boss@example.com")
    globex = make_org(boss, name="Globex", slug="globex")
    add_member(globex, owner, Role.ADMIN)
    make_org(boss, name="Initech", slug="initech")  # owner is not a member

    response = jwt_client(owner).get("/v1/orgs/")

    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    assert {item["slug"]: item["role"] for item in body} == {"acme": "owner", "globex": "admin"}
    assert all(set(item) == ORG_FIELDS for item in body)
    acme = next(item for item in body if item["slug"] == "acme")
    assert acme["owner_email"] == "owner@example.com"
    assert acme["member_count"] == 1
    assert acme["plan"] == "starter"
    assert acme["max_members"] == 3
    globex_item = next(item for item in body if item["slug"] == "globex")
    assert globex_item["owner_email"] == "boss@example.com"
    assert globex_item["member_count"] == 2


def test_list_for_a_user_without_organizations_is_empty(jwt_client, make_user):
    response = jwt_client(make_user()).get("/v1/orgs/")

    assert response.status_code == 200
    assert response.json() == []


def test_list_leaves_out_deactivated_organizations(jwt_client, owner, org, make_org):
    make_org(owner, name="Old", slug="old")
    Organization.objects.filter(slug="old").update(is_active=False)

    response = jwt_client(owner).get("/v1/orgs/")

    assert [item["slug"] for item in response.json()] == ["acme"]


def test_api_key_sees_only_its_own_organization_in_the_list(key_client, owner, org, make_org,
                                                            make_key):
    make_org(owner, name="Globex", slug="globex")
    _, raw = make_key(org)

    response = key_client(raw).get("/v1/orgs/")

    assert response.status_code == 200
    body = response.json()
    assert [(item["slug"], item["role"]) for item in body] == [("acme", "api_key")]


def test_list_without_credentials_is_401(client, db):
    response = client.get("/v1/orgs/")

    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication credentials were not provided."


# --- Create --------------------------------------------------------------------------------
def test_create_makes_the_creator_owner_on_the_free_plan_with_a_derived_slug(jwt_client, make_user):
    creator = make_user("founder@example.com")

    response = jwt_client(creator).post("/v1/orgs/", {"name": "Globex Corp"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == ORG_FIELDS
    assert body["slug"] == "globex-corp"
    assert body["name"] == "Globex Corp"
    assert body["role"] == "owner"
    assert body["plan"] == "free"
    assert body["owner_email"] == "founder@example.com"
    assert body["member_count"] == 1
    assert body["allowed_domains"] == []
    organization = Organization.objects.get(slug="globex-corp")
    assert str(organization.pk) == body["id"]
    assert organization.plan.slug == "free"
    assert list(organization.memberships.values_list("user__email", "role")) == [
        ("founder@example.com", "owner")
    ]


def test_create_appends_a_number_when_the_derived_slug_is_taken(jwt_client, owner, org):
    api = jwt_client(owner)

    second = api.post("/v1/orgs/", {"name": "Acme"}, format="json")
    third = api.post("/v1/orgs/", {"name": "ACME"}, format="json")

    assert second.status_code == 201
    assert second.json()["slug"] == "acme-2"
    assert third.status_code == 201
    assert third.json()["slug"] == "acme-3"
    assert Organization.objects.filter(name="Acme").count() == 2


def test_a_derived_slug_from_a_long_name_fits_with_its_suffix(jwt_client, owner):
    name = "Very Long Organization Name " * 6
    api = jwt_client(owner)

    first = api.post("/v1/orgs/", {"name": name}, format="json").json()["slug"]
    second = api.post("/v1/orgs/", {"name": name}, format="json").json()["slug"]

    assert len(first) <= 50
    assert second == f"{first}-2"
    assert len(second) <= 50
    assert not first.endswith("-")


def test_create_derives_a_fallback_slug_from_a_name_without_letters(jwt_client, owner):
    response = jwt_client(owner).post("/v1/orgs/", {"name": "!!!"}, format="json")

    assert response.status_code == 201
    assert response.json()["slug"] == "org"


def test_create_with_an_explicit_free_slug_uses_it(jwt_client, owner):
    response = jwt_client(owner).post("/v1/orgs/", {"name": "Acme", "slug": "acme-eu"},
                                      format="json")

    assert response.status_code == 201
    assert response.json()["slug"] == "acme-eu"


def test_create_with_an_explicit_taken_slug_is_400_naming_slug(jwt_client, owner, org, make_user):
    response = jwt_client(make_user()).post("/v1/orgs/", {"name": "Other", "slug": "acme"},
                                            format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "slug: an organization with this slug already exists."
    assert body["field"] == "slug"
    assert Organization.objects.count() == 1


@pytest.mark.parametrize("slug", ["Acme", "acme_corp", "-acme", "acme-", "acme--corp", "a c",
                                  "a", "é-corp"])
def test_create_with_an_invalid_slug_is_400_naming_slug(jwt_client, owner, slug):
    response = jwt_client(owner).post("/v1/orgs/", {"name": "Acme", "slug": slug}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("slug: ")
    assert not Organization.objects.exists()


def test_create_without_name_is_400_name_field_is_required(jwt_client, owner):
    response = jwt_client(owner).post("/v1/orgs/", {"slug": "acme"}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == "name field is required."


def test_api_key_cannot_create_an_organization(key_client, org, make_key):
    _, raw = make_key(org)

    response = key_client(raw).post("/v1/orgs/", {"name": "Sneaky"}, format="json")

    assert response.status_code == 403
    assert "API keys cannot create organizations" in response.json()["detail"]
    assert Organization.objects.count() == 1


# --- Detail --------------------------------------------------------------------------------
def test_detail_returns_the_organization_with_the_callers_role(jwt_client, org, member_user):
    response = jwt_client(member_user).get("/v1/orgs/acme/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == ORG_FIELDS
    assert body["id"] == str(org.pk)
    assert body["slug"] == "acme"
    assert body["role"] == "member"
    assert body["member_count"] == 2
    assert body["owner_email"] == "owner@example.com"
    assert body["max_storage_mb"] == 1024.0
    assert body["kb_status"] == "empty"


def test_detail_with_an_api_key_has_role_api_key(key_client, org, make_key):
    _, raw = make_key(org)

    response = key_client(raw).get("/v1/orgs/acme/")

    assert response.status_code == 200
    assert response.json()["role"] == "api_key"


@pytest.mark.parametrize("slug", ["globex", "no-such-org"])
def test_detail_of_an_organization_the_caller_is_not_in_is_404(jwt_client, owner, org, make_user,
                                                               make_org, slug):
    make_org(make_user("boss@example.com"), name="Globex", slug="globex")

    response = jwt_client(owner).get(f"/v1/orgs/{slug}/")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize("slug", ["globex", "no-such-org"])
def test_api_key_asking_for_another_organization_gets_404(key_client, org, make_user, make_org,
                                                          make_key, slug):
    make_org(make_user("boss@example.com"), name="Globex", slug="globex")
    _, raw = make_key(org)

    response = key_client(raw).get(f"/v1/orgs/{slug}/")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# --- Update --------------------------------------------------------------------------------
def test_owner_can_rename_the_organization(jwt_client, owner, org):
    response = jwt_client(owner).patch("/v1/orgs/acme/", {"name": "Acme Holdings"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Acme Holdings"
    assert body["slug"] == "acme"
    assert body["role"] == "owner"
    org.refresh_from_db()
    assert org.name == "Acme Holdings"


def test_admin_sets_allowed_domains_and_duplicates_are_removed(jwt_client, org, admin_user,
                                                               domains):
    response = jwt_client(admin_user).patch(
        "/v1/orgs/acme/", {"allowed_domains": ["bcm", "aml", "bcm"]}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["allowed_domains"] == ["bcm", "aml"]
    assert body["role"] == "admin"
    assert body["name"] == "Acme"  # partial: the name is untouched
    org.refresh_from_db()
    assert org.allowed_domains == ["bcm", "aml"]


def test_an_empty_allowed_domains_list_clears_the_restriction(jwt_client, owner, org, domains):
    Organization.objects.filter(pk=org.pk).update(allowed_domains=["bcm"])

    response = jwt_client(owner).patch("/v1/orgs/acme/", {"allowed_domains": []}, format="json")

    assert response.status_code == 200
    assert response.json()["allowed_domains"] == []
    org.refresh_from_db()
    assert org.allowed_domains == []


def test_an_unknown_domain_is_400_naming_it_and_changes_nothing(jwt_client, owner, org, domains):
    response = jwt_client(owner).patch(
        "/v1/orgs/acme/",
        {"name": "Renamed", "allowed_domains": ["bcm", "no-such-domain"]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["detail"] == 'allowed_domains: unknown domain "no-such-domain".'
    org.refresh_from_db()
    assert org.allowed_domains == []
    assert org.name == "Acme"


def test_allowed_domains_must_be_a_list(jwt_client, owner, org, domains):
    response = jwt_client(owner).patch("/v1/orgs/acme/", {"allowed_domains": "bcm"},
                                       format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("allowed_domains: ")


def test_a_blank_name_is_400_naming_name(jwt_client, owner, org):
    response = jwt_client(owner).patch("/v1/orgs/acme/", {"name": ""}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("name: ")
    org.refresh_from_db()
    assert org.name == "Acme"


def test_member_cannot_update_the_organization(jwt_client, org, member_user, domains):
    response = jwt_client(member_user).patch(
        "/v1/orgs/acme/", {"name": "Mine", "allowed_domains": ["bcm"]}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["detail"] == "Only owners and admins can change organization settings."
    org.refresh_from_db()
    assert org.name == "Acme"
    assert org.allowed_domains == []


def test_api_key_cannot_update_the_organization(key_client, org, make_key):
    _, raw = make_key(org)

    response = key_client(raw).patch("/v1/orgs/acme/", {"name": "Keyed"}, format="json")

    assert response.status_code == 403
    assert "API keys cannot" in response.json()["detail"]
    org.refresh_from_db()
    assert org.name == "Acme"

