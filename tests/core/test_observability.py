"""Observability: one JSON log line per request (`egret.request`) and per query
(`egret.query`), and /metrics in Prometheus text format (counters, histograms, the ingestion
queue) behind a token or an address allowlist."""

from __future__ import annotations

import http.client
import io
import json
import logging
import sys
import time
import urllib.error
import urllib.request

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from assistant.providers.base import Finish, ProviderError, TextDelta, Usage
from assistant.providers.extractive import ExtractiveProvider
from core.logging import JSONFormatter, PlainFormatter, log_format, request_id_var
from knowledge.models import Document
# The assistant tests' fixtures (a library, an owner's client, media under tmp_path).
from tests.assistant.conftest import _media_in_tmp, api, ask, library  # noqa: F401
from tests.core.test_settings import manage
from tests.servers import ServedApp

CAKE = "Best chocolate cake recipe with raspberries?"  # nothing in the library covers it


# --- helpers -----------------------------------------------------------------------------------
@pytest.fixture
def console():
    """The lines the configured `console` handler (settings.LOGGING) writes, parsed: its
    request-id filter, with the JSON formatter whatever LOG_FORMAT the tests run with
    (test_log_format_follows_the_environment checks which one settings pick)."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    formatter = handler.formatter
    handler.setFormatter(JSONFormatter())

    def lines(logger: str | None = None) -> list[dict]:
        parsed = [json.loads(line) for line in stream.getvalue().splitlines()
                  if line.startswith("{")]
        return [line for line in parsed if logger is None or line["logger"] == logger]

    try:
        yield lines
    finally:
        handler.setStream(previous)
        handler.setFormatter(formatter)


def only(items: list):
    assert len(items) == 1, items
    return items[0]


def samples_of(text: str) -> dict[tuple, float]:
    """Prometheus text parsed: {(sample name, frozenset of labels): value}."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def scrape(client, **extra) -> dict[tuple, float]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return samples_of(response.content.decode())


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- log format --------------------------------------------------------------------------------
def test_log_format_defaults_to_json_unless_debug():
    assert log_format(None, debug=False) == "json"
    assert log_format("", debug=True) == "plain"
    assert log_format(" JSON ", debug=True) == "json"
    assert log_format("plain", debug=False) == "plain"
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        log_format("xml", debug=False)


LOG_A_LINE = ("import logging; logging.getLogger('egret.test').warning("
              "'hello', extra={'answer': 42})")


@pytest.mark.parametrize("env, expected", [
    ({"DEBUG": "0"}, "json"),
    ({"DEBUG": "1"}, "plain"),
    ({"DEBUG": "1", "LOG_FORMAT": "json"}, "json"),
    ({"DEBUG": "0", "LOG_FORMAT": "plain"}, "plain"),
])
def test_log_format_follows_the_environment(tmp_path, env, expected):
    result = manage("shell", "--no-imports", "-c", LOG_A_LINE, SECRET_KEY="s" * 50,
                    EGRET_VAR_DIR=str(tmp_path), LOG_FORMAT=env.pop("LOG_FORMAT", ""), **env)
    assert result.returncode == 0, result.stderr
    line = only([line for line in result.stderr.splitlines() if "hello" in line])
    if expected == "json":
        payload = json.loads(line)
        assert payload["message"] == "hello" and payload["answer"] == 42
        assert payload["logger"] == "egret.test" and payload["request_id"] == "-"
    else:
        assert line.endswith("WARNING egret.test request_id=- hello answer=42")


@pytest.mark.parametrize("env, error", [
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be one of json, plain"),
    ({"EGRET_METRICS_ALLOW_IPS": "127.0.0.1,localhost"},
     "EGRET_METRICS_ALLOW_IPS: 'localhost' is not an IP address or network"),
])
def test_bad_observability_settings_are_refused(tmp_path, env, error):
    result = manage("check", DEBUG="0", SECRET_KEY="s" * 50, EGRET_VAR_DIR=str(tmp_path), **env)
    assert result.returncode != 0
    assert error in result.stderr


