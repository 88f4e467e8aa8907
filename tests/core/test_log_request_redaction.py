"""Django's own loggers (django.security.*, django.request) pass the request as an `extra`;
our formatters write every extra, and a request's repr holds its whole query string, so a
secret sent in a URL (`?api_key=`) reached the logs. A request is written as its method and
path with the values of secret-looking parameters redacted, in both log formats."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.test import Client

from core.logging import JSONFormatter, PlainFormatter

pytestmark = pytest.mark.django_db

SECRET = "egret_Xq3Lb9Tz0aKp7WmN4vR8sD2fG6hJ1kL5pQ9w3E"


@pytest.fixture
def security_log():
    """What django.security.* writes, through each of our formatters."""
    streams = {"json": io.StringIO(), "plain": io.StringIO()}
    handlers = []
    for name, formatter in (("json", JSONFormatter()), ("plain", PlainFormatter())):
        handler = logging.StreamHandler(streams[name])
        handler.setFormatter(formatter)
        handlers.append(handler)
    logger = logging.getLogger("django.security")
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield lambda: {name: stream.getvalue() for name, stream in streams.items()}
    finally:
        for handler in handlers:
            logger.removeHandler(handler)


def test_a_csrf_failure_logs_the_request_without_the_secret_in_its_query(security_log):
    browser = Client(enforce_csrf_checks=True)

    response = browser.post(f"/admin/login/?api_key={SECRET}&next=/admin/",
                            {"username": "ada@example.com", "password": "x"})

    assert response.status_code == 403
    logged = security_log()
    assert SECRET not in logged["json"] and SECRET not in logged["plain"]
    (line,) = [json.loads(text) for text in logged["json"].splitlines()]
    assert line["logger"] == "django.security.csrf"
    assert line["request"] == "POST /admin/login/?api_key=REDACTED&next=/admin/"
    assert "request=POST /admin/login/?api_key=REDACTED&next=/admin/" in logged["plain"]


def test_a_disallowed_host_logs_the_request_without_the_secret_in_its_query(client,
                                                                            security_log):
    response = client.get(f"/v1/orgs/?limit=5&token={SECRET}", HTTP_HOST="evil.example")

    assert response.status_code == 400
    logged = security_log()
    assert SECRET not in logged["json"] and SECRET not in logged["plain"]
    (line,) = [json.loads(text) for text in logged["json"].splitlines()]
    assert line["logger"] == "django.security.DisallowedHost"
    assert line["request"] == "GET /v1/orgs/?limit=5&token=REDACTED"
    assert "request=GET /v1/orgs/?limit=5&token=REDACTED" in logged["plain"]
