"""Throttles (API.md 11). Counters live in the default cache: Redis when REDIS_URL is set."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from core.authentication import ApiKeyPrincipal


class PrincipalRateThrottle(SimpleRateThrottle):
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


class LoginIPRateThrottle(SimpleRateThrottle):
    scope = "login"

    def get_cache_key(self, request: Request, view) -> str:
        return self.cache_format % {"scope": "login-ip", "ident": self.get_ident(request)}


class EmailRateThrottle(SimpleRateThrottle):
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
