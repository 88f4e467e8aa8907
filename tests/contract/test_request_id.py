"""API.md 1: every response carries X-Request-ID; a sane client id is echoed, others replaced."""

from __future__ import annotations

import re

import pytest

from core import views as core_views

FRESH_ID = re.compile(r"^[0-9a-f]{32}$")


def _boom(*args, **kwargs):
    raise RuntimeError("boom")


@pytest.fixture
def responses(owner, org, jwt_client, client, monkeypatch):
    """One request per status class; returns {label: callable(**extra) -> response}."""
    user = jwt_client(owner, org)

    def server_error(**extra):
        with monkeypatch.context() as patch:
            patch.setattr(core_views.MeView, "get", _boom)
            return user.get("/auth/me/", **extra)

    return {
        200: lambda **extra: user.get("/auth/me/", **extra),
        201: lambda **extra: user.post("/v1/orgs/", {"name": "Beta"}, format="json", **extra),
        400: lambda **extra: user.post("/v1/orgs/", {}, format="json", **extra),
        401: lambda **extra: client.get("/auth/me/", **extra),
        404: lambda **extra: client.get("/no/such/url/", **extra),
        405: lambda **extra: user.delete("/v1/orgs/", **extra),
        406: lambda **extra: user.get("/v1/orgs/", HTTP_ACCEPT="text/html", **extra),
        500: server_error,
    }


@pytest.mark.parametrize("status", [200, 201, 400, 401, 404, 405, 406, 500])
def test_every_response_carries_a_fresh_request_id(status, responses):
    first = responses[status]()
    second = responses[status]()

    assert first.status_code == status
    assert FRESH_ID.match(first["X-Request-ID"])
    assert FRESH_ID.match(second["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.parametrize("status", [200, 401, 404, 500])
def test_sane_client_request_id_is_echoed(status, responses):
    response = responses[status](HTTP_X_REQUEST_ID="trace-01HXYZ.abc:def_9")

    assert response.status_code == status
    assert response["X-Request-ID"] == "trace-01HXYZ.abc:def_9"


def test_health_echoes_the_client_request_id(client, db):
    response = client.get("/health/", HTTP_X_REQUEST_ID="lb-probe-1")

    assert response.status_code == 200
    assert response["X-Request-ID"] == "lb-probe-1"


def test_request_id_of_exactly_128_characters_is_echoed(client, db):
    sane = "a" * 128

    response = client.get("/health/", HTTP_X_REQUEST_ID=sane)

    assert response["X-Request-ID"] == sane


@pytest.mark.parametrize(
    "insane",
    [
        "a" * 129,
        "has space",
        "semi;colon",
        "<script>alert(1)</script>",
        "new\\nline",
        "quote\"d",
        "",
    ],
    ids=["too_long", "space", "semicolon", "markup", "backslash", "quote", "empty"],
)
@pytest.mark.parametrize("status", [200, 401, 500])
def test_insane_client_request_id_is_replaced(insane, status, responses):
    response = responses[status](HTTP_X_REQUEST_ID=insane)

    assert response.status_code == status
    assert response["X-Request-ID"] != insane
    assert FRESH_ID.match(response["X-Request-ID"])
    if status == 500:
        assert response.json()["request_id"] == response["X-Request-ID"]


def test_request_id_header_is_exposed_to_browsers(client, db, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]

    response = client.get("/health/", HTTP_ORIGIN="https://app.example.com")

    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert "x-request-id" in exposed
