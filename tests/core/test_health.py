"""API.md 10: GET /health/ — public, cheap, 503 with the failing check when the database is down."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import time_machine
from django.db import OperationalError, connection
from rest_framework.test import APIClient


FROZEN = datetime(2026, 3, 25, 22, 35, 7, 74202, tzinfo=timezone.utc)


def test_health_is_healthy_with_exact_body(client, db):
    with time_machine.travel(FROZEN, tick=False):
        response = client.get("/health/")

    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy",
        "timestamp": "2026-03-25T22:35:07.074202+00:00",
        "checks": {"database": "ok"},
    }
    assert response["Content-Type"] == "application/json"


def test_health_timestamp_is_current_utc(client, db):
    before = datetime.now(timezone.utc)
    response = client.get("/health/")
    after = datetime.now(timezone.utc)

    stamp = datetime.fromisoformat(response.json()["timestamp"])
    assert stamp.utcoffset().total_seconds() == 0
    assert before <= stamp <= after


def test_health_is_not_cached(client, db):
    response = client.get("/health/")

    assert "no-store" in response["Cache-Control"]


@pytest.fixture
def database_down(monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    # Patch the backend class (restored cleanly afterwards) and only around the request.
    def run(request):
        with monkeypatch.context() as patch:
            patch.setattr(type(connection._connections[connection._alias]), "cursor", refuse)
            return request()

    return run


def test_health_is_503_unhealthy_when_the_database_fails(client, db, database_down):
    with time_machine.travel(FROZEN, tick=False):
        response = database_down(lambda: client.get("/health/"))

    assert response.status_code == 503
    assert response.json() == {
        "status": "unhealthy",
        "timestamp": "2026-03-25T22:35:07.074202+00:00",
        "checks": {"database": "unavailable"},
    }
    assert response["X-Request-ID"]


def test_health_503_does_not_leak_the_database_error(client, db, database_down):
    response = database_down(lambda: client.get("/health/"))

    assert response.status_code == 503
    assert "Connection refused" not in response.content.decode()
    assert "OperationalError" not in response.content.decode()


def test_health_recovers_when_the_database_is_back(client, db, database_down):
    assert database_down(lambda: client.get("/health/")).status_code == 503

    response = client.get("/health/")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok"}


def test_health_post_gets_json_405(client, db):
    response = client.post("/health/")

    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "POST" not allowed.'}


def test_health_head_is_allowed(client, db):
    assert client.head("/health/").status_code == 200


def test_health_needs_no_credentials_and_ignores_bad_ones(db):
    for credentials in (
        {"HTTP_AUTHORIZATION": "Bearer not-a-jwt"},
        {"HTTP_X_API_KEY": "egret_bad"},
    ):
        api = APIClient()
        api.credentials(**credentials)
        response = api.get("/health/")
        assert response.status_code == 200
        assert response.json()["status"] == "healthy"


def test_health_is_not_throttled(client, db, monkeypatch):
    from core.throttles import PrincipalRateThrottle

    monkeypatch.setattr(PrincipalRateThrottle, "rate", "3/min", raising=False)
    assert [client.get("/v1/billings/plans/").status_code for _ in range(4)][-1] == 429

    statuses = [client.get("/health/").status_code for _ in range(10)]

    assert statuses == [200] * 10


def test_health_answers_plain_http_when_ssl_redirect_is_on(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True

    health = client.get("/health/")
    other = client.get("/v1/orgs/")

    assert health.status_code == 200
    assert health.json()["status"] == "healthy"
    assert other.status_code == 301
    assert other["Location"] == "https://testserver/v1/orgs/"


def test_https_request_behind_proxy_is_not_redirected(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True

    response = client.get("/v1/orgs/", HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == 401  # reached the API, not redirected
