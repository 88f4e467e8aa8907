"""One DRF exception handler renders every error as `{"detail": "..."}` (API.md section 1)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from core.errors import SERVER_ERROR_DETAIL, body_too_large
from core.logging import request_id_var

logger = logging.getLogger("egret.errors")

REQUIRED_CODES = {"required", "null"}


# --- Typed errors raised by services and views --------------------------------------------------
class NotFound(exceptions.NotFound):
    """404 with the resource named, e.g. NotFound("Organization")."""

    def __init__(self, resource: str) -> None:
        super().__init__(f"{resource} not found.")


class Forbidden(exceptions.PermissionDenied):
    pass


class BadRequest(exceptions.APIException):
    """A 400 that is not about one field (e.g. a state conflict the client can fix)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"


class FieldError(exceptions.ValidationError):
    """A 400 about one named field, raised outside a serializer."""

    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        super().__init__({field: [message]}, code=code)


# --- Rendering ------------------------------------------------------------------------------------
def _first_error(detail: Any, path: tuple[str, ...] = ()) -> tuple[tuple[str, ...], Any] | None:
    """Depth-first: the first message in declared order, with the path of field names to it."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            found = _first_error(value, path if key == "non_field_errors" else path + (str(key),))
            if found:
                return found
        return None
    if isinstance(detail, list):
        for item in detail:
            found = _first_error(item, path)
            if found:
                return found
        return None
    return path, detail


def validation_body(detail: Any) -> dict[str, Any]:
    found = _first_error(detail)
    if not found:
        return {"detail": "Invalid request.", "code": "invalid"}
    path, message = found
    code = getattr(message, "code", "invalid")
    text = str(message)
    # Numeric path parts are list positions; the field is named by its last non-numeric part.
    names = [p for p in path if not p.isdigit()]
    field = ".".join(names)
    if not field:
        return {"detail": text, "code": code}
    if code in REQUIRED_CODES:
        text = f"{field} field is required." if code == "required" else f"{field} may not be null."
    else:
        text = f"{field}: {text}"
    return {"detail": text, "code": code, "field": field}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, exceptions.ValidationError):
        set_rollback()
        return Response(validation_body(exc.detail), status=exc.status_code)

    if isinstance(exc, SuspiciousOperation):
        # Django's guards on the request itself, met while DRF reads the body (which happens
        # inside the view, so Django's own 400 handling never sees them): client errors.
        set_rollback()
        if isinstance(exc, RequestDataTooBig):
            return Response(body_too_large(), status=413)
        return Response({"detail": "Bad request.", "code": "bad_request"}, status=400)

    response = drf_exception_handler(exc, context)
    if response is not None:
        if isinstance(response.data, list):  # a bare ValidationError-like list from elsewhere
            response.data = validation_body(response.data)
        return response

    # Unhandled: log with the request id, answer the generic 500 (never a traceback).
    request_id = request_id_var.get()
    request = context.get("request")
    logger.error(
        "Unhandled exception on %s %s",
        getattr(request, "method", "?"),
        getattr(request, "path", "?"),
        exc_info=exc,
    )
    set_rollback()
    return Response({"detail": SERVER_ERROR_DETAIL, "request_id": request_id}, status=500)
