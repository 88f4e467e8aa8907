"""Plain-Django JSON error responses (for paths that DRF does not handle)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import (DisallowedHost, RequestDataTooBig, TooManyFieldsSent,
                                    TooManyFilesSent)
from django.http import HttpRequest, JsonResponse

from core.logging import request_id_var

SERVER_ERROR_DETAIL = (
    "The server could not complete the request because of an unexpected error. "
    "Please retry in a moment; if it persists, contact support with the request_id."
)


def server_error_response(request_id: str | None = None) -> JsonResponse:
    return JsonResponse(
        {"detail": SERVER_ERROR_DETAIL, "request_id": request_id or request_id_var.get()},
        status=500,
    )


def body_too_large() -> dict:
    """The 413 of a request body over DATA_UPLOAD_MAX_MEMORY_SIZE, inside a DRF view or not."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return {"detail": f"The request body is larger than the {limit}-byte limit.",
            "code": "payload_too_large"}


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """handler400: Django's SuspiciousOperation family met outside a DRF view (in middleware
    reading the body, or the Host header); DRF views answer them in core.exceptions."""
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(body_too_large(), status=413)
    if isinstance(exception, DisallowedHost):
        return JsonResponse({"detail": "Bad request: this server does not answer for that "
                                       "Host header.", "code": "disallowed_host"}, status=400)
    if isinstance(exception, (TooManyFieldsSent, TooManyFilesSent)):
        return JsonResponse({"detail": "Bad request: too many form fields or files.",
                             "code": "bad_request"}, status=400)
    return JsonResponse({"detail": "Bad request.", "code": "bad_request"}, status=400)


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """CSRF_FAILURE_VIEW: only the admin's forms are CSRF-protected (API views are exempt and
    authenticate with headers), and even there the answer is the JSON of API.md 1."""
    detail = "CSRF verification failed. Request aborted."
    if reason:
        detail = f"CSRF verification failed: {reason.rstrip('.')}."
    return JsonResponse({"detail": detail, "code": "csrf_failed"}, status=403)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        {"detail": "You do not have permission to perform this action."}, status=403
    )


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "Not found."}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return server_error_response(getattr(request, "request_id", None))
