"""Throttle counters in Redis (API.md 11, DESIGN.md "cache / throttles"): with the Redis
cache backend, the query throttle answers 429 with `detail` and `Retry-After`, its counters
are Redis keys (so every worker and host sees the same ones), and each API key has its own.

Needs a Redis server: EGRET_TEST_REDIS_URL, default redis://127.0.0.1:6379/13 (a database
this test flushes before and after); skipped when it cannot be reached."""

from __future__ import annotations

import os
import threading
import time

import pytest

from core.throttles import QueryRateThrottle

REDIS_URL = os.environ.get("EGRET_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
PREFIX = "egret-throttle-test"
RATE = 3
QUESTION = {"query": "How often must the business impact analysis be reviewed?",
            "domain": "business-continuity", "category": "us", "mode": "compliance"}


@pytest.fixture
def redis_db(settings):
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=5)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({exc}); set EGRET_TEST_REDIS_URL")
    client.flushdb()
    settings.CACHES = {"default": {"BACKEND": "core.cache.RedisCache",
                                   "LOCATION": REDIS_URL, "KEY_PREFIX": PREFIX}}
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def query_rate(monkeypatch):
    # DRF reads THROTTLE_RATES when the throttle class is defined: set the rate itself.
    monkeypatch.setattr(QueryRateThrottle, "rate", f"{RATE}/min", raising=False)


def counter_key(api_key) -> str:
    return f"{PREFIX}:1:throttle_query_key:{api_key.pk}"


def history(redis_db, api_key) -> list[float]:
    """The times of the requests counted in the window (a sorted set: one round trip checks
    and counts, atomically)."""
    return [score for _, score in redis_db.zrange(counter_key(api_key), 0, -1,
                                                   withscores=True)]


def test_query_throttle_counts_in_redis_and_answers_429(org, make_key, key_client, redis_db,
                                                       query_rate):
    key, raw = make_key(org)
    api = key_client(raw)
    statuses = [api.post("/v1/query/", QUESTION, format="json").status_code
                for _ in range(RATE)]
    assert 429 not in statuses
    assert len(history(redis_db, key)) == RATE

    response = api.post("/v1/query/", QUESTION, format="json")

    assert response.status_code == 429
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"].startswith("Request was throttled.")
    assert 1 <= int(response["Retry-After"]) <= 60
    # The counter is a Redis key that expires with the window; the refused request is not
    # counted.
    assert redis_db.exists(counter_key(key))
    assert 0 < redis_db.ttl(counter_key(key)) <= 60
    assert len(history(redis_db, key)) == RATE


def test_two_api_keys_have_separate_counters(org, make_key, key_client, redis_db, query_rate):
    first, first_raw = make_key(org, name="first")
    second, second_raw = make_key(org, name="second")
    for _ in range(RATE):
        key_client(first_raw).post("/v1/query/", QUESTION, format="json")
    assert key_client(first_raw).post("/v1/query/", QUESTION,
                                      format="json").status_code == 429

    response = key_client(second_raw).post("/v1/query/", QUESTION, format="json")

    assert response.status_code != 429
    assert len(history(redis_db, first)) == RATE
    assert len(history(redis_db, second)) == 1
    keys = {k.decode() for k in redis_db.scan_iter(f"{PREFIX}:*throttle_query_*")}
    assert keys == {counter_key(first), counter_key(second)}


def test_a_counter_written_elsewhere_is_honoured(org, make_key, key_client, redis_db,
                                                query_rate):
    """What another worker or host counted is what this one enforces: the state lives in
    Redis, not in the process."""
    key, raw = make_key(org)
    now = time.time()
    redis_db.zadd(counter_key(key), {"a": now - 1, "b": now - 2, "c": now - 3})
    redis_db.expire(counter_key(key), 60)

    response = key_client(raw).post("/v1/query/", QUESTION, format="json")

    assert response.status_code == 429
    # Retry-After: until the oldest of the three leaves the minute's window (57 s).
    assert 55 <= int(response["Retry-After"]) <= 58


def test_requests_arriving_together_never_pass_more_than_the_rate(org, make_key, redis_db,
                                                                  query_rate):
    """Check and count are one atomic step: 12 requests at the same moment, on 12 threads,
    let exactly RATE through (reading the count, then writing it back, let several pass on
    the same count)."""
    from rest_framework.test import APIRequestFactory

    from core.authentication import ApiKeyPrincipal

    key, _raw = make_key(org)
    barrier = threading.Barrier(12)
    results: list[bool] = []

    def one() -> None:
        request = APIRequestFactory().post("/v1/query/")
        request.user = ApiKeyPrincipal(key)
        throttle = QueryRateThrottle()
        barrier.wait()
        results.append(throttle.allow_request(request, None))

    threads = [threading.Thread(target=one) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * (12 - RATE) + [True] * RATE
    assert len(history(redis_db, key)) == RATE


def test_the_query_counter_does_not_throttle_other_endpoints(org, make_key, key_client,
                                                            redis_db, query_rate):
    _key, raw = make_key(org)
    api = key_client(raw)
    for _ in range(RATE):
        api.post("/v1/query/", QUESTION, format="json")
    assert api.post("/v1/query/", QUESTION, format="json").status_code == 429

    assert api.get("/v1/billings/subscription/").status_code == 200
    assert list(redis_db.scan_iter(f"{PREFIX}:*throttle_principal_*"))
