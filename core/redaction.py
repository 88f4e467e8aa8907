"""Secrets travel in URLs by mistake (`?api_key=`, `?token=`): log lines keep the parameter
names and hide their values. Used by the gunicorn access log (core/accesslog.py) and by our
log formatters for the requests Django's loggers pass along (core/logging.py)."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

REDACTED = "REDACTED"
# A parameter whose name contains one of these words is a secret (api_key, access_token,
# client_secret, new_password, X-Api-Key...).
_SECRET_NAME = re.compile(r"key|token|password|passwd|secret|signature", re.IGNORECASE)


def redact_query(query: str) -> str:
    """The query string with the value of every secret-looking parameter replaced; everything
    else as sent (same order, same encoding)."""
    if not query:
        return query
    parts = []
    for part in query.split("&"):
        name, equals, _value = part.partition("=")
        if equals and _SECRET_NAME.search(unquote_plus(name)):
            part = f"{name}={REDACTED}"
        parts.append(part)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """A path or URL with its query string redacted."""
    path, mark, query = url.partition("?")
    return f"{path}{mark}{redact_query(query)}" if mark else url