def test_json_formatter_writes_one_line_with_extras_and_traceback():
    logger = logging.getLogger("egret.test")
    try:
        raise RuntimeError("line one\nline two")
    except RuntimeError:
        record = logger.makeRecord("egret.test", logging.ERROR, __file__, 1, "failed %s",
                                   ("here",), sys.exc_info(),
                                   extra={"model": "extractive", "level": "shadowed",
                                          "when": timezone.now()})
    token = request_id_var.set("req-1")
    try:
        line = JSONFormatter().format(record)
    finally:
        request_id_var.reset(token)
    assert "\n" not in line
    payload = json.loads(line)
    assert list(payload)[:5] == ["time", "level", "logger", "message", "request_id"]
    assert payload["time"].endswith("Z") and payload["level"] == "ERROR"
    assert payload["logger"] == "egret.test" and payload["message"] == "failed here"
    assert payload["request_id"] == "req-1"
    assert payload["model"] == "extractive" and payload["level_"] == "shadowed"
    assert isinstance(payload["when"], str)
    assert "RuntimeError: line one\nline two" in payload["exception"]


def test_plain_formatter_appends_extras():
    record = logging.getLogger("egret.test").makeRecord(
        "egret.test", logging.INFO, __file__, 1, "GET / 200", (), None,
        extra={"principal": "user", "status": 200})
    line = PlainFormatter().format(record)
    assert " INFO egret.test request_id=- GET / 200 principal=user status=200" in line


# --- the request line --------------------------------------------------------------------------
def test_one_line_per_request_for_a_user(owner, org, jwt_client, console):
    response = jwt_client(owner, org).get("/v1/models/", HTTP_X_REQUEST_ID="trace-7")

    assert response.status_code == 200
    line = only(console("egret.request"))
    assert line["request_id"] == "trace-7" and line["level"] == "INFO"
    assert line["method"] == "GET" and line["path"] == "/v1/models/"
    assert line["route"] == "model-list" and line["status"] == 200
    assert isinstance(line["latency_ms"], (int, float)) and line["latency_ms"] >= 0
    assert line["principal"] == "user" and line["user_id"] == str(owner.pk)
    assert line["organization"] == "acme" and line["api_key_prefix"] is None
    assert line["streamed"] is False


def test_user_without_x_organization_is_logged_in_the_default_org(owner, org, jwt_client,
                                                                  console):
    assert jwt_client(owner).get("/v1/models/").status_code == 200
    assert only(console("egret.request"))["organization"] == "acme"


def test_user_on_an_endpoint_outside_organizations(owner, org, jwt_client, console):
    assert jwt_client(owner).get("/auth/me/").status_code == 200
    line = only(console("egret.request"))
    assert line["principal"] == "user" and line["user_id"] == str(owner.pk)
    assert line["route"] == "me"


def test_one_line_per_request_for_an_api_key(org, make_key, key_client, console):
    key, raw = make_key(org)

    response = key_client(raw).get("/v1/models/")

    assert response.status_code == 200
    line = only(console("egret.request"))
    assert line["request_id"] == response["X-Request-ID"]
    assert line["principal"] == "api_key" and line["api_key_prefix"] == key.key_prefix
    assert line["organization"] == "acme" and line["user_id"] is None
    assert raw not in json.dumps(line)


def test_admin_session_user(staff, console):
    assert staff.get("/admin/").status_code == 200
    line = only(console("egret.request"))
    assert line["principal"] == "user" and line["route"] == "admin:index"
    assert line["user_id"] and line["organization"] is None


@pytest.mark.parametrize("path, headers, status", [
    ("/health/", {}, 200),
    ("/auth/me/", {}, 401),
    ("/auth/me/", {"HTTP_AUTHORIZATION": "Bearer egret_not_a_real_key"}, 401),
    ("/auth/me/", {"HTTP_AUTHORIZATION": "Bearer not.a.jwt"}, 401),
    ("/no/such/page/", {}, 404),
])
def test_anonymous_requests(client, db, console, path, headers, status):
    response = client.get(path, **headers)

    assert response.status_code == status
    line = only(console("egret.request"))
    assert line["principal"] == "anonymous" and line["status"] == status
    assert line["organization"] is None and line["user_id"] is None
    assert line["api_key_prefix"] is None


def test_server_error_line_is_logged_at_error(owner, org, jwt_client, console, monkeypatch):
    from core import views as core_views

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(core_views.MeView, "get", boom)
    response = jwt_client(owner, org).get("/auth/me/")

    assert response.status_code == 500
    line = only(console("egret.request"))
    assert line["status"] == 500 and line["level"] == "ERROR"
    assert line["request_id"] == response["X-Request-ID"]


