"""Request bodies take only the fields their endpoint uses (core/strict.py): a read-only field
(one the answer shows, like an organization's `plan`) or an unknown one is a 400 that names
it, and nothing changes. Every write endpoint that reads a body is covered here."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from assistant.models import ChatSession
from billing.models import LedgerEntry, Reservation
from core.models import User
from knowledge.models import Category, Document, Domain
from organizations.models import ApiKey, Invitation, Membership, Organization

PLAN_DETAIL = "plan: cannot be changed through the API; plans are changed by an operator."


def unknown(field: str) -> dict:
    return {"detail": f"{field}: unknown field.", "code": "unknown_field", "field": field}


def read_only(field: str, reason: str = "read-only field; it cannot be set through this "
                                        "endpoint.") -> dict:
    return {"detail": f"{field}: {reason}", "code": "read_only", "field": field}


@pytest.fixture
def api(org, owner, jwt_client) -> APIClient:
    return jwt_client(owner, org)


def test_patching_the_plan_of_an_organization_is_400_and_changes_nothing(api, org):
    response = api.patch("/v1/orgs/acme/", {"name": "Renamed", "plan": "enterprise"},
                         format="json")
    assert response.status_code == 400
    assert response.json() == {"detail": PLAN_DETAIL, "code": "read_only", "field": "plan"}
    org.refresh_from_db()
    assert (org.name, org.plan.slug) == ("Acme", "starter")


@pytest.mark.parametrize("body, expected", [
    ({"slug": "other"}, read_only("slug", "cannot be changed; it names the organization in "
                                          "every URL.")),
    ({"id": "7d0c4b8e-3c1a-4f7e-9b2d-1a2b3c4d5e6f"}, read_only("id", "is assigned by the "
                                                                     "service.")),
    ({"member_count": 1}, read_only("member_count")),
    ({"is_active": False}, read_only("is_active")),
    ({"nmae": "typo"}, unknown("nmae")),
])
def test_other_fields_an_organization_patch_cannot_set(api, org, body, expected):
    response = api.patch("/v1/orgs/acme/", {"name": "Renamed", **body}, format="json")
    assert (response.status_code, response.json()) == (400, expected)
    org.refresh_from_db()
    assert (org.slug, org.name, org.is_active) == ("acme", "Acme", True)


def test_the_first_refused_field_in_the_order_sent_is_named(api):
    response = api.patch("/v1/orgs/acme/", {"colour": "red", "plan": "free"}, format="json")
    assert response.json() == unknown("colour")


def test_a_valid_patch_still_works(api, org):
    response = api.patch("/v1/orgs/acme/", {"name": "Renamed"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Renamed"


def test_creating_an_organization_with_a_plan_is_400(owner, jwt_client):
    before = Organization.objects.count()
    response = jwt_client(owner).post("/v1/orgs/", {"name": "Beta", "plan": "enterprise"},
                                      format="json")
    assert response.status_code == 400 and response.json()["detail"] == PLAN_DETAIL
    response = jwt_client(owner).post("/v1/orgs/", {"name": "Beta", "owner": "me"},
                                      format="json")
    assert response.json() == unknown("owner")
    assert Organization.objects.count() == before


def test_adding_a_member_refuses_fields_it_does_not_take(api, org, make_user):
    make_user("bob@example.com")
    response = api.post("/v1/orgs/acme/members/", {"email": "bob@example.com",
                                                   "joined_at": "2026-01-01T00:00:00Z"},
                        format="json")
    assert (response.status_code, response.json()) == (400, read_only("joined_at"))
    response = api.post("/v1/orgs/acme/members/", {"email": "new@example.com", "admin": True},
                        format="json")
    assert response.json() == unknown("admin")
    assert Membership.objects.filter(organization=org).count() == 1
    assert not Invitation.objects.exists()


def test_changing_a_role_refuses_fields_it_does_not_take(api, org, make_user, add_member):
    bob = make_user("bob@example.com")
    add_member(org, bob)
    response = api.patch(f"/v1/orgs/acme/members/{bob.pk}/",
                         {"role": "admin", "email": "robert@example.com"}, format="json")
    assert (response.status_code, response.json()) == (400, read_only("email"))
    membership = Membership.objects.get(organization=org, user=bob)
    assert membership.role == "member"
    bob.refresh_from_db()
    assert bob.email == "bob@example.com"


def test_accepting_an_invitation_refuses_unknown_fields(api, client):
    api.post("/v1/orgs/acme/members/", {"email": "new@example.com"}, format="json")
    response = client.post("/auth/invitations/accept/",
                           {"token": "x" * 40, "password": "a-long-password-42",
                            "role": "owner"}, format="json")
    assert (response.status_code, response.json()) == (400, unknown("role"))
    assert not User.objects.filter(email="new@example.com").exists()


def test_creating_an_api_key_refuses_the_key_itself_and_unknown_fields(api, org):
    response = api.post("/v1/billings/api-keys/", {"name": "ci", "key": "egret_" + "a" * 40},
                        format="json")
    assert (response.status_code, response.json()) == (400, read_only(
        "key", "is generated by the service and shown once, in the answer that creates it."))
    response = api.post("/v1/billings/api-keys/", {"name": "ci", "scopes": ["read"]},
                        format="json")
    assert response.json() == unknown("scopes")
    assert not ApiKey.objects.filter(organization=org).exists()


def test_updating_an_api_key_refuses_read_only_fields(api, org, make_key):
    key, _raw = make_key(org, name="ci")
    response = api.patch(f"/v1/billings/api-keys/{key.pk}/update/",
                         {"name": "renamed", "key_prefix": "egret_xx"}, format="json")
    assert (response.status_code, response.json()) == (400, read_only("key_prefix"))
    response = api.patch(f"/v1/billings/api-keys/{key.pk}/update/",
                         {"name": "renamed", "revoked": True}, format="json")
    assert response.json() == unknown("revoked")
    key.refresh_from_db()
    assert (key.name, key.key_prefix, key.revoked_at) == ("ci", _raw[:len(key.key_prefix)], None)


def test_a_query_with_an_unknown_field_is_400_and_spends_nothing(api, org):
    response = api.post("/v1/query/", {"query": "How fast must we notify?", "domain": "privacy",
                                       "category": "eu", "mode": "compliance",
                                       "temperature": 0.2}, format="json")
    assert (response.status_code, response.json()) == (400, unknown("temperature"))
    assert not Reservation.objects.exists()
    assert not LedgerEntry.objects.filter(kind="query_charge").exists()


def test_renaming_a_session_refuses_read_only_fields(api, org, owner):
    domain = Domain.objects.create(slug="privacy", name="Privacy")
    category = Category.objects.create(domain=domain, code="eu", name="EU")
    session = ChatSession.objects.create(organization=org, domain=domain, category=category,
                                         title="First", created_by=owner)
    response = api.post(f"/v1/sessions/{session.pk}/rename/",
                        {"title": "Second", "message_count": 0}, format="json")
    assert (response.status_code, response.json()) == (400, read_only("message_count"))
    session.refresh_from_db()
    assert session.title == "First"


def test_uploading_a_document_refuses_fields_it_does_not_take(api, org, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    for field, expected in (("status", read_only("status")), ("visibility", unknown(
            "visibility"))):
        upload = SimpleUploadedFile("policy.md", b"# Policy\n\nKeep records for five years.\n",
                                    content_type="text/markdown")
        response = api.post("/v1/documents/", {"file": upload, field: "ready"},
                            format="multipart")
        assert (response.status_code, response.json()) == (400, expected)
    assert not Document.objects.exists()


def test_registering_refuses_fields_it_does_not_take(db, client):
    body = {"email": "eve@example.com", "password": "a-long-password-42"}
    response = client.post("/auth/register/", {**body, "is_staff": True}, format="json")
    assert (response.status_code, response.json()) == (400, unknown("is_staff"))
    response = client.post("/auth/register/", {**body, "id": "1"}, format="json")
    assert response.json() == read_only("id", "is assigned by the service.")
    assert not User.objects.filter(email="eve@example.com").exists()


def test_password_reset_bodies_refuse_unknown_fields(client, owner):
    response = client.post("/auth/password/reset/", {"email": owner.email, "lang": "fr"},
                           format="json")
    assert (response.status_code, response.json()) == (400, unknown("lang"))
    response = client.post("/auth/password/reset/confirm/",
                           {"uid": "x", "token": "y", "new_password": "a-long-password-42",
                            "email": owner.email}, format="json")
    assert (response.status_code, response.json()) == (400, unknown("email"))


def test_jwt_bodies_refuse_unknown_and_read_only_fields(client, owner):
    from tests.conftest import PASSWORD

    response = client.post("/auth/jwt/create/", {"email": owner.email, "password": PASSWORD,
                                                 "otp": "123456"}, format="json")
    assert (response.status_code, response.json()) == (400, unknown("otp"))
    refresh = RefreshToken.for_user(owner)
    response = client.post("/auth/jwt/refresh/", {"refresh": str(refresh),
                                                  "access": "x"}, format="json")
    assert (response.status_code, response.json()) == (400, read_only("access"))
    response = client.post("/auth/jwt/verify/", {"token": str(refresh.access_token),
                                                 "type": "access"}, format="json")
    assert (response.status_code, response.json()) == (400, unknown("type"))
    response = client.post("/auth/jwt/logout/", {"refresh": str(refresh), "all": True},
                           format="json")
    assert (response.status_code, response.json()) == (400, unknown("all"))
    # The refresh token was neither rotated nor blacklisted by the refused requests.
    assert client.post("/auth/jwt/refresh/", {"refresh": str(refresh)},
                       format="json").status_code == 200
