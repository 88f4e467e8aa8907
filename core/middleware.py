from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Callable

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty

from core import metrics
from core.authentication import ApiKeyPrincipal
from core.errors import server_error_response
from core.logging import request_id_var

logger = logging.getLogger("egret.request")
_CLIENT_ERRORS = (Http404, PermissionDenied, SuspiciousOperation, BadRequest)

# A client's id is echoed only when it is short and plain; anything else gets a fresh one.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIDMiddleware:
    """Gives every request an id (the client's X-Request-ID when sane), returns it on every
    response, and turns any exception that escapes a view into the JSON 500 of the contract.

    It also writes the one `egret.request` line of each request and counts it in the metrics,
    when the response is done: at once for an ordinary response, when the server closes a
    streamed one (StreamEnd)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            closers = getattr(response, "_resource_closers", None)
            if response.streaming and closers is not None:
                StreamEnd(request, response, started).attach(closers)
            else:
                finish(request, response, started)
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


def finish(request: HttpRequest, response: HttpResponse, started: float) -> None:
    """Count the request in the metrics and write its line."""
    seconds = time.monotonic() - started
    try:
        metrics.observe_request(request, response.status_code, seconds)
    except Exception:
        logger.exception("could not count the request in the metrics")
    log_request(request, response, seconds)


class StreamEnd:
    """A streamed response is produced after the middleware has returned, and ends when the
    server closes it (last byte sent, or the client went away): its line is written then, so
    the latency covers the whole stream. Meanwhile the request id is set again around each
    step of the stream and around the closing, so the lines written then (the query's, a
    refund's) carry it too. Django runs `response._resource_closers` in order from close():
    the first one here sets the id, the last one writes the line and clears the id."""

    def __init__(self, request: HttpRequest, response: HttpResponse, started: float) -> None:
        self.request, self.response, self.started = request, response, started
        self.request_id = request.request_id  # type: ignore[attr-defined]
        self.token = None
        self.done = False

    def attach(self, closers: list) -> None:
        if getattr(self.response, "file_to_stream", None) is None:
            # (A file is left alone: replacing its content would lose the server's sendfile.)
            self.response.streaming_content = self.steps(self.response.streaming_content)
        closers.insert(0, self.closing)
        closers.append(self.closed)

    def steps(self, content):
        iterator = iter(content)
        while True:
            token = request_id_var.set(self.request_id)
            try:
                chunk = next(iterator)
            except StopIteration:
                return
            finally:
                request_id_var.reset(token)
            yield chunk

    def closing(self) -> None:
        if not self.done and self.token is None:
            self.token = request_id_var.set(self.request_id)

    def closed(self) -> None:
        if self.done:  # close() can be re-entered (a closer closing the response again)
            return
        self.done = True
        try:
            finish(self.request, self.response, self.started)
        except Exception:
            logger.exception("could not log the end of a stream")
        finally:
            if self.token is not None:
                try:
                    request_id_var.reset(self.token)
                except ValueError:  # closed from another context than it was opened in
                    request_id_var.set("-")
                self.token = None


def log_request(request: HttpRequest, response: HttpResponse, seconds: float) -> None:
    latency_ms = round(seconds * 1000, 1)
    status = response.status_code
    fields = {"event": "request", "method": request.method, "path": request.path,
              "route": metrics.route_label(request), "status": status,
              "latency_ms": latency_ms, "streamed": bool(response.streaming)}
    try:
        fields.update(principal_fields(request))
    except Exception:
        logger.exception("could not tell who made the request")
    logger.log(logging.ERROR if status >= 500 else logging.INFO, "%s %s %s %sms",
               request.method, request.path, status, latency_ms, extra=fields)


def principal_fields(request: HttpRequest) -> dict:
    """Who made the request, as the view resolved it. DRF authenticates inside the view and
    sets `user` on this HttpRequest as well (an ApiKeyPrincipal, a User, or None when it
    found no credentials); the acting organization is the one core.tenancy resolved, when the
    view asked for it. A session user (admin) is the lazy object of AuthenticationMiddleware,
    read only if something already evaluated it: logging never costs a query."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = None if user._wrapped is empty else user._wrapped
    acting = request.__dict__.get("_egret_acting")
    organization = acting.organization.slug if acting is not None else None
    if isinstance(user, ApiKeyPrincipal):
        key = user.api_key
        return {"principal": "api_key", "organization": organization or user.organization.slug,
                "api_key_prefix": key.key_prefix, "user_id": None}
    if user is not None and getattr(user, "is_authenticated", False):
        return {"principal": "user", "organization": organization, "api_key_prefix": None,
                "user_id": str(user.pk)}
    return {"principal": "anonymous", "organization": None, "api_key_prefix": None,
            "user_id": None}
