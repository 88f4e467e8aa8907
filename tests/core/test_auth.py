"""Authentication (API.md 2): sign-up, SimpleJWT endpoints, /auth/me/ and the acting
organization."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken

from core.authentication import INVALID_API_KEY
from core.models import User
from core.tenancy import NO_ORGANIZATION
from organizations.models import ApiKey, Membership, Organization, Role
from tests.conftest import PASSWORD, access_token

pytestmark = pytest.mark.django_db

NOT_PROVIDED = "Authentication credentials were not provided."
BAD_CREDENTIALS = {"detail": "No active account found with the given credentials"}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def login(client, email: str, password: str = PASSWORD):
    return client.post("/auth/jwt/create/", {"email": email, "password": password}, format="json")


# --- Registration --------------------------------------------------------------------------
def test_register_returns_201_with_id_email_name_and_lower_cases_the_email(client):
    response = client.post(
        "/auth/register/",
        {"email": "New.Person@Example.COM", "password": PASSWORD, "name": "New Person"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "name"}
    assert body["email"] == "new.person@example.com"
    assert body["name"] == "New Person"
    user = User.objects.get(pk=body["id"])
    assert user.email == "new.person@example.com"
    assert user.check_password(PASSWORD)


def test_register_without_name_stores_an_empty_name(client):
    response = client.post("/auth/register/", {"email": "a@example.com", "password": PASSWORD},
                           format="json")

    assert response.status_code == 201
    assert response.json()["name"] == ""


def test_registered_user_can_log_in_with_the_original_casing(client):
    client.post("/auth/register/", {"email": "Mixed@Example.com", "password": PASSWORD},
                format="json")

    assert login(client, "MIXED@example.COM").status_code == 200


@pytest.mark.parametrize("password", ["password", "short7", "84736291047352"])
def test_register_with_a_weak_password_is_400_naming_password(client, password):
    response = client.post("/auth/register/", {"email": "weak@example.com", "password": password},
                           format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith("password: ")
    assert body["field"] == "password"
    assert not User.objects.filter(email="weak@example.com").exists()


def test_register_with_a_password_like_the_email_is_400_naming_password(client):
    response = client.post(
        "/auth/register/",
        {"email": "marmaduke.fitzgerald@example.com", "password": "marmaduke.fitzgerald"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("password: ")


def test_register_with_a_duplicate_email_in_another_case_is_400_naming_email(client, owner):
    response = client.post("/auth/register/", {"email": "OWNER@Example.com", "password": PASSWORD},
                           format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == "email: a user with this email already exists."
    assert User.objects.filter(email="owner@example.com").count() == 1


def test_register_without_email_is_400_email_field_is_required(client):
    response = client.post("/auth/register/", {"password": PASSWORD}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == "email field is required."


def test_register_with_an_invalid_email_is_400_naming_email(client):
    response = client.post("/auth/register/", {"email": "not-an-email", "password": PASSWORD},
                           format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("email: ")


def test_register_is_403_when_signup_is_switched_off(client, settings):
    settings.EGRET_ALLOW_SIGNUP = False

    response = client.post("/auth/register/", {"email": "late@example.com", "password": PASSWORD},
                           format="json")

    assert response.status_code == 403
    assert "sign-up is disabled" in response.json()["detail"].lower()
    assert not User.objects.filter(email="late@example.com").exists()


# --- JWT create / refresh / verify / logout ------------------------------------------------
@pytest.mark.parametrize(
    "email", ["owner@example.com", "OWNER@EXAMPLE.COM", "Owner@Example.Com", " owner@example.com "]
)
def test_jwt_create_accepts_the_email_in_any_case(client, owner, email):
    response = login(client, email)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"refresh", "access"}
    me = client.get("/auth/me/", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.status_code == 200
    assert me.json()["user"]["email"] == "owner@example.com"


def test_jwt_create_with_a_wrong_password_is_401_with_simplejwt_body(client, owner):
    response = login(client, "owner@example.com", "not-the-password-99")

    assert response.status_code == 401
    assert response.json() == BAD_CREDENTIALS


def test_jwt_create_with_an_unknown_email_is_the_same_401(client, owner):
    response = login(client, "nobody@example.com")

    assert response.status_code == 401
    assert response.json() == BAD_CREDENTIALS


def test_jwt_create_for_an_inactive_user_is_401(client, make_user):
    make_user("gone@example.com", is_active=False)

    response = login(client, "gone@example.com")

    assert response.status_code == 401
    assert response.json() == BAD_CREDENTIALS


def test_jwt_refresh_rotates_and_blacklists_the_used_refresh_token(client, owner):
    first = login(client, "owner@example.com").json()["refresh"]

    response = client.post("/auth/jwt/refresh/", {"refresh": first}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert body["refresh"] != first
    assert BlacklistedToken.objects.filter(token__token=first).exists()
    assert not BlacklistedToken.objects.filter(token__token=body["refresh"]).exists()
    me = client.get("/auth/me/", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.status_code == 200

    again = client.post("/auth/jwt/refresh/", {"refresh": first}, format="json")
    assert again.status_code == 401
    assert again.json() == {"detail": "Token is blacklisted", "code": "token_not_valid"}

    # The rotated token still works.
    assert client.post("/auth/jwt/refresh/", {"refresh": body["refresh"]},
                       format="json").status_code == 200


def test_jwt_refresh_with_garbage_is_401_short_form(client, db):
    response = client.post("/auth/jwt/refresh/", {"refresh": "not-a-token"}, format="json")

    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == "token_not_valid"


def test_jwt_refresh_of_a_deleted_users_token_is_401_token_not_valid_without_an_error_line(
        client, make_user, caplog):
    make_user("gone@example.com")
    refresh = login(client, "gone@example.com").json()["refresh"]
    User.objects.filter(email="gone@example.com").delete()

    with caplog.at_level(logging.INFO):
        response = client.post("/auth/jwt/refresh/", {"refresh": refresh}, format="json")

    assert response.status_code == 401
    assert response.json() == {"detail": "Token is invalid", "code": "token_not_valid"}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_jwt_refresh_refuses_an_access_token(client, owner):
    response = client.post("/auth/jwt/refresh/", {"refresh": access_token(owner)}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_jwt_verify_accepts_a_valid_token_with_an_empty_object(client, owner):
    response = client.post("/auth/jwt/verify/", {"token": access_token(owner)}, format="json")

    assert response.status_code == 200
    assert response.json() == {}


def test_jwt_verify_rejects_an_invalid_token_with_401_short_form(client, db):
    response = client.post("/auth/jwt/verify/", {"token": "abc.def.ghi"}, format="json")

    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == "token_not_valid"


def test_jwt_verify_rejects_an_expired_token(client, owner, time_machine):
    token = access_token(owner)
    time_machine.move_to(timezone.now() + timedelta(minutes=31))

    response = client.post("/auth/jwt/verify/", {"token": token}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_logout_blacklists_the_refresh_token(client, owner):
    refresh = login(client, "owner@example.com").json()["refresh"]

    response = client.post("/auth/jwt/logout/", {"refresh": refresh}, format="json")

    assert response.status_code == 200
    assert response.json() == {}
    assert BlacklistedToken.objects.filter(token__token=refresh).exists()
    after = client.post("/auth/jwt/refresh/", {"refresh": refresh}, format="json")
    assert after.status_code == 401
    assert after.json() == {"detail": "Token is blacklisted", "code": "token_not_valid"}


# --- Authorization header -------------------------------------------------------------------
def test_no_credentials_is_401_with_www_authenticate(client, db):
    response = client.get("/auth/me/")

    assert response.status_code == 401
    assert response.json()["detail"] == NOT_PROVIDED
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_bad_bearer_token_gets_simplejwts_full_token_not_valid_body(client, db):
    response = client.get("/auth/me/", HTTP_AUTHORIZATION="Bearer not-a-jwt")

    assert response.status_code == 401
    body = response.json()
    assert body["detail"] == "Given token not valid for any token type"
    assert body["code"] == "token_not_valid"
    assert body["messages"][0]["token_class"] == "AccessToken"
    assert body["messages"][0]["token_type"] == "access"


def test_a_refresh_token_is_not_accepted_as_a_bearer(client, owner):
    refresh = str(RefreshToken.for_user(owner))

    response = client.get("/auth/me/", HTTP_AUTHORIZATION=f"Bearer {refresh}")

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_a_malformed_api_key_is_401_with_the_api_key_message(client, db):
    response = client.get("/auth/me/", HTTP_AUTHORIZATION="Bearer egret_short")

    assert response.status_code == 401
    assert response.json()["detail"] == INVALID_API_KEY


def test_a_well_formed_unknown_api_key_is_401_with_the_same_message(client, db):
    from core import keyformat

    response = client.get("/auth/me/", HTTP_AUTHORIZATION=f"Bearer {keyformat.generate()}")

    assert response.status_code == 401
    assert response.json()["detail"] == INVALID_API_KEY


def test_x_api_key_header_is_accepted(client, org, make_key):
    _, raw = make_key(org)

    response = client.get("/auth/me/", HTTP_X_API_KEY=raw)

    assert response.status_code == 200
    assert response.json()["type"] == "api_key"


def test_authorization_header_wins_over_x_api_key(client, owner, org, make_key):
    _, raw = make_key(org)

    response = client.get("/auth/me/", HTTP_AUTHORIZATION=f"Bearer {access_token(owner)}",
                          HTTP_X_API_KEY=raw)

    assert response.status_code == 200
    assert response.json()["type"] == "user"


def test_an_expired_api_key_is_401(client, org, make_key):
    key, raw = make_key(org, expires_at=timezone.now() + timedelta(minutes=5))
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client.get("/auth/me/", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 401
    assert response.json()["detail"] == INVALID_API_KEY


# --- /auth/me/ and the acting organization --------------------------------------------------
def test_me_for_a_user_without_organization_has_organization_null(jwt_client, make_user):
    user = make_user("solo@example.com", name="Solo")

    response = jwt_client(user).get("/auth/me/")

    assert response.status_code == 200
    assert response.json() == {
        "type": "user",
        "user": {"id": str(user.pk), "email": "solo@example.com", "name": "Solo"},
        "api_key": None,
        "organization": None,
    }


def test_me_for_a_user_whose_only_organization_is_deactivated_has_organization_null(
    jwt_client, owner, org
):
    Organization.objects.filter(pk=org.pk).update(is_active=False)

    response = jwt_client(owner).get("/auth/me/")

    assert response.status_code == 200
    assert response.json()["organization"] is None


def test_me_skips_a_deactivated_default_organization(jwt_client, owner, org, make_org):
    make_org(owner, name="Later", slug="later")
    Organization.objects.filter(pk=org.pk).update(is_active=False)

    response = jwt_client(owner).get("/auth/me/")

    assert response.status_code == 200
    assert response.json()["organization"] == {"slug": "later", "name": "Later", "role": "owner"}


def test_me_uses_the_first_joined_organization_by_default(jwt_client, make_user, make_org):
    user = make_user("many@example.com")
    boss = make_user("boss@example.com")
    created_first = make_org(boss, name="Older", slug="older")
    joined_first = make_org(boss, name="Newer", slug="newer")
    now = timezone.now()
    Membership.objects.create(organization=joined_first, user=user, role=Role.ADMIN,
                              joined_at=now - timedelta(days=2))
    Membership.objects.create(organization=created_first, user=user, role=Role.MEMBER,
                              joined_at=now - timedelta(days=1))

    response = jwt_client(user).get("/auth/me/")

    assert response.status_code == 200
    assert response.json()["organization"] == {"slug": "newer", "name": "Newer", "role": "admin"}


def test_me_with_x_organization_acts_in_that_organization(jwt_client, owner, org, make_user,
                                                          make_org, add_member):
    other = make_org(make_user("boss@example.com"), name="Globex", slug="globex")
    add_member(other, owner, Role.MEMBER)

    response = jwt_client(owner, other).get("/auth/me/")

    assert response.status_code == 200
    assert response.json()["organization"] == {"slug": "globex", "name": "Globex",
                                               "role": "member"}
    default = jwt_client(owner).get("/auth/me/").json()["organization"]
    assert default == {"slug": "acme", "name": "Acme", "role": "owner"}


@pytest.mark.parametrize("slug", ["globex", "does-not-exist"])
def test_me_with_x_organization_of_a_non_member_org_is_404(client, owner, org, make_user,
                                                           make_org, slug):
    make_org(make_user("boss@example.com"), name="Globex", slug="globex")

    response = client.get("/auth/me/", HTTP_AUTHORIZATION=f"Bearer {access_token(owner)}",
                          HTTP_X_ORGANIZATION=slug)

    assert response.status_code == 404
    assert response.json() == {"detail": "Organization not found."}


def test_me_with_an_api_key_describes_the_key_and_its_organization(key_client, owner, org,
                                                                   make_key):
    key, raw = make_key(org, name="deploy bot")

    response = key_client(raw).get("/auth/me/")

    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "api_key"
    assert body["user"] is None
    assert body["organization"] == {"slug": "acme", "name": "Acme", "role": "api_key"}
    assert body["api_key"]["id"] == str(key.pk)
    assert body["api_key"]["name"] == "deploy bot"
    assert body["api_key"]["key_prefix"] == raw[:20]
    assert raw not in response.content.decode()
    assert "digest" not in body["api_key"]


def test_a_user_without_organization_is_told_to_create_one(jwt_client, make_user):
    user = make_user("solo@example.com")

    response = jwt_client(user).get("/v1/billings/api-keys/")

    assert response.status_code == 403
    assert response.json()["detail"] == NO_ORGANIZATION
    assert "Create one with POST /v1/orgs/" in NO_ORGANIZATION
