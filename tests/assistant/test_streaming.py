"""Streaming answers (API.md 7): NDJSON line order and content, failures mid-stream."""

from __future__ import annotations

import json

from django.db import connection

from assistant.models import Message
from assistant.providers.base import Finish, ProviderError, TextDelta, Usage
from assistant.providers.extractive import ExtractiveProvider
from billing.models import Reservation
from tests.assistant.conftest import ask, balance


def lines(response) -> list[dict]:
    assert response["Content-Type"] == "application/x-ndjson"
    raw = b"".join(response.streaming_content).decode()
    assert raw.endswith("\n")
    return [json.loads(line) for line in raw.splitlines()]


def test_stream_is_sources_then_deltas_then_done(api, org):
    before = balance(org)
    response = ask(api, stream=True)
    assert response.status_code == 200 and response.streaming
    events = lines(response)
    assert events[0]["type"] == "sources"
    assert set(events[0]) == {"type", "sources", "retrieval_ms", "chunks_retrieved",
                              "insufficient_context", "mode", "session_id"}
    assert events[0]["sources"] and events[0]["insufficient_context"] is False
    deltas = events[1:-1]
    assert deltas and all(e["type"] == "text_delta" and e["text"] for e in deltas)
    done = events[-1]
    assert done["type"] == "done"
    assert set(done) == {"type", "message_id", "input_tokens", "output_tokens", "cost_usd",
                         "credits_used", "model", "total_latency_ms", "retrieval_ms",
                         "generation_ms", "retrieval_latency_ms", "generation_latency_ms",
                         "full_text", "sources", "suggestions"}
    # The answer's names, and the public API's names for the same values in this event.
    assert done["retrieval_ms"] == done["retrieval_latency_ms"] == events[0]["retrieval_ms"]
    assert done["generation_ms"] == done["generation_latency_ms"]
    assert done["full_text"] == "".join(e["text"] for e in deltas)
    assert done["sources"] == events[0]["sources"] and done["credits_used"] == 1
    assert len(done["suggestions"]) == 3
    message = Message.objects.get(pk=done["message_id"])
    assert message.content == done["full_text"]
    assert str(message.session_id) == events[0]["session_id"]
    assert balance(org) == before - 1


def test_stream_and_plain_answers_say_the_same(api, org):
    plain = ask(api).json()
    done = lines(ask(api, stream=True))[-1]
    assert done["full_text"] == plain["response"] or sorted(
        s["id"] for s in done["sources"]) == sorted(s["id"] for s in plain["sources"])


def test_failure_mid_stream_ends_with_error_and_refund(api, org, monkeypatch):
    def breaks(self, request):
        yield TextDelta("The business impact analysis ")
        raise ProviderError("connection reset by upstream")

    monkeypatch.setattr(ExtractiveProvider, "stream", breaks)
    before = balance(org)
    events = lines(ask(api, stream=True))
    assert [e["type"] for e in events] == ["sources", "text_delta", "error"]
    assert "retry" in events[-1]["detail"].lower() and "upstream" not in events[-1]["detail"]
    assert balance(org) == before
    assert Reservation.objects.get(organization=org).status == "refunded"
    assert not Message.objects.exists()


def test_client_going_away_refunds(api, org, monkeypatch):
    def slow(self, request):
        yield TextDelta("First part. ")
        yield TextDelta("Second part. ")
        yield Finish(Usage(1, 1), [])

    monkeypatch.setattr(ExtractiveProvider, "stream", slow)
    before = balance(org)
    response = ask(api, stream=True)
    iterator = iter(response.streaming_content)
    next(iterator)  # the sources line
    next(iterator)  # one delta, then the client disconnects: the server closes the response
    # The end of a request closes a connection inside a transaction; keep the test's open.
    monkeypatch.setattr(connection, "close_if_unusable_or_obsolete", lambda: None)
    response.close()
    assert balance(org) == before
    assert Reservation.objects.get(organization=org).status == "refunded"
    assert not Message.objects.exists()


def test_unknown_markers_are_removed_from_a_stream(api, org, monkeypatch):
    def cites_too_much(self, request):
        yield TextDelta("Review yearly [1]. Also see [")
        yield TextDelta("9] and [2")
        yield TextDelta("].")
        yield Finish(Usage(10, 5), ["Next?"])

    monkeypatch.setattr(ExtractiveProvider, "stream", cites_too_much)
    events = lines(ask(api, stream=True))
    count = len(events[0]["sources"])
    done = events[-1]
    assert "[9]" not in done["full_text"] and "[1]" in done["full_text"]
    assert ("[2]" in done["full_text"]) == (count >= 2)


def test_insufficient_context_stream_costs_nothing(api, org):
    before = balance(org)
    events = lines(ask(api, stream=True, query="Best chocolate cake recipe with raspberries?"))
    assert events[0]["insufficient_context"] is True and events[0]["sources"] == []
    assert events[-1]["type"] == "done" and events[-1]["credits_used"] == 0
    assert balance(org) == before
