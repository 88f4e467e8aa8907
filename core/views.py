from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.renderers import (OpenApiJsonRenderer, OpenApiJsonRenderer2,
                                       OpenApiYamlRenderer, OpenApiYamlRenderer2)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views

from core import schema, services
from core.api import validated
from core.authentication import ApiKeyPrincipal
from core.exceptions import Forbidden
from core.lockout import LockedOut, was_locked_out
from core.models import User
from core.serializers import (EmailTokenObtainPairSerializer, PasswordResetConfirmSerializer,
                              PasswordResetSerializer, RegisterSerializer, UserSerializer)
from core.tenancy import acting_context
from core.throttles import (LoginEmailRateThrottle, LoginIPRateThrottle,
                            PasswordResetEmailRateThrottle)

logger = logging.getLogger("egret.health")


class HealthView(APIView):
    """Cheap liveness + database probe for load balancers and uptime monitors."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @schema.health
    def get(self, request: Request) -> Response:
        healthy, body = health_report()
        return Response(body, status=200 if healthy else 503, headers={"Cache-Control": "no-store"})


class DatabasePing:
    """With a connection pool, requests queue for a connection when every one is busy (a
    burst of queries); /health/ must not wait in that queue, or a busy instance would look
    dead to its load balancer. So it asks the database on a connection of its own, one per
    process, opened on first use and again after a failure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection = None

    def __call__(self) -> None:
        import psycopg

        with self._lock:
            try:
                if self._connection is None or self._connection.closed:
                    params = connection.get_connection_params()
                    params.pop("cursor_factory", None)
                    self._connection = psycopg.connect(**params, autocommit=True,
                                                       connect_timeout=5)
                self._connection.execute("SELECT 1").fetchone()
            except Exception:
                if self._connection is not None:
                    self._connection.close()
                    self._connection = None
                raise


database_ping = DatabasePing()


def health_report() -> tuple[bool, dict]:
    checks = {"database": "ok"}
    healthy = True
    try:
        if connection.vendor == "postgresql" and connection.pool is not None:
            database_ping()
        else:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
    except Exception:
        logger.exception("Health check: database unavailable")
        checks["database"] = "unavailable"
        healthy = False
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": timezone.now().isoformat(),
        "checks": checks,
    }
    return healthy, body


@csrf_exempt
def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Every URL that matches no route: JSON 404, naming the canonical path if only the slash
    is missing. CSRF-exempt: a POST to a path that does not exist is a 404, whatever its
    Referer or cookies (over HTTPS the CSRF check would otherwise answer 403 first)."""
    detail = "Not found."
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.url_name != "not-found":
            detail = f"Not found. Did you mean {request.path}/ ? All paths end with a slash."
    return JsonResponse({"detail": detail}, status=404)


class LoginView(jwt_views.TokenObtainPairView):
    serializer_class = EmailTokenObtainPairSerializer
    throttle_classes = [LoginIPRateThrottle, LoginEmailRateThrottle]

    @schema.login
    def post(self, request: Request, *args, **kwargs) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except exceptions.AuthenticationFailed:
            if was_locked_out(request):  # axes refused, or this failure reached the limit
                raise LockedOut() from None
            raise


class RegisterView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginIPRateThrottle]

    @schema.register
    def post(self, request: Request) -> Response:
        if not settings.EGRET_ALLOW_SIGNUP:
            raise Forbidden("Sign-up is disabled on this server; ask an operator for an account.")
        data = validated(RegisterSerializer, request.data)
        user = User.objects.create_user(data["email"], data["password"], name=data["name"])
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class PasswordResetView(APIView):
    """No enumeration: the same 202 whether or not the email has an account."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginIPRateThrottle, PasswordResetEmailRateThrottle]

    @schema.password_reset
    def post(self, request: Request) -> Response:
        data = validated(PasswordResetSerializer, request.data)
        services.password_reset_request(data["email"])
        return Response({}, status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginIPRateThrottle]

    @schema.password_reset_confirm
    def post(self, request: Request) -> Response:
        services.password_reset_confirm(**validated(PasswordResetConfirmSerializer,
                                                    request.data))
        return Response({})


class MeView(APIView):
    @schema.me
    def get(self, request: Request) -> Response:
        principal = request.user
        if isinstance(principal, ApiKeyPrincipal):
            acting = acting_context(request)
            key = principal.api_key
            body = {
                "type": "api_key",
                "user": None,
                "api_key": {
                    "id": str(key.pk), "name": key.name, "key_prefix": key.key_prefix,
                    "created_at": key.created_at, "last_used_at": key.last_used_at,
                    "expires_at": key.expires_at,
                },
            }
        else:
            has_orgs = request.headers.get("X-Organization") or principal.memberships.filter(
                organization__is_active=True
            ).exists()
            acting = acting_context(request) if has_orgs else None
            body = {"type": "user", "user": UserSerializer(principal).data, "api_key": None}
        body["organization"] = (
            {"slug": acting.organization.slug, "name": acting.organization.name,
             "role": acting.role}
            if acting else None
        )
        return Response(body)


# --- The OpenAPI document and its interactive reference (API.md 10) ------------------------------
class JSONErrorsMixin:
    """Errors stay JSON (API.md 1) on views that otherwise render YAML or HTML."""

    def finalize_response(self, request, response, *args, **kwargs):
        if isinstance(response, Response) and getattr(response, "exception", False):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class SchemaView(JSONErrorsMixin, SpectacularAPIView):
    """Public. JSON unless the `Accept` header asks for YAML."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer,
                        OpenApiYamlRenderer2]

    @schema.schema_document
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class DocsView(JSONErrorsMixin, SpectacularSwaggerSplitView):
    """Swagger UI from the drf-spectacular-sidecar assets (static files served by whitenoise),
    so it works with no internet. The split view serves its start-up script from this URL
    (`?script`) instead of inline."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    url_name = "schema"
    title = "Egret API reference"
