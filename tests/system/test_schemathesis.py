"""Property-based fuzzing of every operation in `/v1/schema/` with schemathesis, against a
served instance (API.md 1): whatever a client sends, valid or not, authenticated with a JWT
or with an API key, the answer is never a 5xx, and every error is a JSON object with a
non-empty `detail` string.

Each operation gets a bounded, derandomized Hypothesis run (positive and negative cases, and
the schema's own examples); every case is sent twice, once with the demo user's JWT (acting
in the demo organization, unless the case brings its own `X-Organization`) and once with the
demo API key. Findings are collected across all operations and reported together.

Generated identifiers are random, so they only ever reach the "not found" branches; some
draws put real values in their place instead (the demo organization and a real domain and
category, one of the organization's sessions and documents, the API key, the demo user and
their tokens, a fresh Markdown file, pagination cursors with odd positions, dates at the
ends of the calendar), so the handlers behind the lookups get fuzzed too.
Operations that can take that state away run last: PATCH and POST on the organization and
its members, then every DELETE, the key rotation and the JWT logout. The API key the key
calls authenticate with can be rotated or revoked that way; it is then taken from the rotate
response or re-created with the JWT (logout and refresh only blacklist refresh tokens: the
access token keeps working). Requests the client library refuses to send (header values with
line breaks or characters outside Latin-1) never reach the server and are not counted."""

from __future__ import annotations

import json
import time
from base64 import b64encode
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timezone
from typing import Any
from urllib.parse import quote, urlencode

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, strategies as st
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.system.support import (DEMO_EMAIL, DEMO_PASSWORD, DEMO_SLUG, QUESTION, call,
                                   serving)

pytestmark = pytest.mark.django_db

# Cases per operation (positive, negative and example cases together); each is sent twice.
EXAMPLES_PER_OPERATION = 30
# Generous: a finding here should be a hung request, not a loaded CI machine.
REQUEST_TIMEOUT = 30
# Throttles are courtesy (API.md 11); here they would only turn cases into 429s at random.
UNTHROTTLED = {"THROTTLE_RATE_DEFAULT": "1000000/min", "THROTTLE_RATE_QUERY": "1000000/min",
               "THROTTLE_RATE_LOGIN": "1000000/min"}
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
DATES = [date.min.isoformat(), date.max.isoformat(), "2000-02-29"]
WORDS = ["vendor", "continuity", "review", "impact", "analysis", "board", "recovery", "annual",
         "critical", "test", "plan", "outage", "Ω", "été", "🙂", "\t", "#", "-", "[1]"]


def markdown_files() -> SearchStrategy[bytes]:
    """Small Markdown documents the service accepts, each with new content (a new SHA-256)."""
    return st.lists(st.sampled_from(WORDS), min_size=3, max_size=40).map(
        lambda words: ("# Fuzzed note\n\n" + " ".join(words) + "\n").encode())


def cursors() -> SearchStrategy[str]:
    """Cursors as the pagination writes them (base64 of `o=<offset>&r=<0|1>&p=<position>`),
    with positions that are, or are not, timestamps."""
    positions = st.one_of(st.datetimes(timezones=st.just(timezone.utc)).map(str),
                          st.text(max_size=30), st.sampled_from(["9999-12-31 23:59:59-01:00",
                                                                 "0001-01-01 00:00:00+01:00"]))
    fields = st.fixed_dictionaries({"o": st.integers(0, 10**12).map(str)},
                                   optional={"r": st.sampled_from(["0", "1"]), "p": positions})
    return fields.map(lambda query: b64encode(urlencode(query).encode()).decode())


@pytest.fixture(scope="module")
def served(server_db, tmp_path_factory):
    with serving(server_db, tmp_path_factory.mktemp("schemathesis"), env=UNTHROTTLED) as app:
        yield app


