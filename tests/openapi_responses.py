"""Every JSON response the suite's API calls get is checked against the OpenAPI document
(API.md 10) by a strict OpenAPI 3.0 validator: `nullable` counts only beside a `type`,
`required` must be met, formats (uuid, date-time, email, uri) are checked, and an object
documented with properties may carry no undocumented key (the error body excepted: API.md 1
allows extra keys there).

tests/conftest.py wraps Django's test client (DRF's APIClient is one) with `checked` and
fails the test that got a mismatching response. Responses whose path, method and status the
document does not list, streams and non-JSON bodies are not checked. `EGRET_CHECK_RESPONSES=0`
switches the check off for a run."""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

ENABLED = os.environ.get("EGRET_CHECK_RESPONSES", "1") != "0"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# Objects that may carry keys the document does not name.
OPEN_COMPONENTS = {"Error"}


@dataclass(frozen=True)
class Mismatch:
    method: str
    path: str
    status: int
    problem: str

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}: {self.problem}"


def _closed(node: Any) -> Any:
    """Objects with documented properties get `additionalProperties: false`."""
    if isinstance(node, dict):
        node = {key: _closed(value) for key, value in node.items()}
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_closed(item) for item in node]
    return node


class ResponseContract:
    """The document, and a validator per documented (template, method, status)."""

    def __init__(self, document: dict) -> None:
        self.document = document
        components = copy.deepcopy(document.get("components", {}))
        components["schemas"] = {
            name: schema if name in OPEN_COMPONENTS else _closed(schema)
            for name, schema in components.get("schemas", {}).items()}
        self.components = components
        self._validators: dict[tuple[str, str, str], OAS30ReadValidator | None] = {}

    @cached_property
    def templates(self) -> list[tuple[re.Pattern, str]]:
        """Literal paths before templated ones (`/v1/sessions/recent/` is not a session id)."""
        paths = sorted(self.document["paths"], key=lambda path: (path.count("{"), path))
        return [(re.compile("^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(path)) + "$"),
                 path) for path in paths]

    def template(self, path: str) -> str | None:
        for pattern, template in self.templates:
            if pattern.match(path):
                return template
        return None

    def validator(self, template: str, method: str, status: str) -> OAS30ReadValidator | None:
        key = (template, method, status)
        if key not in self._validators:
            operation = self.document["paths"][template].get(method, {})
            media = operation.get("responses", {}).get(status, {}).get("content", {}).get(
                "application/json")
            if media is None or "schema" not in media:
                self._validators[key] = None
            else:
                schema = {**_closed(media["schema"]), "components": self.components}
                self._validators[key] = OAS30ReadValidator(schema,
                                                           format_checker=oas30_format_checker)
        return self._validators[key]

    def stream_event_errors(self, template: str, method: str, event: Any) -> list[str]:
        """An NDJSON line against the event schema of the operation's `x-egret-stream`."""
        stream = self.document["paths"][template][method]["x-egret-stream"]
        validator = OAS30ReadValidator({**_closed(stream["event"]), "components": self.components},
                                       format_checker=oas30_format_checker)
        return [f"{'/'.join(map(str, error.absolute_path)) or '(event)'}: {error.message}"
                for error in validator.iter_errors(event)]

    def check(self, method: str, path: str, status: int, body: Any) -> list[Mismatch]:
        template = self.template(path)
        if template is None or method not in HTTP_METHODS:
            return []
        validator = self.validator(template, method, str(status))
        if validator is None:
            return []
        return [Mismatch(method.upper(), path, status,
                         f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: "
                         f"{error.message}")
                for error in validator.iter_errors(body)]


_contract: ResponseContract | None = None
mismatches: list[Mismatch] = []


def contract() -> ResponseContract:
    """The document as drf-spectacular generates it, built once per test process."""
    global _contract
    if _contract is None:
        from drf_spectacular.generators import SchemaGenerator

        _contract = ResponseContract(json.loads(json.dumps(
            SchemaGenerator().get_schema(request=None, public=True), default=str)))
    return _contract


def check_response(response) -> None:
    """Record what a test-client response breaks (tests/conftest.py fails the test)."""
    if getattr(response, "streaming", False):
        return
    content_type = response.get("Content-Type", "")
    if not content_type.startswith("application/json"):
        return
    request = response.request
    method = request["REQUEST_METHOD"].lower()
    path = request["PATH_INFO"]
    if method not in HTTP_METHODS:  # HEAD has no body; OPTIONS is not documented
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        mismatches.append(Mismatch(method.upper(), path, response.status_code,
                                   "the body is not JSON"))
        return
    mismatches.extend(contract().check(method, path, response.status_code, body))


def checked(request_method):
    """Wraps django.test.Client.request."""

    def request(self, **kwargs):
        response = request_method(self, **kwargs)
        check_response(response)
        return response

    request.__wrapped__ = request_method
    return request
