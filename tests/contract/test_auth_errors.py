"""API.md 1 and 2: the exact 401 bodies for bad JWTs, bad API keys and missing credentials."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt
import pytest
import time_machine
from django.utils import timezone as dj_timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from core import keyformat
from organizations import services as org_services
from organizations.models import ApiKey
from tests.conftest import access_token

INVALID_KEY = {
    "detail": "Invalid or expired API key. Check that the key is active and has not expired."
}
NO_CREDENTIALS = {"detail": "Authentication credentials were not provided."}


# The public Egret API's text for every bad access token (API.md 1), whatever SimpleJWT's
# reason ("Token is expired", "Token is invalid", "Token has wrong type").
DOCUMENTED_MESSAGE = "Token is invalid or expired"


def token_not_valid() -> dict:
    return {
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [
            {"token_class": "AccessToken", "token_type": "access", "message": DOCUMENTED_MESSAGE}
        ],
    }


def bearer(token: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def x_api_key(raw: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_X_API_KEY=raw)
    return api


HEADER_STYLES = {"authorization": bearer, "x-api-key": x_api_key}


def assert_invalid_key(response) -> None:
    assert response.status_code == 401
    assert response.json() == INVALID_KEY
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def _with_checksum(body: str) -> str:
    return body + keyformat.checksum(body)


# --- JWT ------------------------------------------------------------------------------------
def test_access_token_still_works_29_minutes_after_issue(owner):
    token = access_token(owner)
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(minutes=29), tick=False):
        response = bearer(token).get("/auth/me/")
    assert response.status_code == 200
    assert response.json()["user"]["email"] == "owner@example.com"


def test_expired_access_token_gets_token_not_valid_401_with_the_documented_message(owner):
    token = access_token(owner)
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(minutes=31), tick=False):
        response = bearer(token).get("/auth/me/")
    assert response.status_code == 401
    assert response.json() == token_not_valid()
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_expired_access_token_gets_401_on_org_endpoints_too(owner, org):
    token = access_token(owner)
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(minutes=31), tick=False):
        response = bearer(token).get("/v1/orgs/")
    assert response.status_code == 401
    assert response.json() == token_not_valid()


def test_tampered_access_token_signature_gets_token_not_valid_401_with_the_documented_message(
        owner):
    token = access_token(owner)
    header, payload, signature = token.split(".")
    # Flip a character in the middle: the last one only carries base64 padding bits.
    i = len(signature) // 2
    flipped = "A" if signature[i] != "A" else "B"
    tampered = ".".join([header, payload, signature[:i] + flipped + signature[i + 1:]])
    assert tampered != token

    response = bearer(tampered).get("/auth/me/")

    assert response.status_code == 401
    assert response.json() == token_not_valid()


def test_tampered_access_token_payload_gets_token_not_valid_401(owner, make_user):
    other = make_user("mallory@example.com")
    token = access_token(owner)
    header, _payload, signature = token.split(".")
    forged_claims = jwt.decode(token, options={"verify_signature": False})
    forged_claims["user_id"] = str(other.pk)
    forged_payload = jwt.encode(forged_claims, "x" * 32, algorithm="HS256").split(".")[1]

    response = bearer(".".join([header, forged_payload, signature])).get("/auth/me/")

    assert response.status_code == 401
    assert response.json() == token_not_valid()


def test_access_token_signed_with_another_key_gets_token_not_valid_401(owner):
    claims = jwt.decode(access_token(owner), options={"verify_signature": False})
    foreign = jwt.encode(claims, "not-the-server-signing-key-" + "z" * 20, algorithm="HS256")

    response = bearer(foreign).get("/auth/me/")

    assert response.status_code == 401
    assert response.json() == token_not_valid()


def test_refresh_token_used_as_access_token_gets_token_not_valid_401(owner):
    refresh = str(RefreshToken.for_user(owner))

    response = bearer(refresh).get("/auth/me/")

    assert response.status_code == 401
    assert response.json() == token_not_valid()


def test_garbage_bearer_token_gets_token_not_valid_401(db):
    response = bearer("not-a-jwt").get("/auth/me/")

    assert response.status_code == 401
    assert response.json() == token_not_valid()


# --- API keys ---------------------------------------------------------------------------------
@pytest.mark.parametrize("style", sorted(HEADER_STYLES))
def test_active_api_key_is_accepted(style, org, make_key):
    _key, raw = make_key(org)

    response = HEADER_STYLES[style](raw).get("/auth/me/")

    assert response.status_code == 200
    assert response.json()["type"] == "api_key"
    assert response.json()["organization"]["slug"] == "acme"


@pytest.mark.parametrize("style", sorted(HEADER_STYLES))
def test_unknown_well_formed_api_key_gets_401_after_one_lookup(
    style, org, make_key, django_assert_num_queries
):
    make_key(org)  # the table is not empty
    raw = keyformat.generate()
    assert keyformat.is_well_formed(raw)
    api = HEADER_STYLES[style](raw)

    with django_assert_num_queries(1):
        response = api.get("/auth/me/")

    assert_invalid_key(response)


MALFORMED_KEYS = {
    "too_short": lambda: keyformat.generate()[:-1],
    "too_long": lambda: keyformat.generate() + "0",
    "prefix_only": lambda: "egret_",
    "bad_alphabet": lambda: _with_checksum("egret_" + "-" * 34),
    "bad_alphabet_underscore": lambda: _with_checksum("egret_" + "a_" * 17),
    "non_ascii": lambda: "egret_" + "\u00e9" * 40,
    "bad_checksum": lambda: (
        lambda raw: raw[:-1] + ("0" if raw[-1] != "0" else "1")
    )(keyformat.generate()),
    "checksum_of_other_body": lambda: keyformat.generate()[:40] + keyformat.generate()[40:],
}


@pytest.mark.parametrize("style", sorted(HEADER_STYLES))
@pytest.mark.parametrize("case", sorted(MALFORMED_KEYS))
def test_malformed_api_key_gets_401_without_touching_the_database(
    case, style, org, make_key, django_assert_num_queries
):
    make_key(org)
    raw = MALFORMED_KEYS[case]()
    assert raw.startswith("egret_")
    assert not keyformat.is_well_formed(raw)
    api = HEADER_STYLES[style](raw)

    with django_assert_num_queries(0):
        response = api.get("/auth/me/")

    assert_invalid_key(response)


def test_non_egret_value_in_x_api_key_gets_invalid_key_401(db, django_assert_num_queries):
    api = x_api_key("sk-live-1234567890")

    with django_assert_num_queries(0):
        response = api.get("/auth/me/")

    assert_invalid_key(response)


@pytest.mark.parametrize("style", sorted(HEADER_STYLES))
def test_revoked_key_gets_401(style, org, make_key):
    key, raw = make_key(org)
    api = HEADER_STYLES[style](raw)
    assert api.get("/auth/me/").status_code == 200

    org_services.api_key_revoke(key)

    assert_invalid_key(api.get("/auth/me/"))


@pytest.mark.parametrize("style", sorted(HEADER_STYLES))
def test_key_past_its_expires_at_gets_401(style, org, make_key):
    key, raw = make_key(org)
    api = HEADER_STYLES[style](raw)
    assert api.get("/auth/me/").status_code == 200

    ApiKey.objects.filter(pk=key.pk).update(
        expires_at=dj_timezone.now() - timedelta(seconds=1)
    )

    assert_invalid_key(api.get("/auth/me/"))


def test_key_stops_working_when_its_expiry_time_arrives(org, make_key):
    expires_at = dj_timezone.now() + timedelta(hours=1)
    _key, raw = make_key(org, expires_at=expires_at)
    api = bearer(raw)

    with time_machine.travel(expires_at - timedelta(seconds=5), tick=False):
        assert api.get("/auth/me/").status_code == 200
    with time_machine.travel(expires_at + timedelta(seconds=1), tick=False):
        response = api.get("/auth/me/")

    assert_invalid_key(response)


@pytest.mark.parametrize("style", sorted(HEADER_STYLES))
def test_rotated_away_key_gets_401_and_new_secret_works(style, org, make_key):
    key, old_raw = make_key(org)
    assert HEADER_STYLES[style](old_raw).get("/auth/me/").status_code == 200

    new_raw = org_services.api_key_rotate(key)

    assert_invalid_key(HEADER_STYLES[style](old_raw).get("/auth/me/"))
    fresh = HEADER_STYLES[style](new_raw).get("/auth/me/")
    assert fresh.status_code == 200
    assert fresh.json()["api_key"]["id"] == str(key.pk)


def test_key_rotated_through_the_api_stops_working_at_once(owner, org, make_key, jwt_client):
    key, old_raw = make_key(org)
    assert bearer(old_raw).get("/auth/me/").status_code == 200

    rotated = jwt_client(owner, org).post(f"/v1/billings/api-keys/{key.pk}/rotate/")

    assert rotated.status_code == 200
    assert_invalid_key(bearer(old_raw).get("/auth/me/"))
    assert bearer(rotated.json()["key"]).get("/auth/me/").status_code == 200


# --- Which header wins ---------------------------------------------------------------------
def test_invalid_authorization_key_wins_over_valid_x_api_key(org, make_key):
    _key, raw = make_key(org)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {keyformat.generate()}", HTTP_X_API_KEY=raw)

    assert_invalid_key(api.get("/auth/me/"))


def test_valid_authorization_key_wins_over_invalid_x_api_key(org, make_key):
    key, raw = make_key(org)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_X_API_KEY="egret_garbage")

    response = api.get("/auth/me/")

    assert response.status_code == 200
    assert response.json()["api_key"]["id"] == str(key.pk)


def test_invalid_jwt_in_authorization_wins_over_valid_x_api_key(org, make_key):
    _key, raw = make_key(org)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt", HTTP_X_API_KEY=raw)

    response = api.get("/auth/me/")

    assert response.status_code == 401
    assert response.json() == token_not_valid()


def test_valid_jwt_in_authorization_wins_over_invalid_x_api_key(owner, org):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(owner)}",
                    HTTP_X_API_KEY=keyformat.generate())

    response = api.get("/auth/me/")

    assert response.status_code == 200
    assert response.json()["type"] == "user"
    assert response.json()["user"]["email"] == "owner@example.com"


# --- No credentials -----------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/auth/me/", "/v1/orgs/", "/v1/billings/api-keys/"])
def test_no_credentials_gets_401_with_www_authenticate(path, client, db):
    response = client.get(path)

    assert response.status_code == 401
    assert response.json() == NO_CREDENTIALS
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_no_credentials_on_post_gets_401_not_403_or_400(client, db):
    response = client.post("/v1/orgs/", {}, format="json")

    assert response.status_code == 401
    assert response.json() == NO_CREDENTIALS
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_empty_x_api_key_counts_as_no_credentials(db):
    api = APIClient()
    api.credentials(HTTP_X_API_KEY="   ")

    response = api.get("/auth/me/")

    assert response.status_code == 401
    assert response.json() == NO_CREDENTIALS