def test_streamed_answer_is_logged_when_the_stream_ends(api, org, console):
    response = ask(api, stream=True)
    assert response.status_code == 200 and response.streaming
    assert console("egret.request") == []  # not yet: the answer is still to be sent

    body = b"".join(response.streaming_content)  # the test client closes it at the end

    done = json.loads(body.decode().splitlines()[-1])
    assert done["type"] == "done"
    query = only(console("egret.query"))
    line = only(console("egret.request"))
    assert line["streamed"] is True and line["status"] == 200 and line["route"] == "query"
    assert line["principal"] == "user" and line["organization"] == "acme"
    # The query line is written while the stream runs, and still carries the request's id.
    assert query["request_id"] == line["request_id"] == response["X-Request-ID"]
    assert query["stream"] is True
    assert line["latency_ms"] >= query["total_ms"]
    assert request_id_var.get() == "-"  # and the id is gone once the response is closed


def test_stream_abandoned_by_the_client(api, org, console, monkeypatch):
    def slow(self, request):
        yield TextDelta("First part. ")
        yield TextDelta("Second part. ")
        yield Finish(Usage(1, 1), [])

    monkeypatch.setattr(ExtractiveProvider, "stream", slow)
    response = ask(api, stream=True)
    iterator = iter(response.streaming_content)
    next(iterator)
    next(iterator)
    monkeypatch.setattr(connection, "close_if_unusable_or_obsolete", lambda: None)
    response.close()

    lines = [line for line in console() if line["logger"] in ("egret.query", "egret.request")]
    assert [line["logger"] for line in lines] == ["egret.query", "egret.request"]
    failed, request = lines
    assert failed["message"] == "query failed" and failed["event"] == "query_failed"
    assert failed["reason"] == "stream closed before the answer was complete"
    assert failed["request_id"] == request["request_id"] == response["X-Request-ID"]
    assert request["status"] == 200 and request["streamed"] is True


# --- the query line ----------------------------------------------------------------------------
def test_query_line(api, org, console):
    response = ask(api)

    assert response.status_code == 200
    line = only(console("egret.query"))
    assert line["message"] == "query answered" and line["event"] == "query"
    assert line["request_id"] == response["X-Request-ID"]
    assert line["organization"] == "acme" and line["model"] == "extractive"
    assert line["credits"] == 1 and line["insufficient_context"] is False
    assert line["stream"] is False and line["mode"] == "compliance"
    for field in ("retrieval_ms", "generation_ms", "total_ms"):
        assert isinstance(line[field], int)


def test_query_line_without_grounding(api, org, console):
    assert ask(api, query=CAKE).status_code == 200
    line = only(console("egret.query"))
    assert line["insufficient_context"] is True and line["credits"] == 0


def test_failed_query_logs_its_refund(api, org, console, monkeypatch):
    def fails(self, request):
        raise ProviderError("upstream is down")

    monkeypatch.setattr(ExtractiveProvider, "generate", fails)
    assert ask(api).status_code >= 500
    line = only(console("egret.query"))
    assert line["level"] == "WARNING" and line["event"] == "query_failed"
    assert line["reason"] == "request failed" and line["organization"] == "acme"
    assert line["model"] == "extractive" and line["credits"] == 0


def test_query_line_reaches_the_metrics_whatever_the_log_level(api, org, client, settings,
                                                                 console):
    before = scrape(client)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # LOG_LEVEL=WARNING
    try:
        assert ask(api).status_code == 200
    finally:
        root.setLevel(level)
    after = scrape(client)
    assert value(after, "egret_queries_total", outcome="answered", model="extractive") == (
        value(before, "egret_queries_total", outcome="answered", model="extractive") + 1)


