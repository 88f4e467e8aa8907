"""PostgreSQL becomes unreachable under a running instance, then comes back (API.md 1, 10):
while it is gone /health/ answers 503 naming the failing check and the API answers JSON
errors (never an HTML page); once it is back, the same processes recover by themselves."""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.system.support import QUESTION, call, serving, worker_pids
from tests.system.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

# Several requests per phase: each gunicorn thread holds its own persistent connection, or
# the pool holds several.
ROUNDS = 8


@pytest.fixture(scope="module")
def proxy():
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module", params=["pool", "persistent"])
def served(request, server_db, tmp_path_factory, proxy):
    def through_proxy(url: str) -> str:
        parts = urlsplit(url)
        proxy.target = (parts.hostname, parts.port or 5432)
        return urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))

    # Both ways to hold connections: the pool gunicorn.conf.py turns on (connections checked
    # as they are taken; a short wait for one, so the outage's 500s come quickly), and
    # CONN_MAX_AGE persistent connections with health checks (pool off). In each, a dead
    # connection could outlive the outage.
    env = ({"DATABASE_POOL_TIMEOUT": "5"} if request.param == "pool"
           else {"DATABASE_POOL_MAX_SIZE": "0"})
    with serving(server_db, tmp_path_factory.mktemp("outage"), route=through_proxy,
                 library=False, workers=1, threads=4, env=env) as app:
        assert f":{proxy.port}/" in app.database_url
        yield app


def api_calls(app) -> list:
    return [
        call(app.port, "GET", "/v1/billings/subscription/", key=app.api_key),
        call(app.port, "GET", "/v1/orgs/demo/", key=app.api_key),
        call(app.port, "POST", "/v1/query/", body=QUESTION, key=app.api_key),
        call(app.port, "GET", "/v1/domains/"),
        call(app.port, "POST", "/auth/jwt/create/",
             body={"email": "demo@egret.local", "password": "egret-demo-password"}),
    ]


def wait_until(predicate, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    return predicate()


def test_database_outage_gives_json_errors_and_recovers_without_a_restart(served, proxy):
    workers = worker_pids(served.process.pid)
    for _ in range(ROUNDS):
        health = call(served.port, "GET", "/health/")
        assert health.status == 200
        assert health.json()["status"] == "healthy"
        assert health.json()["checks"] == {"database": "ok"}
        assert call(served.port, "GET", "/v1/billings/subscription/",
                    key=served.api_key).status == 200

    proxy.stop()
    for _ in range(ROUNDS):
        health = call(served.port, "GET", "/health/", timeout=30)
        assert health.status == 503, (health.status, health.body[:300])
        body = health.json()
        assert body["status"] == "unhealthy" and body["checks"]["database"] != "ok"
        assert health.headers["content-type"].startswith("application/json")
    for reply in api_calls(served):
        assert 500 <= reply.status < 600, (reply.status, reply.body[:300])
        assert reply.is_json_error, reply.body[:300]
        assert b"<html" not in reply.body.lower() and b"Traceback" not in reply.body
        assert "x-request-id" in reply.headers
    # What needs no database still works.
    assert call(served.port, "GET", "/v1/no-such-thing/").status == 404

    proxy.start()  # same port: the instance's DATABASE_URL is unchanged
    assert wait_until(lambda: call(served.port, "GET", "/health/").status == 200)
    for _ in range(ROUNDS):
        health = call(served.port, "GET", "/health/")
        assert health.status == 200 and health.json()["checks"] == {"database": "ok"}
        subscription = call(served.port, "GET", "/v1/billings/subscription/",
                            key=served.api_key)
        assert subscription.status == 200, subscription.body[:300]
        assert subscription.json()["organization"] == "demo"
    assert [r.status for r in api_calls(served)] == [200, 200, 404, 200, 200]
    # Recovered by itself: the same master and the same worker, no restart.
    assert served.process.poll() is None
    assert worker_pids(served.process.pid) == workers
