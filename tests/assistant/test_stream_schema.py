"""The events of a streamed answer match the `x-egret-stream` description of POST /v1/query/
in the OpenAPI document (the test client's check in tests/conftest.py leaves streams alone:
reading them there would take them from the test)."""

from __future__ import annotations

import json

from tests import openapi_responses
from tests.assistant.conftest import ask


def events_of(response) -> list[dict]:
    assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def mismatches(events: list[dict]) -> list[str]:
    contract = openapi_responses.contract()
    return [f"{event['type']}: {problem}" for event in events
            for problem in contract.stream_event_errors("/v1/query/", "post", event)]


def test_streamed_answer_events_match_the_documented_events(api):
    events = events_of(ask(api, stream=True))
    assert [events[0]["type"], events[-1]["type"]] == ["sources", "done"]
    assert mismatches(events) == []


def test_insufficient_context_stream_matches_the_documented_events(api):
    events = events_of(ask(api, "What is the capital of Australia?", stream=True))
    assert events[0]["insufficient_context"] is True
    assert mismatches(events) == []


def test_a_broken_event_is_reported():
    done = {"type": "done", "message_id": "not-a-uuid"}
    problems = mismatches([done])
    assert problems, "the event schema let a bad event through"
