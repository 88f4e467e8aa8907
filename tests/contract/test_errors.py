"""API.md 1: every error, from every URL, is a JSON object with a `detail` string."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from django.middleware.common import CommonMiddleware
from rest_framework.test import APIClient

from core import views as core_views
from core.throttles import PrincipalRateThrottle
from tests.conftest import PASSWORD
from tests.contract.conftest import logged_request_id

SERVER_ERROR = (
    "The server could not complete the request because of an unexpected error. "
    "Please retry in a moment; if it persists, contact support with the request_id."
)
SECRET_MESSAGE = "boom: password=hunter2 at /srv/egret/internal.py"


def assert_json(response) -> dict:
    assert response["Content-Type"].startswith("application/json")
    return response.json()


# --- Routing: unknown URLs, missing slash, wrong method -----------------------------------------
@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_unknown_url_gets_json_404(method, client, db):
    response = getattr(client, method)("/no/such/thing/")

    assert response.status_code == 404
    assert assert_json(response) == {"detail": "Not found."}


def test_unknown_url_is_json_even_when_client_asks_for_html(client, db):
    response = client.get("/no/such/thing/", HTTP_ACCEPT="text/html")

    assert response.status_code == 404
    assert assert_json(response) == {"detail": "Not found."}


def test_unknown_url_under_v1_gets_json_404_not_401(client, db):
    response = client.get("/v1/nothing-here/")

    assert response.status_code == 404
    assert assert_json(response) == {"detail": "Not found."}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/orgs"),
        ("post", "/v1/orgs"),
        ("post", "/auth/jwt/create"),
        ("get", "/health"),
        ("get", "/v1/orgs/acme"),
        ("get", "/v1/billings/api-keys"),
    ],
)
def test_missing_trailing_slash_gets_404_naming_the_canonical_path(method, path, client, db):
    response = getattr(client, method)(path)

    assert response.status_code == 404
    assert assert_json(response) == {
        "detail": f"Not found. Did you mean {path}/ ? All paths end with a slash."
    }


def test_missing_slash_on_a_path_that_does_not_exist_with_one_is_plain_404(client, db):
    response = client.get("/v1/nothing-here")

    assert response.status_code == 404
    assert assert_json(response) == {"detail": "Not found."}


def test_wrong_method_gets_json_405(owner, org, jwt_client):
    response = jwt_client(owner, org).delete("/v1/orgs/")

    assert response.status_code == 405
    assert assert_json(response) == {"detail": 'Method "DELETE" not allowed.'}


def test_wrong_method_on_api_keys_gets_json_405(owner, org, jwt_client):
    response = jwt_client(owner, org).put("/v1/billings/api-keys/", {}, format="json")

    assert response.status_code == 405
    assert assert_json(response) == {"detail": 'Method "PUT" not allowed.'}


# --- Bodies: malformed JSON, wrong media type, Accept -----------------------------------------
def test_malformed_json_gets_400_with_detail(owner, org, jwt_client):
    response = jwt_client(owner, org).generic(
        "POST", "/v1/orgs/", '{"name": "Acme", }', content_type="application/json"
    )

    assert response.status_code == 400
    body = assert_json(response)
    assert set(body) == {"detail"}
    assert body["detail"].startswith("JSON parse error - ")


def test_truncated_json_gets_400_with_exact_parse_error(owner, org, jwt_client):
    response = jwt_client(owner, org).generic(
        "POST", "/v1/orgs/", "{bad", content_type="application/json"
    )

    assert response.status_code == 400
    assert assert_json(response) == {
        "detail": "JSON parse error - Expecting property name enclosed in double quotes: "
                  "line 1 column 2 (char 1)"
    }


def test_json_array_body_gets_400_asking_for_an_object(owner, org, jwt_client):
    response = jwt_client(owner, org).post("/v1/orgs/", [], format="json")

    assert response.status_code == 400
    assert assert_json(response) == {
        "detail": "The request body must be a JSON object.", "code": "invalid"
    }


def test_form_encoded_body_gets_json_415(owner, org, jwt_client):
    response = jwt_client(owner, org).generic(
        "POST", "/v1/orgs/", "name=Acme", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
    assert assert_json(response) == {
        "detail": 'Unsupported media type "application/x-www-form-urlencoded" in request.'
    }


def test_multipart_body_on_a_json_endpoint_gets_json_415(owner, org, jwt_client):
    response = jwt_client(owner, org).post("/v1/orgs/", {"name": "Acme"}, format="multipart")

    assert response.status_code == 415
    body = assert_json(response)
    assert body["detail"].startswith('Unsupported media type "multipart/form-data')


def test_accept_html_only_gets_json_406(owner, org, jwt_client):
    response = jwt_client(owner, org).get("/v1/orgs/", HTTP_ACCEPT="text/html")

    assert response.status_code == 406
    assert assert_json(response) == {"detail": "Could not satisfy the request Accept header."}


def test_browser_accept_header_with_wildcard_gets_json(owner, org, jwt_client):
    response = jwt_client(owner, org).get(
        "/v1/orgs/",
        HTTP_ACCEPT="text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


# --- 400 field naming --------------------------------------------------------------------------
def test_missing_field_is_named_in_400(owner, org, jwt_client):
    response = jwt_client(owner, org).post("/v1/orgs/", {}, format="json")

    assert response.status_code == 400
    assert assert_json(response) == {
        "detail": "name field is required.", "code": "required", "field": "name"
    }


def test_null_field_is_named_in_400(owner, org, jwt_client):
    response = jwt_client(owner, org).post("/v1/orgs/", {"name": None}, format="json")

    assert response.status_code == 400
    assert assert_json(response) == {
        "detail": "name may not be null.", "code": "null", "field": "name"
    }


def test_invalid_choice_is_named_with_the_bad_value(owner, org, jwt_client, make_user):
    make_user("new@example.com")

    response = jwt_client(owner, org).post(
        "/v1/orgs/acme/members/", {"email": "new@example.com", "role": "boss"}, format="json"
    )

    assert response.status_code == 400
    assert assert_json(response) == {
        "detail": 'role: "boss" is not a valid choice.',
        "code": "invalid_choice",
        "field": "role",
    }


def test_first_invalid_field_in_declared_order_is_reported(owner, org, jwt_client):
    response = jwt_client(owner, org).post(
        "/v1/orgs/acme/members/", {"email": "not-an-email", "role": "boss"}, format="json"
    )

    assert response.status_code == 400
    assert assert_json(response) == {
        "detail": "email: Enter a valid email address.", "code": "invalid", "field": "email"
    }


def test_list_item_error_names_the_field_not_the_index(owner, org, jwt_client):
    response = jwt_client(owner, org).patch(
        "/v1/orgs/acme/", {"allowed_domains": ["no-such-domain"]}, format="json"
    )

    assert response.status_code == 400
    assert assert_json(response) == {
        "detail": 'allowed_domains: unknown domain "no-such-domain".',
        "code": "invalid",
        "field": "allowed_domains",
    }


def test_object_in_url_is_looked_up_before_the_body_is_validated(owner, org, jwt_client):
    response = jwt_client(owner, org).patch("/v1/orgs/nope/", {"name": None}, format="json")

    assert response.status_code == 404
    assert assert_json(response) == {"detail": "Organization not found."}


# --- 500: unhandled exceptions --------------------------------------------------------------
def _boom(*args, **kwargs):
    raise RuntimeError(SECRET_MESSAGE)


def assert_generic_500(response) -> str:
    assert response.status_code == 500
    body = assert_json(response)
    request_id = response["X-Request-ID"]
    assert body == {"detail": SERVER_ERROR, "request_id": request_id}
    text = response.content.decode()
    for leak in ("Traceback", "RuntimeError", "hunter2", "internal.py", 'File "'):
        assert leak not in text
    return request_id


def test_exception_in_a_drf_view_gets_generic_json_500_with_request_id(
    owner, org, jwt_client, monkeypatch
):
    monkeypatch.setattr(core_views.MeView, "get", _boom)

    response = jwt_client(owner, org).get("/auth/me/")

    request_id = assert_generic_500(response)
    assert len(request_id) == 32


def test_500_echoes_the_clients_request_id_in_body_and_header(owner, org, jwt_client,
                                                              monkeypatch):
    monkeypatch.setattr(core_views.MeView, "get", _boom)

    response = jwt_client(owner, org).get("/auth/me/", HTTP_X_REQUEST_ID="client-req-42")

    assert assert_generic_500(response) == "client-req-42"


def test_500_is_logged_with_traceback_and_the_same_request_id(
    owner, org, jwt_client, monkeypatch, console_log, caplog
):
    monkeypatch.setattr(core_views.MeView, "get", _boom)

    response = jwt_client(owner, org).get("/auth/me/")

    request_id = assert_generic_500(response)
    # The record itself: logged by our handler, at ERROR, with the exception attached.
    records = [r for r in caplog.records if r.name == "egret.errors"]
    assert len(records) == 1
    assert records[0].levelname == "ERROR"
    assert records[0].getMessage() == "Unhandled exception on GET /auth/me/"
    assert records[0].exc_info[0] is RuntimeError
    # The configured console handler stamps the id on the line (RequestIDFilter + formatter).
    output = console_log.getvalue()
    lines = [line for line in output.splitlines() if "Unhandled exception on GET /auth/me/" in line]
    assert len(lines) == 1
    assert logged_request_id(lines[0]) == request_id
    assert SECRET_MESSAGE in output  # the traceback goes to the log, not to the client


def test_exception_in_a_plain_django_view_gets_generic_json_500(
    client, db, monkeypatch, console_log
):
    # The catch-all not_found view (not DRF) resolves the slashed path; make that blow up.
    monkeypatch.setattr(core_views, "resolve", _boom)

    response = client.get("/v1/orgs", HTTP_X_REQUEST_ID="plain-view-1")

    assert assert_generic_500(response) == "plain-view-1"
    lines = [line for line in console_log.getvalue().splitlines()
             if "Unhandled exception on GET /v1/orgs" in line]
    assert len(lines) == 1
    assert logged_request_id(lines[0]) == "plain-view-1"


def test_exception_in_middleware_gets_generic_json_500(db, monkeypatch):
    monkeypatch.setattr(CommonMiddleware, "process_request", _boom)
    api = APIClient(raise_request_exception=False)

    response = api.get("/health/", HTTP_X_REQUEST_ID="mw-boom-7")

    assert assert_generic_500(response) == "mw-boom-7"


# --- 429 ---------------------------------------------------------------------------------------
@pytest.fixture
def now() -> datetime:
    """Real time, frozen by each test (tokens issued now must not be "not yet valid")."""
    return datetime.now(timezone.utc)


@pytest.fixture
def three_per_minute(monkeypatch):
    # DRF binds THROTTLE_RATES at import, so the settings fixture cannot lower it; set the rate.
    monkeypatch.setattr(PrincipalRateThrottle, "rate", "3/min", raising=False)


def test_user_over_the_rate_gets_429_with_retry_after(owner, org, jwt_client, make_user,
                                                      three_per_minute, now):
    api = jwt_client(owner, org)
    with time_machine.travel(now, tick=False):
        statuses = [api.get("/auth/me/").status_code for _ in range(3)]
        response = api.get("/auth/me/")
        other_user = jwt_client(make_user("other@example.com")).get("/auth/me/")

    assert statuses == [200, 200, 200]
    assert response.status_code == 429
    assert assert_json(response) == {
        "detail": "Request was throttled. Expected available in 60 seconds."
    }
    assert response["Retry-After"] == "60"
    assert response["X-Request-ID"]
    assert other_user.status_code == 200  # per principal, not global


def test_api_key_over_the_rate_gets_429_with_retry_after(org, make_key, key_client,
                                                         three_per_minute, now):
    _key, raw = make_key(org)
    api = key_client(raw)
    with time_machine.travel(now, tick=False):
        statuses = [api.get("/auth/me/").status_code for _ in range(3)]
        response = api.get("/auth/me/")

    assert statuses == [200, 200, 200]
    assert response.status_code == 429
    assert assert_json(response) == {
        "detail": "Request was throttled. Expected available in 60 seconds."
    }
    assert response["Retry-After"] == "60"


def test_throttle_window_reopens_after_a_minute(owner, org, jwt_client, three_per_minute, now):
    api = jwt_client(owner, org)
    with time_machine.travel(now, tick=False):
        for _ in range(3):
            api.get("/auth/me/")
        assert api.get("/auth/me/").status_code == 429
    with time_machine.travel(now + timedelta(seconds=61), tick=False):
        assert api.get("/auth/me/").status_code == 200


def test_eleventh_login_per_minute_from_one_ip_gets_429(client, db, now):
    with time_machine.travel(now, tick=False):
        statuses = [
            client.post("/auth/jwt/create/",
                        {"email": f"nobody{i}@example.com", "password": "x"},
                        format="json").status_code
            for i in range(10)
        ]
        response = client.post("/auth/jwt/create/",
                               {"email": "nobody10@example.com", "password": "x"}, format="json")

    assert statuses == [401] * 10
    assert response.status_code == 429
    assert assert_json(response) == {
        "detail": "Request was throttled. Expected available in 60 seconds."
    }
    assert response["Retry-After"] == "60"


def test_login_throttle_applies_to_correct_credentials_too(client, owner, now):
    with time_machine.travel(now, tick=False):
        statuses = [
            client.post("/auth/jwt/create/", {"email": "owner@example.com", "password": PASSWORD},
                        format="json").status_code
            for _ in range(11)
        ]

    assert statuses == [200] * 10 + [429]


def test_eleventh_login_per_minute_for_one_email_gets_429_across_ips(client, owner, now):
    with time_machine.travel(now, tick=False):
        statuses = [
            client.post("/auth/jwt/create/", {"email": "Owner@Example.com", "password": "wrong"},
                        format="json", REMOTE_ADDR=f"10.0.0.{i}").status_code
            for i in range(11)
        ]

    assert statuses == [401] * 10 + [429]


def test_login_ip_throttle_ignores_spoofed_x_forwarded_for(client, db, now):
    # With no trusted proxy configured, X-Forwarded-For is the client's to invent.
    with time_machine.travel(now, tick=False):
        statuses = [
            client.post("/auth/jwt/create/",
                        {"email": f"nobody{i}@example.com", "password": "x"}, format="json",
                        HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code
            for i in range(11)
        ]

    assert statuses == [401] * 10 + [429]