def login(served) -> str:
    reply = call(served.port, "POST", "/auth/jwt/create/",
                 body={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
    assert reply.status == 200, reply.body[:300]
    return reply.json()["access"]


def cursor(**fields: str) -> str:
    return quote(b64encode(urlencode(fields).encode()).decode())


@pytest.mark.parametrize("url", [
    # The day after the last date of the calendar is no date: the range has no upper bound.
    "/v1/billings/usage/?start=9999-12-31&end=9999-12-31",
    "/v1/billings/usage/?end=9999-12-31&group_by=domain",
])
def test_usage_up_to_the_last_day_of_the_calendar(served, url):
    """Found by the fuzzing below: a 500 (OverflowError computing the day after `end`)."""
    reply = call(served.port, "GET", url, key=login(served))
    assert reply.status == 200, reply.body[:300]


@pytest.mark.parametrize("path", ["/v1/billings/ledger/", "/v1/documents/"])
@pytest.mark.parametrize("position", ["abc", "", "2026-13-01T00:00:00Z",
                                      "9999-12-31 23:59:59-01:00", "0001-01-01 00:00:00+01:00"])
def test_a_cursor_whose_position_is_no_timestamp_is_invalid(served, path, position):
    """Found by the fuzzing below: the position reached the `created_at` filter, a 500."""
    reply = call(served.port, "GET", f"{path}?cursor={cursor(o='0', p=position)}",
                 key=login(served), headers={"X-Organization": DEMO_SLUG})
    assert reply.status == 404 and reply.is_json_error, (reply.status, reply.body[:300])
    assert reply.json()["detail"] == "Invalid cursor"


def test_a_cursor_the_service_wrote_still_pages(served):
    token = login(served)
    answered = call(served.port, "POST", "/v1/query/", body=QUESTION, key=token)
    assert answered.status == 200, answered.body[:300]  # the ledger has two entries or more
    first = call(served.port, "GET", "/v1/billings/ledger/?limit=1", key=token)
    assert first.status == 200 and first.json()["next"], first.body[:300]
    following = first.json()["next"].split("/v1/", 1)[1]
    second = call(served.port, "GET", f"/v1/{following}", key=token)
    assert second.status == 200, second.body[:300]
    assert second.json()["results"] != first.json()["results"]


@dataclass
class Finding:
    credential: str
    method: str
    path: str
    status: int | str
    problem: str
    body: str
    request: str

    def __str__(self) -> str:
        return (f"{self.method} {self.path} [{self.credential}] -> {self.status}: "
                f"{self.problem}\n    body: {self.body}\n    request: {self.request}")


def contract_problem(case, response) -> str | None:
    """What is wrong with this answer under API.md 1, if anything."""
    if response.status_code >= 500:
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except BaseException as exc:  # noqa: BLE001 - schemathesis raises a FailureGroup
            failures = getattr(exc, "exceptions", [exc])
            return "server error: " + ", ".join(getattr(failure, "title", repr(failure))
                                                for failure in failures)
        return "server error"
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith("application/json"):
        return f"error body is not JSON (Content-Type {content_type!r})"
    try:
        body = json.loads(response.content)
    except ValueError:
        return "error body does not parse as JSON"
    if not isinstance(body, dict) or not isinstance(body.get("detail"), str) \
            or not body["detail"]:
        return "error body has no non-empty `detail` string"
    return None


@dataclass
class Fuzzer:
    url: str
    api_key: str
    session: requests.Session = field(default_factory=requests.Session)
    findings: list[Finding] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    requests_sent: int = 0
    refused_by_client: int = 0
    # Real values a draw may put in place of a generated path or query parameter or body
    # field: a list (read when drawn, so replaced credentials are seen) or a strategy.
    known: dict[str, Any] = field(default_factory=dict)

    # --- credentials and real objects ---------------------------------------------------
    def get(self, path: str, headers: dict[str, str]) -> requests.Response:
        return self.session.get(f"{self.url}{path}", headers=headers, timeout=REQUEST_TIMEOUT)

    def post(self, path: str, headers: dict[str, str] | None = None,
             **kwargs) -> requests.Response:
        return self.session.post(f"{self.url}{path}", headers=headers or {},
                                 timeout=REQUEST_TIMEOUT, **kwargs)

    def jwt_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}

    def key_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def prepare(self) -> None:
        login = self.post("/auth/jwt/create/",
                          json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
        assert login.status_code == 200, login.text
        self.access = login.json()["access"]
        me = self.get("/auth/me/", self.jwt_headers()).json()
        self.key_id = self.get("/auth/me/", self.key_headers()).json()["api_key"]["id"]
        answer = self.post("/v1/query/", self.key_headers(), json=QUESTION)
        assert answer.status_code == 200, answer.text
        upload = self.post("/v1/documents/", self.key_headers(), files={
            "file": ("vendors.md", b"# Vendors\n\nCritical vendors are reviewed yearly.\n",
                     "text/markdown")})
        assert upload.status_code in (200, 202), upload.text
        self.known = {
            # path parameters
            "slug": [DEMO_SLUG, QUESTION["domain"]],
            "session_id": [answer.json()["session_id"]],
            "document_id": [upload.json()["id"]],
            "key_id": [self.key_id],
            "user_id": [me["user"]["id"]],
            # query parameters: opaque cursors, dates at the ends of the calendar
            "cursor": cursors(),
            "start": DATES,
            "end": DATES,
            # body fields
            "query": [QUESTION["query"]],
            "domain": [QUESTION["domain"]],
            "category": [QUESTION["category"]],
            "file": markdown_files(),
            "email": [DEMO_EMAIL],
            "password": [DEMO_PASSWORD],
            "token": [self.access],
            "refresh": [login.json()["refresh"]],
        }

    def after_jwt_call(self, operation, response) -> None:
        """Keep the real values current: the newest refresh token, and an API key that
        authenticates after a rotation or revocation of the one in use."""
        if response is None or response.status_code not in (200, 204):
            return
        path = operation.path
        if path in ("/auth/jwt/create/", "/auth/jwt/refresh/"):
            self.known["refresh"] = [json.loads(response.content)["refresh"]]
        if not path.startswith("/v1/billings/api-keys/{key_id}"):
            return
        if path.endswith("/rotate/") and json.loads(response.content)["id"] == self.key_id:
            self.api_key = json.loads(response.content)["key"]
        if self.get("/auth/me/", self.key_headers()).status_code == 401:
            created = self.post("/v1/billings/api-keys/",
                                {**self.jwt_headers(), "X-Organization": DEMO_SLUG},
                                json={"name": "fuzzing"})
            assert created.status_code == 201, created.text
            self.api_key, self.key_id = created.json()["key"], created.json()["id"]
            self.known["key_id"] = [self.key_id]

    # --- one request ------------------------------------------------------------------
    def send(self, case, credential: str, headers: dict[str, str]):
        try:
            response = case.call(base_url=self.url, session=self.session, headers=headers,
                                 timeout=REQUEST_TIMEOUT)
        except (requests.exceptions.InvalidHeader, UnicodeEncodeError):
            self.refused_by_client += 1
            return None
        except requests.RequestException as exc:
            self.requests_sent += 1
            self.record(case, credential, headers, "-", f"no answer: {exc!r}", b"")
            return None
        self.requests_sent += 1
        self.statuses[f"{case.method.upper()} {case.operation.path}", response.status_code] += 1
        problem = contract_problem(case, response)
        if problem:
            self.record(case, credential, headers, response.status_code, problem,
                        response.content)
        return response

    def record(self, case, credential, headers, status, problem, content: bytes) -> None:
        try:
            request = case.as_curl_command(headers=headers)
        except Exception:  # noqa: BLE001 - the report must not hide the finding
            request = repr(case)
        self.findings.append(Finding(credential, case.method.upper(), case.operation.path,
                                     status, problem, content[:300].decode(errors="replace"),
                                     request[:1500]))

    # --- generation -------------------------------------------------------------------
    def strategy(self, operation) -> SearchStrategy:
        generated = st.one_of([
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
            *operation.schema.get_strategies_from_examples(operation),
        ])
        known = self.known

        def real(draw, name):
            values = known[name]
            return draw(values if isinstance(values, SearchStrategy) else st.sampled_from(values))

        @st.composite
        def cases(draw):
            case = draw(generated)
            for name in list(case.path_parameters or {}):
                if name in known and draw(st.booleans()):
                    case.path_parameters[name] = real(draw, name)
            for values in (case.query, case.body):
                if isinstance(values, dict):
                    for name in list(values):
                        if name in known and draw(st.booleans()):
                            values[name] = real(draw, name)
            keep_organization_header = draw(st.booleans())
            return case, keep_organization_header

        return cases()

    def fuzz(self, operation) -> None:
        @hypothesis.given(drawn=self.strategy(operation))
        @hypothesis.settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
            database=None, suppress_health_check=list(HealthCheck), print_blob=False,
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
        def run(drawn):
            case, keep_organization_header = drawn
            jwt = self.jwt_headers()
            if not (keep_organization_header and "X-Organization" in (case.headers or {})):
                jwt["X-Organization"] = DEMO_SLUG
            self.after_jwt_call(operation, self.send(case, "jwt", jwt))
            self.send(case, "api_key", self.key_headers())

        run()


def all_operations(schema) -> list:
    """Every operation of the document, including GET /v1/schema/ itself (which
    `get_all_operations` leaves out), those that can take fixture state away last."""
    operations = [schema[path][method.upper()]
                  for path, item in schema.raw_schema["paths"].items()
                  for method in item if method in HTTP_METHODS]

    def destructive_rank(operation) -> int:
        method, path = operation.method.upper(), operation.path
        if method == "DELETE" or path.endswith("/rotate/") or path == "/auth/jwt/logout/":
            return 2
        if path.startswith("/v1/orgs/{slug}") and method in ("PATCH", "POST"):
            return 1
        return 0

    return sorted(operations, key=destructive_rank)  # stable: schema order within a rank


def test_no_server_errors_and_every_error_has_a_detail(served):
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(f"{served.url}/v1/schema/", timeout=30)
    operations = all_operations(schema)
    assert len(operations) >= 42, [operation.label for operation in operations]

    fuzzer = Fuzzer(served.url, served.api_key)
    fuzzer.prepare()
    for operation in operations:
        fuzzer.fuzz(operation)

    by_class = Counter()
    for (_, status), count in fuzzer.statuses.items():
        by_class[f"{status // 100}xx"] += count
    print(f"\nschemathesis: {len(operations)} operations, {fuzzer.requests_sent} requests in "
          f"{time.monotonic() - started:.1f} s ({dict(sorted(by_class.items()))}); "
          f"{fuzzer.refused_by_client} refused by the client")
    report = "\n".join(str(finding) for finding in fuzzer.findings[:30])
    assert not fuzzer.findings, (
        f"{len(fuzzer.findings)} answers break the error contract:\n{report}\n\n"
        f"server log:\n{served.logs()}")
    # The run got past authentication and lookups: most operations succeeded at least once
    # (not all: generated bodies rarely pass everything).
    succeeded = {label for (label, status) in fuzzer.statuses if status < 400}
    assert len(succeeded) >= len(operations) * 3 // 4, sorted(succeeded)
