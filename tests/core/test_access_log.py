"""Finding 4 of issue 13: a secret sent in a query string (`?api_key=`, refused with 401) was
written verbatim to gunicorn's access log. The values of secret-looking parameters are
redacted; everything else is logged as sent."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from core.redaction import redact_query, redact_url
from tests.servers import ServedApp

SECRET = "egret_Xq3Lb9Tz0aKp7WmN4vR8sD2fG6hJ1kL5pQ9w3E"


@pytest.mark.parametrize("query, expected", [
    (f"api_key={SECRET}", "api_key=REDACTED"),
    (f"limit=5&key={SECRET}&x=1", "limit=5&key=REDACTED&x=1"),
    ("token=abc&refresh_token=def&access_token=ghi",
     "token=REDACTED&refresh_token=REDACTED&access_token=REDACTED"),
    ("password=hunter2&new_password=x&client_secret=y",
     "password=REDACTED&new_password=REDACTED&client_secret=REDACTED"),
    ("API_KEY=abc&X-Api-Key=def", "API_KEY=REDACTED&X-Api-Key=REDACTED"),
    ("api%5Fkey=abc", "api%5Fkey=REDACTED"),
    ("status=ready&cursor=cD0yMDI2&format=json", "status=ready&cursor=cD0yMDI2&format=json"),
    ("flag&key", "flag&key"),
    ("", ""),
])
def test_secret_looking_parameters_are_redacted_and_others_kept(query, expected):
    assert redact_query(query) == expected


def test_a_url_keeps_its_path():
    assert redact_url(f"/v1/orgs/?api_key={SECRET}") == "/v1/orgs/?api_key=REDACTED"
    assert redact_url("/v1/orgs/") == "/v1/orgs/"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_development_access_log_never_holds_a_key_sent_in_the_query_string(tmp_path):
    env = {"DEBUG": "1", "LOG_FORMAT": "plain", "GUNICORN_ACCESSLOG": "-"}
    with ServedApp(tmp_path, library=False, env=env) as app:
        url = f"{app.url}/v1/orgs/?api_key={SECRET}&limit=5"
        request = urllib.request.Request(url, headers={"Referer": f"{app.url}/?token={SECRET}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 401

    log = app.logs()
    assert "GET /v1/orgs/?api_key=REDACTED&limit=5 HTTP/1.1" in log
    assert SECRET not in log