# --- /metrics ----------------------------------------------------------------------------------
def test_metrics_count_requests_by_method_route_and_status(client, db):
    before = scrape(client)
    for _ in range(3):
        assert client.get("/health/").status_code == 200
    assert client.get("/no/such/page/").status_code == 404
    assert client.post("/health/").status_code == 405

    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("egret_http_requests_total", method="GET", route="health", status="200") == 3
    assert delta("egret_http_requests_total", method="GET", route="not-found",
                 status="404") == 1
    assert delta("egret_http_requests_total", method="POST", route="health", status="405") == 1
    # The previous scrape is counted too, under its URL name.
    assert delta("egret_http_requests_total", method="GET", route="metrics", status="200") == 1
    assert delta("egret_http_request_duration_seconds_count", method="GET",
                 route="health") == 3
    assert value(after, "egret_http_request_duration_seconds_bucket", method="GET",
                 route="health", le="+Inf") >= 3
    # Raw paths never become labels.
    assert not any(("/no/such/page/" in str(labels)) for _, labels in after)


def test_unusual_methods_share_one_label(client, db):
    before = scrape(client)
    client.generic("BREW", "/health/")
    after = scrape(client)
    assert value(after, "egret_http_requests_total", method="OTHER", route="health",
                 status="405") - value(before, "egret_http_requests_total", method="OTHER",
                                       route="health", status="405") == 1


def test_metrics_of_queries(api, org, client, monkeypatch):
    before = scrape(client)
    assert ask(api).status_code == 200
    streamed = ask(api, stream=True)
    assert b'"type": "done"' in b"".join(streamed.streaming_content)
    assert ask(api, query=CAKE).status_code == 200
    monkeypatch.setattr(ExtractiveProvider, "generate",
                        lambda self, request: (_ for _ in ()).throw(ProviderError("down")))
    assert ask(api).status_code >= 500

    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    # Two answers (one plain, one streamed), one ungrounded, one failure.
    assert delta("egret_queries_total", outcome="answered", model="extractive") == 2
    assert delta("egret_queries_total", outcome="insufficient_context", model="extractive") == 1
    assert delta("egret_queries_total", outcome="failed", model="extractive") == 1
    assert delta("egret_query_duration_seconds_count", model="extractive", stream="false") == 2
    assert delta("egret_query_duration_seconds_count", model="extractive", stream="true") == 1
    assert delta("egret_query_duration_seconds_bucket", model="extractive", stream="true",
                 le="+Inf") == 1
    assert delta("egret_credits_charged_total", model="extractive") == 2


def test_metrics_ingestion_queue(client, org, settings):
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from knowledge.tasks import ingest_document

    processing = Document.objects.filter(status=Document.Status.PROCESSING).count()
    for n in range(2):
        Document.objects.create(organization=org, title=f"Doc {n}", filename=f"d{n}.md",
                                content_type="text/markdown", size_bytes=1, sha256=str(n) * 64,
                                file=f"documents/d{n}.md")
    Document.objects.create(organization=org, title="Done", filename="done.md",
                            content_type="text/markdown", size_bytes=1, sha256="f" * 64,
                            file="documents/done.md", status=Document.Status.READY)
    for status in (TaskResultStatus.READY, TaskResultStatus.READY, TaskResultStatus.RUNNING):
        DBTaskResult.objects.create(status=status, args_kwargs={"args": [], "kwargs": {}},
                                    task_path=ingest_document.module_path,
                                    backend_name="default", run_after=timezone.now(),
                                    exception_class_path="", traceback="")

    samples = scrape(client)

    assert value(samples, "egret_ingestion_documents_processing") == processing + 2
    assert value(samples, "egret_ingestion_tasks_ready") == 2


def test_metrics_without_a_trailing_slash_too(client, db):
    assert client.get("/metrics/").status_code == 200
    assert client.get("/metrics").status_code == 200


