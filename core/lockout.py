"""Brute-force protection of both logins (admin and `POST /auth/jwt/create/`) through
django-axes: failed attempts are counted per account (the normalized email) in the database,
so every app server sees the same count; at the limit the account is locked for the
cool-off time, whoever tries and from wherever. Operators unlock with `login_unlock` or by
deleting the account's access attempts in admin.

Here: what axes needs to know about Egret (how an attempt names the account, the client's
address behind `NUM_PROXIES` proxies) and the JSON answer to a locked-out attempt."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.throttling import BaseThrottle

from core.models import normalize_email


def cool_off_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def locked_detail() -> str:
    minutes = max(1, round(cool_off_seconds() / 60))
    return (f"Too many failed login attempts: this account is locked for {minutes} minutes. "
            "Try again later, reset your password, or ask an operator to unlock it.")


def attempted_email(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The account an attempt names: the API sends `email`, the admin form `username`. Emails
    are case-insensitive, so "Ada@X" and "ada@x" count against one account."""
    credentials = credentials or {}
    value = credentials.get("email") or credentials.get("username")
    if value is None:
        data = getattr(request, "data", None)
        if not hasattr(data, "get"):
            data = request.POST
        value = data.get("email") or data.get("username")
    if value is None:
        return None
    return normalize_email(str(value)) or None


def client_ip(request: HttpRequest) -> str | None:
    """The address the throttles use (DRF's NUM_PROXIES rule: the entry the trusted proxies
    appended to X-Forwarded-For, else REMOTE_ADDR); something that is no address falls back
    to REMOTE_ADDR."""
    ident = BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address(ident))
    except ValueError:
        return request.META.get("REMOTE_ADDR")


def lockout_response(request: HttpRequest, original_response=None,
                     credentials: dict[str, Any] | None = None) -> JsonResponse:
    """AXES_LOCKOUT_CALLABLE: what a locked-out admin login gets (API.md 1: JSON)."""
    response = JsonResponse({"detail": locked_detail(), "code": "locked_out"},
                            status=status.HTTP_429_TOO_MANY_REQUESTS)
    response["Retry-After"] = str(cool_off_seconds())
    return response


class LockedOut(exceptions.APIException):
    """The API login's answer to a locked account: 429 with Retry-After."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"

    def __init__(self) -> None:
        super().__init__({"detail": locked_detail(), "code": "locked_out"})
        self.wait = cool_off_seconds()


def was_locked_out(request) -> bool:
    """Set by axes on the request it was given (the DRF request for the API login)."""
    return bool(getattr(request, "axes_locked_out", False))
