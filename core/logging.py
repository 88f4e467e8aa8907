"""Log records of Egret: the request id travels in a context variable so every line of a request
can carry it, and a record is written either as one JSON object per line (production) or as
readable text (development). `LOG_FORMAT` chooses; see `log_format`."""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import datetime, timezone
from typing import Any

from django.http import HttpRequest

from core.redaction import redact_url

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

LOG_FORMATS = ("json", "plain")

# Everything a LogRecord carries by itself; any other attribute came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id", "taskName",
}


def log_format(value: str | None, debug: bool) -> str:
    """`LOG_FORMAT` when set (json | plain), else JSON in production and text under DEBUG."""
    if value is None or not value.strip():
        return "plain" if debug else "json"
    chosen = value.strip().lower()
    if chosen not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {value!r}.")
    return chosen


def record_extras(record: logging.LogRecord) -> dict:
    """The fields a call passed with `extra=`, in the order given."""
    return {key: _loggable(value) for key, value in vars(record).items()
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_")}


def _loggable(value: Any) -> Any:
    """Django's loggers (django.request, django.security.*) pass `extra={"request": request}`,
    and a request's repr holds its whole query string, where a secret may have been sent by
    mistake: a request is written as its method and path, secret-looking values redacted."""
    request = getattr(value, "_request", value)  # a DRF Request wraps the HttpRequest
    if isinstance(request, HttpRequest):
        return f"{request.method} {redact_url(request.get_full_path())}"
    return value


def _request_id(record: logging.LogRecord) -> str:
    # Set by RequestIDFilter; handlers without the filter (gunicorn's) read the variable.
    return getattr(record, "request_id", None) or request_id_var.get()


class RequestIDFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per record, on one line: time (UTC, ISO 8601), level, logger, message,
    request_id, then the `extra` fields; `exception` holds the traceback when there is one.
    An extra field never replaces one of the five (it is kept as `<name>_`)."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, tz=timezone.utc)
        payload = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id(record),
        }
        for key, value in record_extras(record).items():
            payload[f"{key}_" if key in payload else key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        # ASCII only: a line stays valid whatever encoding the log stream has.
        return json.dumps(payload, default=str, separators=(",", ":"))


class PlainFormatter(logging.Formatter):
    """Readable lines for development: the classic layout, then the `extra` fields as
    key=value pairs."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s "
                         "%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = _request_id(record)
        line = super().format(record)
        extras = record_extras(record)
        if not extras:
            return line
        first, newline, rest = line.partition("\n")  # keep a traceback below the fields
        pairs = " ".join(f"{key}={value}" for key, value in extras.items())
        return f"{first} {pairs}{newline}{rest}"
