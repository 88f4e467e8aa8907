"""Prometheus metrics, served at /metrics to an allowed address or a holder of the token.

Under gunicorn every worker process counts on its own; with `PROMETHEUS_MULTIPROC_DIR` set
(gunicorn.conf.py sets it and empties the directory at start) each process writes its values
to files there and a scrape adds them up, so any worker answers for all of them. Without it
(tests, runserver, manage.py) the process's own registry is served. A worker gunicorn recycles
(max_requests) leaves its files behind, and they keep counting, until the next start.

Labels stay few: routes are URL names (never raw paths), models are rows of the model
registry, and methods outside the usual set count as OTHER.

Queries are counted by the pipeline (assistant/pipeline.py) next to its `egret.query` log
line, through `observe_query` and `observe_query_failed`.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from functools import lru_cache

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import (REGISTRY, CollectorRegistry, Counter, Histogram,
                               generate_latest, multiprocess)
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger("egret.metrics")

# What generate_latest writes: the classic Prometheus text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_QUERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"  # answered before URL resolution (host check, SSL redirect)

HTTP_REQUESTS = Counter(
    "egret_http_requests", "HTTP requests answered, by method, route (URL name) and status.",
    ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "egret_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response (a whole stream for streamed "
    "answers), by method and route.", ["method", "route"], buckets=_HTTP_BUCKETS)
QUERIES = Counter(
    "egret_queries", "Queries that reached generation, by outcome (answered, "
    "insufficient_context, failed) and model.", ["outcome", "model"])
QUERY_LATENCY = Histogram(
    "egret_query_duration_seconds", "Time of a completed query from reservation to settlement, "
    "by model and whether it was streamed.", ["model", "stream"], buckets=_QUERY_BUCKETS)
CREDITS_CHARGED = Counter(
    "egret_credits_charged", "Credits charged for answered queries, by model.", ["model"])
WEBHOOK_DELIVERIES = Counter(
    "egret_webhook_deliveries", "Webhook delivery attempts by outcome: succeeded, retrying "
    "(failed, another attempt is scheduled), failed (no attempt left, or the endpoint is "
    "inactive), refused (a non-public address or a plain http:// URL).", ["outcome"])


# --- recording -------------------------------------------------------------------------------
def method_label(method: str | None) -> str:
    method = (method or "").upper()
    return method if method in _METHODS else "OTHER"


def route_label(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return (match.view_name if match is not None else "") or UNMATCHED_ROUTE


def observe_request(request: HttpRequest, status: int, seconds: float) -> None:
    method, route = method_label(request.method), route_label(request)
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    HTTP_LATENCY.labels(method=method, route=route).observe(seconds)


def _flag(value) -> str:
    return "true" if value else "false"


def observe_query(*, model: str, stream: bool, insufficient_context: bool, credits: int,
                  seconds: float) -> None:
    """A settled answer, or an ungrounded (free) one."""
    outcome = "insufficient_context" if insufficient_context else "answered"
    QUERIES.labels(outcome=outcome, model=model).inc()
    QUERY_LATENCY.labels(model=model, stream=_flag(stream)).observe(seconds)
    CREDITS_CHARGED.labels(model=model).inc(max(0, credits))


def observe_query_failed(*, model: str) -> None:
    """A query refunded after a failure (provider error, broken stream)."""
    QUERIES.labels(outcome="failed", model=model).inc()


def observe_webhook_delivery(outcome: str) -> None:
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()


# --- scrape-time gauges ----------------------------------------------------------------------
class IngestionQueueCollector:
    """Ingestion backlog read from the database at each scrape: documents still processing,
    and ingestion tasks waiting for a `db_worker` (django-tasks-db, READY)."""

    def collect(self):
        from knowledge.models import Document

        try:
            processing = Document.objects.filter(status=Document.Status.PROCESSING).count()
            waiting = self._tasks_ready()
        except DatabaseError:
            logger.warning("ingestion queue depth unavailable", exc_info=True)
            return
        documents = GaugeMetricFamily(
            "egret_ingestion_documents_processing",
            "Documents uploaded and not yet ready or failed.")
        documents.add_metric([], processing)
        yield documents
        if waiting is not None:
            tasks = GaugeMetricFamily(
                "egret_ingestion_tasks_ready",
                "Ingestion tasks queued in the database and not yet picked up by a worker.")
            tasks.add_metric([], waiting)
            yield tasks

    @staticmethod
    def _tasks_ready() -> int | None:
        if not apps.is_installed("django_tasks_db"):
            return None
        from django_tasks.base import TaskResultStatus
        from django_tasks_db.models import DBTaskResult

        from knowledge.tasks import ingest_document

        return DBTaskResult.objects.filter(status=TaskResultStatus.READY,
                                           task_path=ingest_document.module_path).count()


class _Scrape:
    """What one scrape exposes: the counters (this process's, or every worker's) and the
    database gauges."""

    def __init__(self, *collectors) -> None:
        self.collectors = collectors

    def collect(self):
        for collector in self.collectors:
            yield from collector.collect()


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def exposition() -> bytes:
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(_Scrape(registry, IngestionQueueCollector()))


# --- the endpoint ----------------------------------------------------------------------------
MISSING_TOKEN = "Authentication credentials were not provided."
WRONG_TOKEN = "Invalid metrics token."
ADDRESS_NOT_ALLOWED = "Metrics are not served to this address."
WWW_AUTHENTICATE = 'Bearer realm="metrics"'


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]):
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def address_allowed(request: HttpRequest) -> bool:
    """REMOTE_ADDR in EGRET_METRICS_ALLOW_IPS. A request that came through a proxy (it carries
    X-Forwarded-For or Forwarded) never qualifies: REMOTE_ADDR is then the proxy's, and a proxy
    on the same host would make every outside request look local."""
    meta = request.META
    if meta.get("HTTP_X_FORWARDED_FOR") or meta.get("HTTP_FORWARDED"):
        return False
    try:
        address = ipaddress.ip_address(meta.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if getattr(address, "ipv4_mapped", None) is not None:
        address = address.ipv4_mapped
    return any(address in network
               for network in _networks(tuple(settings.EGRET_METRICS_ALLOW_IPS)))


def _denied(detail: str, status: int) -> JsonResponse:
    response = JsonResponse({"detail": detail}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = WWW_AUTHENTICATE
    return response


def check_access(request: HttpRequest) -> JsonResponse | None:
    """With EGRET_METRICS_TOKEN set, a scrape needs `Authorization: Bearer <token>` (401
    otherwise); without it, the client address must be allowed (403 otherwise)."""
    token = settings.EGRET_METRICS_TOKEN
    if token:
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme != "Bearer" or not given.strip():
            return _denied(MISSING_TOKEN, 401)
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            return _denied(WRONG_TOKEN, 401)
        return None
    if not address_allowed(request):
        return _denied(ADDRESS_NOT_ALLOWED, 403)
    return None


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics/ (and /metrics, the path scrapers use by default): Prometheus text format."""
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse({"detail": f'Method "{request.method}" not allowed.'},
                                status=405)
        response["Allow"] = "GET, HEAD"
        return response
    denied = check_access(request)
    if denied is not None:
        return denied
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response
