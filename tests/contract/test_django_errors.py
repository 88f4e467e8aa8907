"""API.md 1 on the error paths Django handles before or outside DRF, with DEBUG off: the
CSRF check, the Host header, oversized or overfull bodies, and Django's 404/400 handlers.
The test client skips CSRF checks unless asked; these tests ask."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

UNSAFE_METHODS = ["post", "put", "patch", "delete"]


def assert_json(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.fixture
def browser() -> Client:
    """Checks CSRF as a real browser request would be checked."""
    return Client(enforce_csrf_checks=True)


@pytest.mark.parametrize("method", UNSAFE_METHODS)
def test_unsafe_method_on_an_unknown_url_over_https_without_referer_is_json_404(method, browser):
    response = getattr(browser, method)("/no/such/thing/", HTTP_X_FORWARDED_PROTO="https",
                                        content_type="application/json", data="{}")

    assert response.status_code == 404
    assert assert_json(response) == {"detail": "Not found."}


@pytest.mark.parametrize("method", UNSAFE_METHODS)
def test_unsafe_method_on_a_path_missing_its_slash_over_https_names_the_canonical_path(
        method, browser):
    response = getattr(browser, method)("/v1/orgs", HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == 404
    assert assert_json(response)["detail"] == (
        "Not found. Did you mean /v1/orgs/ ? All paths end with a slash.")


def test_csrf_failure_on_an_admin_form_is_json_403(browser):
    response = browser.post("/admin/login/", {"username": "a@example.com", "password": "x"})

    assert response.status_code == 403
    body = assert_json(response)
    assert body["code"] == "csrf_failed"
    assert body["detail"].startswith("CSRF verification failed")


def test_csrf_failure_over_https_without_referer_names_the_reason(browser):
    response = browser.post("/admin/login/", {"username": "a@example.com", "password": "x"},
                            HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == 403
    assert assert_json(response)["detail"] == (
        "CSRF verification failed: Referer checking failed - no Referer.")


def test_a_host_header_not_in_allowed_hosts_is_json_400(client):
    response = client.get("/health/", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert assert_json(response) == {
        "detail": "Bad request: this server does not answer for that Host header.",
        "code": "disallowed_host"}
    assert response["X-Request-ID"]


def test_a_form_body_over_the_memory_limit_is_json_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = client.post("/admin/login/", {"username": "a@example.com", "password": "x" * 5000})

    assert response.status_code == 413
    assert assert_json(response) == {
        "detail": "The request body is larger than the 1000-byte limit.",
        "code": "payload_too_large"}


def test_a_form_with_too_many_fields_is_json_400(client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    fields = {f"field{i}": "x" for i in range(20)}

    response = client.post("/admin/login/", fields)

    assert response.status_code == 400
    assert assert_json(response)["detail"] == "Bad request: too many form fields or files."


def test_http404_raised_by_a_plain_django_view_is_json(staff):
    response = staff.get("/admin/no-such-app/", HTTP_ACCEPT="text/html")

    assert response.status_code == 404
    assert assert_json(response) == {"detail": "Not found."}


def test_the_404_handler_answers_json_for_urls_outside_every_route(client):
    response = client.get("/static/no-such-file.css")

    assert response.status_code == 404
    assert assert_json(response) == {"detail": "Not found."}
