"""gunicorn's access log (on with plain logs, e.g. under `serve.sh`) writes the request line
as received. This logger class redacts the values of secret-looking query parameters
(core/redaction.py) in every atom that can hold them, and credentials sent in headers, so
a format that names them cannot write them either."""

from __future__ import annotations

from gunicorn.glogging import Logger

from core.redaction import REDACTED, redact_query, redact_url

_SECRET_HEADERS = ("{authorization}i", "{x-api-key}i", "{cookie}i", "{proxy-authorization}i")


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["r"] = "%s %s %s" % (environ["REQUEST_METHOD"], redact_url(environ["RAW_URI"]),
                                   environ["SERVER_PROTOCOL"])
        atoms["q"] = redact_query(environ.get("QUERY_STRING", ""))
        atoms["f"] = redact_url(environ.get("HTTP_REFERER", "-"))
        if "{referer}i" in atoms:
            atoms["{referer}i"] = redact_url(atoms["{referer}i"])
        for name in _SECRET_HEADERS:
            if name in atoms:
                atoms[name] = REDACTED
        return atoms
