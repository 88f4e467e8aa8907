"""The quota read's shorter dispatch (core/fastpath.py) answers exactly as DRF's dispatch does.

Each request below is sent twice, in the same database state (a savepoint rolled back after
each) and with the throttles' counters emptied: once as it is served, once with the fast path
switched off, so DRF's dispatch answers it. Status, every header in order, the body's bytes,
the number of queries and the request's log line must be the same; and the fast path must
have answered exactly the requests it is meant for (a plain GET with an API key and an Accept
that means JSON), whatever their outcome."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import time_machine
from django.core.cache import caches
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.views import APIView

from billing import services as billing_services
from billing.models import Plan
from core import keyformat
from core.fastpath import ApiKeyFastPath
from core.throttles import PrincipalRateThrottle
from organizations.models import ApiKey, Organization
from tests.conftest import access_token

URL = "/v1/billings/subscription/"
REQUEST_ID = "fast-path-comparison"
# The log line's fields that do not depend on timing.
LOG_FIELDS = ("event", "method", "path", "route", "status", "streamed", "principal",
              "organization", "api_key_prefix", "user_id")


@pytest.fixture
def keys(org, make_key):
    """The organization's key (used once, as a client's would be) and a second one."""
    key, raw = make_key(org)
    _, other = make_key(org, name="other")
    assert Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    return {"key": key, "raw": raw, "other": other}


def exchange(method: str, headers: dict, caplog, warm_up: int = 0, path: str = URL) -> dict:
    """One request through the whole stack, its effects undone afterwards. `warm_up` requests
    are sent first, in the same state (to fill a throttle's window)."""
    caches["default"].clear()
    caplog.clear()
    with transaction.atomic():
        client = Client()
        for _ in range(warm_up):
            getattr(client, method)(path, **headers)
        caplog.clear()
        with CaptureQueriesContext(connection) as queries:
            response = getattr(client, method)(path, HTTP_X_REQUEST_ID=REQUEST_ID, **headers)
        transaction.set_rollback(True)
    lines = [{field: getattr(record, field, None) for field in LOG_FIELDS}
             for record in caplog.records if record.name == "egret.request"]
    others = [(record.name, record.levelno, record.getMessage(), bool(record.exc_info))
              for record in caplog.records if record.name != "egret.request"]
    return {"status": response.status_code, "headers": list(response.headers.items()),
            "body": response.content, "queries": len(queries), "log": lines, "other": others}


def both_ways(monkeypatch, caplog, method: str, headers: dict, warm_up: int = 0,
              path: str = URL) -> tuple[dict, dict, bool]:
    """(as served, through DRF's dispatch, whether the fast path answered the first)."""
    caplog.set_level(logging.INFO)
    initial = APIView.initial
    drf_calls = []

    def counted(self, request, *args, **kwargs):
        drf_calls.append(request.path)
        return initial(self, request, *args, **kwargs)

    monkeypatch.setattr(APIView, "initial", counted)
    served = exchange(method, headers, caplog, warm_up, path)
    fast = not drf_calls
    with monkeypatch.context() as patch:
        patch.setattr(ApiKeyFastPath, "_fast_path_key", lambda self, request, kwargs: None)
        drf = exchange(method, headers, caplog, warm_up, path)
    return served, drf, fast


def bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


CASES = [
    # (id, method, headers from the keys, answered by the fast path, expected status)
    ("key in Authorization", "get", lambda k: bearer(k["raw"]), True, 200),
    ("key in X-API-Key", "get", lambda k: {"HTTP_X_API_KEY": k["raw"]}, True, 200),
    ("key in X-API-Key with spaces", "get", lambda k: {"HTTP_X_API_KEY": f"  {k['raw']} "},
     True, 200),
    ("Authorization wins over X-API-Key", "get",
     lambda k: {**bearer(k["other"]), "HTTP_X_API_KEY": k["raw"]}, True, 200),
    ("Authorization wins over X-API-Key, even a bad one", "get",
     lambda k: {**bearer("egret_not-a-key"), "HTTP_X_API_KEY": k["raw"]}, False, 401),
    ("Accept */*", "get", lambda k: {**bearer(k["raw"]), "HTTP_ACCEPT": "*/*"}, True, 200),
    ("Accept application/json", "get",
     lambda k: {**bearer(k["raw"]), "HTTP_ACCEPT": "application/json"}, True, 200),
    ("Accept with indent", "get",
     lambda k: {**bearer(k["raw"]), "HTTP_ACCEPT": "application/json; indent=4"}, False, 200),
    ("Accept a list", "get",
     lambda k: {**bearer(k["raw"]), "HTTP_ACCEPT": "text/html, application/json;q=0.9"},
     False, 200),
    ("Accept nothing JSON", "get", lambda k: {**bearer(k["raw"]), "HTTP_ACCEPT": "text/html"},
     False, 406),
    ("X-Organization is ignored for a key", "get",
     lambda k: {**bearer(k["raw"]), "HTTP_X_ORGANIZATION": "someone-else"}, True, 200),
    ("malformed key", "get", lambda k: bearer("egret_not-a-key"), False, 401),
    ("unknown key", "get", lambda k: bearer(keyformat.generate()), False, 401),
    ("unknown key in X-API-Key", "get", lambda k: {"HTTP_X_API_KEY": keyformat.generate()},
     False, 401),
    ("no credentials", "get", lambda k: {}, False, 401),
    ("bad access token", "get", lambda k: bearer("not.a.token"), False, 401),
    ("other scheme", "get", lambda k: {"HTTP_AUTHORIZATION": f"Token {k['raw']}"}, False, 401),
    ("HEAD with a key", "head", lambda k: bearer(k["raw"]), False, 200),
    ("OPTIONS with a key", "options", lambda k: bearer(k["raw"]), False, 200),
    ("POST with a key", "post", lambda k: bearer(k["raw"]), False, 405),
]


@pytest.mark.parametrize("method, make_headers, fast, status",
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_fast_path_answers_as_drf_does(keys, monkeypatch, caplog, method, make_headers, fast,
                                       status):
    served, drf, answered_fast = both_ways(monkeypatch, caplog, method, make_headers(keys))
    assert served["status"] == status
    assert served == drf
    assert answered_fast is fast


def test_fast_path_answers_with_a_query_string(keys, monkeypatch, caplog):
    served, drf, fast = both_ways(monkeypatch, caplog, "get", bearer(keys["raw"]),
                                  path=URL + "?format=api&x=1")
    assert (served["status"], fast) == (200, True)
    assert served == drf


def test_fast_path_answers_a_members_token_as_drf_does(org, owner, keys, monkeypatch, caplog):
    headers = {**bearer(access_token(owner)), "HTTP_X_ORGANIZATION": org.slug}
    served, drf, fast = both_ways(monkeypatch, caplog, "get", headers)
    assert (served["status"], fast) == (200, False)
    assert served == drf


@pytest.mark.parametrize("change, status", [
    pytest.param(lambda org, key: ApiKey.objects.filter(pk=key.pk).update(
        revoked_at=timezone.now()), 401, id="key revoked"),
    pytest.param(lambda org, key: ApiKey.objects.filter(pk=key.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)), 401, id="key expired"),
    pytest.param(lambda org, key: Organization.objects.filter(pk=org.pk).update(
        is_active=False), 401, id="organization deactivated"),
    pytest.param(lambda org, key: Plan.objects.filter(pk=org.plan_id).update(
        has_api_access=False), 403, id="plan without API access"),
])
def test_fast_path_refuses_as_drf_does(org, keys, monkeypatch, caplog, change, status):
    change(org, keys["key"])
    served, drf, fast = both_ways(monkeypatch, caplog, "get", bearer(keys["raw"]))
    assert served["status"] == status
    assert served == drf
    assert fast is (status == 403)  # a refused key goes to DRF; a 403 comes after the key


def test_fast_path_throttles_as_drf_does(keys, monkeypatch, caplog):
    monkeypatch.setattr(PrincipalRateThrottle, "rate", "2/min", raising=False)
    with time_machine.travel(timezone.now(), tick=False):
        served, drf, fast = both_ways(monkeypatch, caplog, "get", bearer(keys["raw"]),
                                      warm_up=2)
    assert served["status"] == 429
    assert ("Retry-After", "60") in served["headers"]
    assert served == drf
    assert fast


def test_fast_path_rolls_a_period_over_as_drf_does(keys, monkeypatch, caplog):
    with time_machine.travel(timezone.now() + timedelta(days=40), tick=False):
        served, drf, fast = both_ways(monkeypatch, caplog, "get", bearer(keys["raw"]))
    assert served["status"] == 200
    assert served == drf
    assert fast
    assert served["queries"] > 1  # the rollover's writes, in both


def test_fast_path_answers_an_unexpected_failure_as_drf_does(keys, monkeypatch, caplog):
    def broken(organization, now=None):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(billing_services, "ensure_current_period", broken)
    served, drf, fast = both_ways(monkeypatch, caplog, "get", bearer(keys["raw"]))
    assert served["status"] == 500
    assert REQUEST_ID.encode() in served["body"]
    assert served["other"] and served["other"][0][3]  # logged with its traceback
    assert served == drf
    assert fast


def test_fast_path_answers_a_failing_key_lookup_as_drf_does(keys, monkeypatch, caplog):
    from django.db import OperationalError

    from core import authentication

    class Broken:
        def get(self, digest):
            raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(authentication, "_key_by_digest", Broken())
    served, drf, fast = both_ways(monkeypatch, caplog, "get", bearer(keys["raw"]))
    assert served["status"] == 500
    assert served == drf
    assert fast


def test_fast_path_is_one_query(keys, monkeypatch, caplog):
    served, drf, fast = both_ways(monkeypatch, caplog, "get", bearer(keys["raw"]))
    assert (served["queries"], drf["queries"], fast) == (1, 1, True)


def test_a_refused_key_is_looked_up_once(db, monkeypatch, caplog):
    served, drf, fast = both_ways(monkeypatch, caplog, "get", bearer(keyformat.generate()))
    assert (served["status"], served["queries"], drf["queries"]) == (401, 1, 1)


def test_a_view_the_fast_path_cannot_serve_is_refused_at_startup():
    from django.core.exceptions import ImproperlyConfigured
    from rest_framework.permissions import AllowAny

    from billing.api import SubscriptionView

    class Open(SubscriptionView):
        permission_classes = [AllowAny]

    with pytest.raises(ImproperlyConfigured, match="permission_classes"):
        Open.as_view()
