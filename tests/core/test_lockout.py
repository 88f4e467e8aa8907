"""Brute-force protection of the admin and API logins (django-axes, core/lockout.py): 20
failed logins lock the account for the configured time, even with the right password; the
API answers a lockout as JSON; operators unlock with a command or in admin."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOCKED = ("Too many failed login attempts: this account is locked for 15 minutes. Try again "
          "later, reset your password, or ask an operator to unlock it.")


@pytest.fixture
def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
def operator(make_user):
    return make_user("ops@example.com", is_staff=True, is_superuser=True)


def admin_login(browser: Client, password: str, email: str = "ops@example.com"):
    return browser.post("/admin/login/?next=/admin/", {"username": email, "password": password})


def api_login(client, password: str, email: str = "owner@example.com", **extra):
    return client.post("/auth/jwt/create/", {"email": email, "password": password},
                       format="json", **extra)


def fail_admin_logins(times: int, email: str = "ops@example.com") -> list[int]:
    browser = Client()
    return [admin_login(browser, f"wrong-{i}", email).status_code for i in range(times)]


def test_20_wrong_admin_passwords_lock_the_account_for_the_configured_time(operator, now):
    with time_machine.travel(now, tick=False):
        statuses = fail_admin_logins(20)
        refused = admin_login(Client(), PASSWORD)

    assert statuses == [200] * 19 + [429]  # the form again, then the lockout
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    assert refused.json() == {"detail": LOCKED, "code": "locked_out"}
    assert refused["Retry-After"] == str(15 * 60)

    with time_machine.travel(now + timedelta(minutes=14), tick=False):
        assert admin_login(Client(), PASSWORD).status_code == 429
    with time_machine.travel(now + timedelta(minutes=16), tick=False):
        browser = Client()
        response = admin_login(browser, PASSWORD)
        assert response.status_code == 302 and response["Location"] == "/admin/"
        assert browser.get("/admin/").status_code == 200


def test_19_wrong_admin_passwords_do_not_lock(operator, now):
    with time_machine.travel(now, tick=False):
        fail_admin_logins(19)
        assert admin_login(Client(), PASSWORD).status_code == 302


def test_the_lockout_counts_the_email_in_any_case(operator, now):
    with time_machine.travel(now, tick=False):
        fail_admin_logins(10, "OPS@example.com")
        fail_admin_logins(10, "ops@EXAMPLE.com")
        assert admin_login(Client(), PASSWORD).status_code == 429


def test_api_login_lockout_answers_json_429_with_retry_after(client, owner, now):
    with time_machine.travel(now, tick=False):
        # Across addresses, so the per-IP throttle (10/min) stays out of the way; the per-email
        # throttle does not: spread the attempts over minutes.
        statuses = []
        for i in range(20):
            with time_machine.travel(now + timedelta(seconds=7 * i), tick=False):
                statuses.append(api_login(client, "wrong", REMOTE_ADDR=f"10.0.0.{i}").status_code)
    with time_machine.travel(now + timedelta(minutes=3), tick=False):
        refused = api_login(client, PASSWORD, REMOTE_ADDR="10.0.1.1")

    assert statuses == [401] * 19 + [429]
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    assert refused.json() == {"detail": LOCKED, "code": "locked_out"}
    assert refused["Retry-After"] == str(15 * 60)


def test_admin_and_api_failures_count_against_one_account(client, owner, now):
    owner.is_staff = True
    owner.save()
    with time_machine.travel(now, tick=False):
        fail_admin_logins(15, "owner@example.com")
        for i in range(5):
            api_login(client, "wrong", REMOTE_ADDR=f"10.0.0.{i}")
        assert api_login(client, PASSWORD, REMOTE_ADDR="10.0.1.1").status_code == 429


def test_a_locked_account_leaves_other_accounts_alone(operator, client, owner, now):
    with time_machine.travel(now, tick=False):
        fail_admin_logins(20)
        assert api_login(client, PASSWORD).status_code == 200


def test_login_unlock_command_unlocks_the_account(operator, now, capsys):
    with time_machine.travel(now, tick=False):
        fail_admin_logins(20)
        call_command("login_unlock", "OPS@example.com")
        assert admin_login(Client(), PASSWORD).status_code == 302
    assert "ops@example.com: 1 failed-attempt record(s) removed; unlocked." in \
        capsys.readouterr().out


def test_operators_unlock_an_account_in_admin(operator, make_user, now):
    with time_machine.travel(now, tick=False):
        fail_admin_logins(20)
        attempt = AccessAttempt.objects.get(username="ops@example.com")
        other = Client()
        other.force_login(make_user("root2@example.com", is_staff=True, is_superuser=True))
        listed = other.get("/admin/axes/accessattempt/")
        assert listed.status_code == 200 and "ops@example.com" in listed.content.decode()
        other.post("/admin/axes/accessattempt/", {"action": "delete_selected", "post": "yes",
                                                  "_selected_action": [str(attempt.pk)]})
        assert admin_login(Client(), PASSWORD).status_code == 302


def test_attempts_record_the_client_address_behind_the_configured_proxies(
        client, owner, settings, now):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    with time_machine.travel(now, tick=False):
        api_login(client, "wrong", REMOTE_ADDR="10.0.0.1",
                  HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.5")
        api_login(client, "wrong", email="nobody@example.com", REMOTE_ADDR="10.0.0.1",
                  HTTP_X_FORWARDED_FOR="not-an-address")

    assert AccessAttempt.objects.get(username="owner@example.com").ip_address == "203.0.113.5"
    assert AccessAttempt.objects.get(username="nobody@example.com").ip_address == "10.0.0.1"


def test_a_successful_api_login_clears_the_accounts_failures(client, owner, now):
    # 19 failures, a success, then one more failure: the success started the count afresh, so
    # the account is not locked (the API login sends no user_logged_in signal for axes).
    statuses = []
    for i, password in enumerate(["wrong"] * 19 + [PASSWORD, "wrong"]):
        # Spread over addresses and minutes, as above, to stay under the throttles.
        with time_machine.travel(now + timedelta(seconds=7 * i), tick=False):
            statuses.append(api_login(client, password, REMOTE_ADDR=f"10.0.0.{i}").status_code)
    with time_machine.travel(now + timedelta(minutes=3), tick=False):
        after = api_login(client, PASSWORD, REMOTE_ADDR="10.0.1.1")

    assert statuses == [401] * 19 + [200, 401]
    assert after.status_code == 200
