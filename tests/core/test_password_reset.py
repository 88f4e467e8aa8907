"""Password reset (API.md 14) end to end through a real SMTP server: no enumeration, one-time
expiring links, every refresh token blacklisted, Django's password validators."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-77"
INVALID_TOKEN = {"detail": "token: invalid or expired.", "code": "invalid", "field": "token"}


def link_of(message) -> str:
    text = message.get_body(("plain",)).get_content()
    return re.search(r"https?://\S+", text).group(0)


def reset_params(message) -> dict:
    query = parse_qs(urlsplit(link_of(message)).query)
    return {"uid": query["uid"][0], "token": query["token"][0]}


def ask_reset(client, sends, email: str):
    with sends():
        return client.post("/auth/password/reset/", {"email": email}, format="json")


def confirm(client, params: dict, password: str = NEW_PASSWORD):
    return client.post("/auth/password/reset/confirm/", {**params, "new_password": password},
                       format="json")


def login(client, email: str, password: str, **extra):
    return client.post("/auth/jwt/create/", {"email": email, "password": password},
                       format="json", **extra)


def test_reset_sends_a_link_by_smtp_and_the_new_password_logs_in(client, owner, smtp, sends,
                                                                 settings):
    settings.EGRET_PUBLIC_APP_URL = "https://app.example.com"

    response = ask_reset(client, sends, "Owner@Example.com")

    assert response.status_code == 202 and response.json() == {}
    (message,) = smtp.messages
    assert message["To"] == "owner@example.com"
    assert message["From"] == settings.DEFAULT_FROM_EMAIL
    assert message["Subject"] == "Reset your Egret password"
    link = link_of(message)
    assert link.startswith("https://app.example.com/reset?uid=")
    html = message.get_body(("html",)).get_content()
    assert link.replace("&", "&amp;") in html
    assert confirm(client, reset_params(message)).json() == {}
    assert login(client, "owner@example.com", NEW_PASSWORD).status_code == 200
    assert login(client, "owner@example.com", PASSWORD).status_code == 401


def test_a_used_link_is_400_token_invalid_or_expired(client, owner, smtp, sends):
    ask_reset(client, sends, "owner@example.com")
    params = reset_params(smtp.messages[0])
    assert confirm(client, params).status_code == 200

    reused = confirm(client, params, "yet-another-passphrase-78")

    assert reused.status_code == 400
    assert reused.json() == INVALID_TOKEN
    assert login(client, "owner@example.com", NEW_PASSWORD).status_code == 200


def test_the_reset_blacklists_every_refresh_token_of_the_user(client, owner, smtp, sends):
    first = login(client, "owner@example.com", PASSWORD).json()["refresh"]
    rotated = client.post("/auth/jwt/refresh/", {"refresh": first}, format="json").json()
    other_device = login(client, "owner@example.com", PASSWORD).json()["refresh"]
    ask_reset(client, sends, "owner@example.com")
    assert confirm(client, reset_params(smtp.messages[0])).status_code == 200

    for refresh in (rotated["refresh"], other_device):
        response = client.post("/auth/jwt/refresh/", {"refresh": refresh}, format="json")
        assert response.status_code == 401
        assert response.json() == {"detail": "Token is blacklisted", "code": "token_not_valid"}


def test_an_unknown_email_gets_the_same_202_and_no_mail(client, owner, smtp, sends):
    response = ask_reset(client, sends, "nobody@example.com")

    assert response.status_code == 202 and response.json() == {}
    assert smtp.messages == []


def test_an_inactive_account_gets_no_mail(client, make_user, smtp, sends):
    make_user("gone@example.com", is_active=False)

    assert ask_reset(client, sends, "gone@example.com").status_code == 202
    assert smtp.messages == []


def test_a_link_expires_after_password_reset_timeout(client, owner, smtp, sends, settings):
    settings.PASSWORD_RESET_TIMEOUT = 3600
    ask_reset(client, sends, "owner@example.com")
    later = datetime.now(timezone.utc) + timedelta(hours=2)

    with time_machine.travel(later, tick=False):
        response = confirm(client, reset_params(smtp.messages[0]))

    assert response.status_code == 400 and response.json() == INVALID_TOKEN


@pytest.mark.parametrize("params", [
    {"uid": "bm9wZQ", "token": "abc-def"},
    {"uid": "!!!", "token": "abc"},
    {"uid": "MTIz", "token": ""},
])
def test_a_made_up_link_is_400_token_invalid(client, owner, params):
    response = confirm(client, params)

    assert response.status_code == 400
    assert response.json()["field"] in ("token",)


def test_the_password_validators_apply(client, owner, smtp, sends):
    ask_reset(client, sends, "owner@example.com")

    response = confirm(client, reset_params(smtp.messages[0]), "password")

    assert response.status_code == 400
    assert response.json()["field"] == "new_password"
    assert response.json()["detail"].startswith("new_password: This password is too common.")


def test_missing_fields_are_named(client, db):
    response = client.post("/auth/password/reset/confirm/", {"token": "x"}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == "uid field is required."


def test_a_completed_reset_unlocks_a_locked_account(client, owner, smtp, sends):
    browser = Client()  # the admin login: no throttle stands before the lockout
    for i in range(20):
        browser.post("/admin/login/", {"username": "owner@example.com", "password": f"x{i}"})
    assert login(client, "owner@example.com", PASSWORD).status_code == 429
    ask_reset(client, sends, "owner@example.com")
    assert confirm(client, reset_params(smtp.messages[0])).status_code == 200

    assert login(client, "owner@example.com", NEW_PASSWORD).status_code == 200


# --- Throttles: resets have a bucket of their own -----------------------------------------------
def reset(client, email: str, address: str):
    return client.post("/auth/password/reset/", {"email": email}, format="json",
                       REMOTE_ADDR=address)


def test_password_resets_do_not_use_up_the_login_throttle(client, owner):
    assert [reset(client, "owner@example.com", "10.0.0.1").status_code
            for _ in range(3)] == [202] * 3

    logins = [login(client, "owner@example.com", PASSWORD, REMOTE_ADDR="10.0.0.2").status_code
              for _ in range(10)]

    assert logins == [200] * 10  # the login's per-email bucket (10/min) is whole


def test_the_fourth_reset_for_one_email_within_an_hour_is_429(client, owner):
    now = datetime.now(timezone.utc)
    with time_machine.travel(now, tick=False):
        statuses = [reset(client, email, f"10.0.0.{i}").status_code for i, email in
                    enumerate(["owner@example.com", "OWNER@example.com", "owner@example.com"])]
        refused = reset(client, "owner@example.com", "10.0.0.9")
        other = reset(client, "nobody@example.com", "10.0.0.9")
    with time_machine.travel(now + timedelta(minutes=61), tick=False):
        later = reset(client, "owner@example.com", "10.0.0.9")

    assert statuses == [202] * 3
    assert refused.status_code == 429
    assert refused.json() == {"detail": "Request was throttled. Expected available in 3600 "
                                        "seconds."}
    assert refused["Retry-After"] == "3600"
    assert other.status_code == 202 and later.status_code == 202
