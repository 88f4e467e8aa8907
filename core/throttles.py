"""Throttles (API.md 11). Counters live in the default cache: Redis when REDIS_URL is set.

With Redis, a throttle's check is one round trip: a server-side script trims the window's
log of request times (a sorted set), counts it, and adds this request only when there is
room, atomically. DRF's own check reads the log, then writes it back (two round trips, and
requests that arrive together can all read the same count and all pass). Without Redis
(the in-process cache of development and tests) DRF's check is used as it is. Either way the
rule is DRF's sliding window: at most N requests in the last `duration` seconds, and
`Retry-After` is the time until the oldest of them leaves the window."""

from __future__ import annotations

import uuid

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from core.authentication import ApiKeyPrincipal

# KEYS[1] the log; ARGV: now, duration (s), limit, a unique member. Returns {1, ""} when the
# request is let through (and logged), {0, oldest time} when it is refused (not logged).
_WINDOW_SCRIPT = """
local now = tonumber(ARGV[1])
local duration = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - duration)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, oldest[2]}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(duration * 1000))
return {1, ''}
"""
_scripts: dict[int, object] = {}  # id(redis client) -> its registered script


def _window_script(backend: RedisCache, key: str):
    client = backend._cache.get_client(key, write=True)
    script = _scripts.get(id(client))
    if script is None or script.registered_client is not client:
        script = _scripts[id(client)] = client.register_script(_WINDOW_SCRIPT)
    return script


class WindowThrottle(SimpleRateThrottle):
    """DRF's SimpleRateThrottle, checked in one atomic round trip when the cache is Redis."""

    _refused_wait: float | None = None

    def allow_request(self, request: Request, view) -> bool:
        backend = caches["default"]
        if self.rate is None or not isinstance(backend, RedisCache):
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        key = backend.make_and_validate_key(self.key)
        allowed, oldest = _window_script(backend, key)(
            keys=[key], args=[repr(self.now), self.duration, self.num_requests,
                              uuid.uuid4().hex])
        if allowed:
            return True
        self._refused_wait = max(0.0, float(oldest) + self.duration - self.now)
        return False

    def wait(self) -> float | None:
        if self._refused_wait is not None:
            return self._refused_wait
        return super().wait()


class PrincipalRateThrottle(WindowThrottle):
    """Per API key, or per user; anonymous callers per IP."""

    scope = "principal"

    def get_cache_key(self, request: Request, view) -> str:
        user = request.user
        if isinstance(user, ApiKeyPrincipal):
            ident = f"key:{user.api_key.pk}"
        elif user is not None and getattr(user, "is_authenticated", False):
            ident = f"user:{user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class QueryRateThrottle(PrincipalRateThrottle):
    scope = "query"


class LoginIPRateThrottle(WindowThrottle):
    scope = "login"

    def get_cache_key(self, request: Request, view) -> str:
        return self.cache_format % {"scope": "login-ip", "ident": self.get_ident(request)}


class EmailRateThrottle(WindowThrottle):
    """Per email named in the body (in any case); a request without one is not counted here."""

    bucket = ""

    def get_cache_key(self, request: Request, view) -> str | None:
        data = request.data if isinstance(request.data, dict) else {}
        email = str(data.get("email", "")).strip().lower()
        if not email:
            return None
        return self.cache_format % {"scope": self.bucket, "ident": email}


class LoginEmailRateThrottle(EmailRateThrottle):
    scope = "login"
    bucket = "login-email"


class PasswordResetEmailRateThrottle(EmailRateThrottle):
    """Each reset sends an email: a low rate per address, counted apart from the login's, so
    that asking resets for someone neither floods their inbox nor throttles their logins."""

    scope = "password_reset"
    bucket = "password-reset-email"
