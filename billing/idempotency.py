"""`Idempotency-Key` for POST endpoints (API.md 7): the first outcome for a key is kept 24 hours
per organization and replayed to retries with the same body; a different body is a 400; a
retry while the first is still running is a 409."""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.http import HttpResponseBase, StreamingHttpResponse
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing.models import IdempotencyRecord
from core.exceptions import FieldError
from core.tenancy import acting_context

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
TTL = timedelta(hours=24)
# A record left "in progress" this long belongs to a request that died; a retry may take it.
STALE_AFTER = timedelta(minutes=10)
MAX_KEY_LENGTH = 255
STREAM_KEY = "ndjson_events"


class IdempotencyConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = ("A request with this Idempotency-Key is still in progress. "
                      "Retry after it has completed.")
    default_code = "idempotency_in_progress"


class IdempotencyMismatch(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = ("This Idempotency-Key was already used with a different request. "
                      "Use a new key for a new request.")
    default_code = "idempotency_key_reused"


def request_fingerprint(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def idempotency_begin(organization, key: str, request: Request
                      ) -> tuple[IdempotencyRecord, bool]:
    """Returns (record, is_replay). Raises 400 on a different request, 409 while in progress."""
    fingerprint = request_fingerprint(request)
    for _ in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    organization=organization, key=key, method=request.method,
                    path=request.path[:500], request_hash=fingerprint, expires_at=now + TTL)
            return record, False
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.filter(organization=organization, key=key).first()
        if existing is None:
            continue  # purged meanwhile
        if existing.expires_at <= now:
            IdempotencyRecord.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
            continue
        if existing.request_hash != fingerprint:
            raise IdempotencyMismatch()
        if existing.state == IdempotencyRecord.State.COMPLETED:
            return existing, True
        taken = IdempotencyRecord.objects.filter(
            pk=existing.pk, state=IdempotencyRecord.State.IN_PROGRESS,
            created_at__lt=now - STALE_AFTER,
        ).update(created_at=now, expires_at=now + TTL)
        if taken:
            existing.created_at = now
            return existing, False
        raise IdempotencyConflict()
    raise IdempotencyConflict()


def idempotency_store(record: IdempotencyRecord, status_code: int, body) -> None:
    if status_code >= 500 or status_code in (409, 429):
        # Nothing was kept (credits are refunded on failures): let a retry run again.
        idempotency_release(record)
        return
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecord.State.COMPLETED, response_status=status_code,
        response_body=json.loads(json.dumps(body, default=str)),
    )


def idempotency_finish(record: IdempotencyRecord, response: Response) -> None:
    idempotency_store(record, response.status_code, response.data)


def idempotency_release(record: IdempotencyRecord) -> None:
    """Forget a request that did not complete, so that a retry runs it again."""
    IdempotencyRecord.objects.filter(pk=record.pk).delete()


def stream_body(events: list[dict]) -> dict:
    """How a completed NDJSON stream is kept for replay."""
    return {STREAM_KEY: events}


def replay_response(record: IdempotencyRecord) -> HttpResponseBase:
    body = record.response_body
    if isinstance(body, dict) and set(body) == {STREAM_KEY}:
        lines = [(json.dumps(event) + "\n").encode() for event in body[STREAM_KEY]]
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson",
                                         status=record.response_status)
        response[REPLAY_HEADER] = "true"
        return response
    return Response(body, status=record.response_status, headers={REPLAY_HEADER: "true"})


def idempotency_purge(now=None) -> int:
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted


def idempotent(method):
    """Decorate an APIView's `post`. Without the header the view runs as usual."""

    @functools.wraps(method)
    def wrapper(view, request: Request, *args, **kwargs) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return method(view, request, *args, **kwargs)
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            raise FieldError(HEADER, f"must be 1 to {MAX_KEY_LENGTH} characters.")
        organization = acting_context(request).organization
        record, replay = idempotency_begin(organization, key, request)
        if replay:
            return replay_response(record)
        request.idempotency_record = record
        try:
            response = method(view, request, *args, **kwargs)
        except exceptions.APIException as exc:
            response = view.handle_exception(exc)
        except BaseException:
            idempotency_release(record)
            raise
        if getattr(response, "streaming", False):
            return response  # the stream stores or releases the record when it ends
        idempotency_finish(record, response)
        return response

    return wrapper
