"""Two ways in (API.md 2): API keys (`egret_...`) and SimpleJWT access tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework_simplejwt import authentication as jwt_authentication
from rest_framework_simplejwt.exceptions import InvalidToken

from core import keyformat
from core.prepared import PreparedGet

INVALID_API_KEY = "Invalid or expired API key. Check that the key is active and has not expired."
# The one reason the public Egret API gives for a bad access token (API.md 1); SimpleJWT >= 5.4
# says "Token is expired", "Token is invalid", "Token has wrong type"... and clients compare it.
TOKEN_INVALID_OR_EXPIRED = "Token is invalid or expired"
WWW_AUTHENTICATE = 'Bearer realm="api"'


@dataclass(eq=False)
class ApiKeyPrincipal:
    """`request.user` for API-key requests: a key acts for its organization, not for a person."""

    api_key: "ApiKey"  # noqa: F821 (organizations.models.ApiKey)

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    @property
    def organization(self):
        return self.api_key.organization

    def __str__(self) -> str:
        return f"api_key:{self.api_key.key_prefix}"


def _bearer(request: Request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    parts = header.split()
    if len(parts) == 2 and parts[0] == "Bearer":
        return parts[1]
    return None


def api_key_credential(request) -> str | None:
    """The API key a request presents, or None when it presents none (a JWT, or nothing).
    The Authorization header wins over X-API-Key; a bearer that is not a key is a JWT."""
    if "HTTP_AUTHORIZATION" in request.META:
        raw = _bearer(request)
        if raw is None or not raw.startswith(keyformat.PREFIX):
            return None
        return raw
    return request.META.get("HTTP_X_API_KEY", "").strip() or None


def api_key_for_request(request, raw: str):
    """`ApiKeyAuthentication.lookup(raw)` once per request: the key, or AuthenticationFailed.
    A view that looked the key up before DRF authenticates (core.fastpath) and then hands the
    request to DRF's dispatch does not read it twice."""
    http_request = getattr(request, "_request", request)
    seen = http_request.__dict__.get("_egret_api_key")
    if seen is not None and seen[0] == raw:
        key = seen[1]
    else:
        try:
            key = ApiKeyAuthentication.lookup(raw)
        except exceptions.AuthenticationFailed:
            key = None
        http_request._egret_api_key = (raw, key)
    if key is None:
        raise exceptions.AuthenticationFailed(INVALID_API_KEY)
    return key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request):
        raw = api_key_credential(request)
        if raw is None:
            return None
        return ApiKeyPrincipal(api_key_for_request(request, raw)), None

    @staticmethod
    def lookup(raw: str):
        from organizations.models import ApiKey

        if not keyformat.is_well_formed(raw):
            raise exceptions.AuthenticationFailed(INVALID_API_KEY)
        try:
            key = _key_by_digest.get(keyformat.digest(raw))
        except ApiKey.DoesNotExist:
            raise exceptions.AuthenticationFailed(INVALID_API_KEY) from None
        now = timezone.now()
        if key.revoked_at is not None or key.is_expired(now) or not key.organization.is_active:
            raise exceptions.AuthenticationFailed(INVALID_API_KEY)
        _touch(key, now)
        return key

    def authenticate_header(self, request: Request) -> str:
        return WWW_AUTHENTICATE


def _keys_with_their_organization(digest):
    from organizations.models import ApiKey

    return ApiKey.objects.select_related(
        "organization__plan", "organization__subscription", "organization__credit_account"
    ).filter(digest=digest)


# One query per request, compiled once per connection: the key is read from the database on
# every request (no cache of keys), so a revoked key, an expired one or a deactivated
# organization is refused from the next request on, in every worker.
_key_by_digest = PreparedGet(_keys_with_their_organization)


def _touch(key, now) -> None:
    """Record use at most once per interval; the conditional UPDATE keeps racing workers to one
    write per interval."""
    from django.db.models import Q

    from organizations.models import ApiKey

    interval = timedelta(seconds=settings.EGRET_API_KEY_TOUCH_SECONDS)
    if key.last_used_at is not None and now - key.last_used_at < interval:
        return
    ApiKey.objects.filter(pk=key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - interval)
    ).update(last_used_at=now)
    key.last_used_at = now


class JWTAuthentication(jwt_authentication.JWTAuthentication):
    """SimpleJWT, unchanged in its bodies; it leaves `egret_` bearers to the API key class."""

    def authenticate(self, request: Request):
        raw = _bearer(request)
        if raw is not None and raw.startswith(keyformat.PREFIX):
            return None
        return super().authenticate(request)

    def get_validated_token(self, raw_token: bytes):
        """SimpleJWT's body, code and detail, with the documented text in each message."""
        try:
            return super().get_validated_token(raw_token)
        except InvalidToken as exc:
            messages = [{**message, "message": TOKEN_INVALID_OR_EXPIRED}
                        for message in exc.detail.get("messages", [])]
            raise InvalidToken({"detail": exc.detail["detail"], "messages": messages}) from None
