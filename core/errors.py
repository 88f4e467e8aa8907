"""Plain-Django JSON error responses (for paths that DRF does not handle)."""

from __future__ import annotations

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


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "Bad request."}, status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        {"detail": "You do not have permission to perform this action."}, status=403
    )


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "Not found."}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return server_error_response(getattr(request, "request_id", None))