# --- /metrics protection -----------------------------------------------------------------------
def assert_denied(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail"} and body["detail"]
    assert b"egret_" not in response.content
    return body


@pytest.mark.parametrize("remote", ["10.1.2.3", "192.168.0.9", "2001:db8::1"])
def test_metrics_refuse_other_addresses(client, db, remote):
    assert_denied(client.get("/metrics", REMOTE_ADDR=remote), 403)


def test_metrics_through_a_proxy_are_refused_even_from_loopback(client, db):
    assert_denied(client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9"), 403)
    assert_denied(client.get("/metrics", HTTP_FORWARDED="for=203.0.113.9"), 403)


@pytest.mark.parametrize("remote", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_metrics_served_to_loopback_by_default(client, db, remote):
    assert client.get("/metrics", REMOTE_ADDR=remote).status_code == 200


def test_metrics_allowlist_takes_networks(client, db, settings):
    settings.EGRET_METRICS_ALLOW_IPS = ["10.0.0.0/8", "192.168.0.9"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.0.9").status_code == 200
    assert_denied(client.get("/metrics", REMOTE_ADDR="127.0.0.1"), 403)


def test_metrics_token(client, db, settings):
    settings.EGRET_METRICS_TOKEN = "s3cret-scrape-token"

    missing = client.get("/metrics")  # from loopback: the token is still required
    assert assert_denied(missing, 401)["detail"] == (
        "Authentication credentials were not provided.")
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert_denied(client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong"), 401)
    assert_denied(client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-scrape-token"), 401)

    samples = scrape(client, REMOTE_ADDR="10.1.2.3",
                     HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert any(name == "egret_http_requests_total" for name, _ in samples)


def test_metrics_only_answer_get(client, db):
    response = client.post("/metrics/")
    assert_denied(response, 405)
    assert response["Allow"] == "GET, HEAD"


# --- through gunicorn: several workers, one set of metrics; JSON on every line ------------------
def _get(app, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{app.url}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_gunicorn_workers_add_up_their_metrics_and_log_json(tmp_path):
    # A leftover from an earlier run: gunicorn must empty the directory when it starts.
    leftovers = tmp_path / "var" / "prometheus"
    leftovers.mkdir(parents=True)
    (leftovers / "counter_999999.db").write_bytes(b"not a metrics file")

    with ServedApp(tmp_path, workers=3, threads=2,
                   env={"LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}) as app:
        key = {"Authorization": f"Bearer {app.api_key}"}
        for _ in range(12):
            assert _get(app, "/v1/models/", key)[0] == 200
        connection = http.client.HTTPConnection("127.0.0.1", app.port, timeout=60)
        connection.request("POST", "/v1/query/", body=json.dumps({
            "query": "How often must the business impact analysis be reviewed?",
            "domain": "business-continuity", "category": "us", "mode": "compliance",
            "stream": True}), headers={**key, "Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200
        events = [json.loads(line) for line in response.read().decode().splitlines()]
        assert events[-1]["type"] == "done"
        connection.close()

        assert not (leftovers / "counter_999999.db").exists()

        def scraped() -> dict:
            status, body = _get(app, "/metrics")
            assert status == 200
            return samples_of(body.decode())

        # The stream's request is counted when the worker closes the response, just after
        # the client has read the last line.
        deadline = time.monotonic() + 10
        while not value(scraped(), "egret_http_requests_total", method="POST", route="query",
                        status="200") and time.monotonic() < deadline:
            time.sleep(0.05)
        seen = set()
        for _ in range(8):  # whichever worker answers, it reports all of them
            samples = scraped()
            seen.add((
                value(samples, "egret_http_requests_total", method="GET", route="model-list",
                      status="200"),
                value(samples, "egret_queries_total", outcome="answered", model="extractive"),
                value(samples, "egret_query_duration_seconds_count", model="extractive",
                      stream="true"),
                value(samples, "egret_credits_charged_total", model="extractive"),
                value(samples, "egret_http_requests_total", method="POST", route="query",
                      status="200"),
            ))
        assert seen == {(12, 1, 1, 1, 1)}
        assert _get(app, "/metrics", {"X-Forwarded-For": "203.0.113.9"})[0] == 403
        worker_files = {path.name for path in leftovers.glob("*.db")}
        assert worker_files

    log = (tmp_path / f"gunicorn-{app.port}.log").read_text(errors="replace")
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert "[INFO]" not in log  # gunicorn's own lines are JSON as well
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["message"]
               for line in lines)
    requests = [line for line in lines if line["logger"] == "egret.request"]
    listed = [line for line in requests if line["route"] == "model-list"]
    assert len(listed) == 12
    assert {line["principal"] for line in listed} == {"api_key"}
    assert all(line["api_key_prefix"] and app.api_key.startswith(line["api_key_prefix"])
               for line in listed)
    streamed = only([line for line in requests if line["route"] == "query"])
    query = only([line for line in lines if line["logger"] == "egret.query"])
    assert streamed["streamed"] is True and streamed["organization"] == query["organization"]
    assert query["request_id"] == streamed["request_id"] != "-"
    assert streamed["latency_ms"] >= query["total_ms"]
