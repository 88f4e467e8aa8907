"""Idempotency-Key on POST /v1/query/ (API.md 7)."""

from __future__ import annotations

import json

from billing.models import IdempotencyRecord, LedgerEntry
from tests.assistant.conftest import balance

BODY = {"query": "How often must we review the business impact analysis?",
        "domain": "business-continuity", "category": "us", "mode": "compliance"}


def post(api, key, **changes):
    return api.post("/v1/query/", {**BODY, **changes}, format="json",
                    HTTP_IDEMPOTENCY_KEY=key)


def test_retry_with_the_same_key_is_replayed_and_charged_once(api, org):
    before = balance(org)
    first = post(api, "retry-1")
    second = post(api, "retry-1")
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert balance(org) == before - 1
    assert LedgerEntry.objects.filter(kind="query_charge").count() == 1


def test_same_key_with_another_body_is_400(api, org):
    post(api, "retry-2")
    response = post(api, "retry-2", mode="advisory")
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["detail"]


def test_key_is_409_while_the_first_runs(api, org):
    # A record still in progress with the same fingerprint answers 409.
    first = post(api, "busy-2")
    assert first.status_code == 200
    IdempotencyRecord.objects.filter(key="busy-2").update(state="in_progress")
    response = post(api, "busy-2")
    assert response.status_code == 409 and "in progress" in response.json()["detail"]


def test_streamed_answer_is_replayed_as_a_stream(api, org):
    before = balance(org)
    first = post(api, "stream-1", stream=True)
    first_lines = [json.loads(x) for x in b"".join(first.streaming_content).splitlines()]
    replay = post(api, "stream-1", stream=True)
    assert replay["Idempotent-Replayed"] == "true"
    assert replay["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(x) for x in b"".join(replay.streaming_content).splitlines()]
    assert [e["type"] for e in lines] == ["sources", "text_delta", "done"]
    assert lines[0] == first_lines[0] and lines[-1] == first_lines[-1]
    assert lines[1]["text"] == first_lines[-1]["full_text"]
    assert balance(org) == before - 1


def test_failed_answer_releases_the_key(api, org, monkeypatch):
    from assistant.providers.base import ProviderError
    from assistant.providers.extractive import ExtractiveProvider

    def broken(self, request):
        raise ProviderError("down")

    monkeypatch.setattr(ExtractiveProvider, "generate", broken)
    assert post(api, "flaky").status_code == 500
    monkeypatch.undo()
    response = post(api, "flaky")
    assert response.status_code == 200 and "Idempotent-Replayed" not in response
