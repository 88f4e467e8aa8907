"""Django's Redis cache with one redis-py client per connection pool.

Django's `RedisCacheClient` makes a new `redis.Redis` object for every cache operation, and
building one (its table of response callbacks) costs more CPU than the round trip to Redis.
The throttles read and write their counters on every API request, so the client is made once
per pool here and shared: redis-py clients are thread-safe (each command takes a connection
from the pool and gives it back)."""

from __future__ import annotations

from django.core.cache.backends import redis


class RedisCacheClient(redis.RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None or client.connection_pool is not pool:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(redis.RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
