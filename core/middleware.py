from __future__ import annotations

import logging
import re
import uuid
from typing import Callable

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse

from core.errors import server_error_response
from core.logging import request_id_var

logger = logging.getLogger("egret.request")
_CLIENT_ERRORS = (Http404, PermissionDenied, SuspiciousOperation, BadRequest)

# A client's id is echoed only when it is short and plain; anything else gets a fresh one.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIDMiddleware:
    """Gives every request an id (the client's X-Request-ID when sane), returns it on every
    response, and turns any exception that escapes a view into the JSON 500 of the contract."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            return response
        finally:
            request_id_var.reset(token)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # Views outside DRF (DRF has its own handler); also answers JSON when DEBUG is on.
        # Exceptions Django maps to 4xx go to its handlers (handler400/403/404, JSON as well).
        if isinstance(exception, _CLIENT_ERRORS):
            return None
        logger.error("Unhandled exception on %s %s", request.method, request.path,
                     exc_info=exception)
        return server_error_response(getattr(request, "request_id", request_id_var.get()))
