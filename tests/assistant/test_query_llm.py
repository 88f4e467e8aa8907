"""POST /v1/query/ with an LLM model (OpenAI-compatible, the SDK's real HTTP layer against a
mocked transport): the prompt carries the numbered sources and earlier turns, the answer's
markers are post-checked, cited sources come first, an upstream failure is a 500 + refund."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from assistant import pipeline
from assistant.models import AIModel, Message
from assistant.providers import get_provider
from billing.models import Reservation
from knowledge.library import library_document_add
from tests.assistant.conftest import ask, balance


class Upstream:
    def __init__(self, respond) -> None:
        self.respond, self.bodies = respond, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        return self.respond(request)


def completion(text: str) -> httpx.Response:
    return httpx.Response(200, json={
        "id": "c1", "object": "chat.completion", "created": 1, "model": "local-model",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 321, "completion_tokens": 45, "total_tokens": 366}})


@pytest.fixture
def llm(settings, monkeypatch, library):
    settings.EGRET_PROVIDER_MAX_RETRIES = 0
    AIModel.objects.create(id="local-llm", name="Local", provider="openai",
                           provider_model="local-model", tier="standard", credits_per_query=2,
                           options={"base_url": "http://llm.internal/v1"},
                           input_usd_per_mtok=1, output_usd_per_mtok=2)

    def install(respond) -> Upstream:
        upstream = Upstream(respond)
        client = httpx.Client(transport=httpx.MockTransport(upstream))
        monkeypatch.setattr(pipeline, "get_provider",
                            lambda name: get_provider(name, http_client=client))
        return upstream

    return install


def test_llm_answer_is_post_checked_and_cited_sources_come_first(api, org, llm):
    upstream = llm(lambda request: completion(
        "Test the plan every year [2]. Ignore [7].\n\nFOLLOW-UP QUESTIONS:\n"
        "- Who signs off the results?\n- What counts as full-scale?\n- Where are reports kept?"))
    before = balance(org)
    response = ask(api, query="How often must we test the business continuity plan and "
                              "review the business impact analysis?", model="local-llm")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["response"] == "Test the plan every year [1]. Ignore."
    prompt = upstream.bodies[0]["messages"][-1]["content"]
    second = next(line for line in prompt.splitlines() if line.startswith("[2] "))
    assert second[4:].startswith(body["sources"][0]["title"])  # was [2]: cited, so first
    first = next(line for line in prompt.splitlines() if line.startswith("[1] "))
    assert first[4:].startswith(body["sources"][1]["title"])  # uncited, so after
    assert body["suggestions"] == ["Who signs off the results?", "What counts as full-scale?",
                                   "Where are reports kept?"]
    assert (body["input_tokens"], body["output_tokens"]) == (321, 45)
    assert body["cost_usd"] == pytest.approx((321 * 1 + 45 * 2) / 1_000_000)
    assert body["credits_used"] == 2 and balance(org) == before - 2
    sent = upstream.bodies[0]
    assert sent["model"] == "local-model"
    assert sent["messages"][0]["role"] == "system" and "[n]" in sent["messages"][0]["content"]
    assert "[1]" in sent["messages"][-1]["content"] and "[2]" in sent["messages"][-1]["content"]


def test_llm_receives_the_earlier_turns(api, org, llm):
    upstream = llm(lambda request: completion("Once a year [1]."))
    session_id = ask(api, model="local-llm").json()["session_id"]
    ask(api, query="And who approves the business impact analysis?", session_id=session_id,
        model="local-llm")
    roles = [m["role"] for m in upstream.bodies[1]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert upstream.bodies[1]["messages"][1]["content"] == (
        "How often must we review the business impact analysis?")


def test_upstream_failure_is_500_and_refunded(api, org, llm):
    llm(lambda request: httpx.Response(503, json={"error": {"message": "overloaded"}}))
    before = balance(org)
    response = ask(api, model="local-llm")
    assert response.status_code == 500 and "overloaded" not in response.json()["detail"]
    assert balance(org) == before
    assert Reservation.objects.get(organization=org).status == "refunded"
    assert not Message.objects.exists()


def anthropic_reply(text: str) -> httpx.Response:
    return httpx.Response(200, json={
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": {"input_tokens": 200, "output_tokens": 20}})


@pytest.mark.parametrize("provider, reply, user_text", [
    ("openai", completion, lambda body: body["messages"][-1]["content"]),
    ("anthropic", anthropic_reply, lambda body: body["messages"][-1]["content"]),
])
def test_llm_providers_receive_the_widened_sections(api, org, llm, settings, monkeypatch,
                                                    library, provider, reply, user_text):
    """The prompt holds what the extractive model quotes from: each hit widened to its whole
    section and the sections around it, so a list split from its lead-in arrives whole."""
    settings.ANTHROPIC_API_KEY = "sk-ant-test"
    settings.ANTHROPIC_BASE_URL = None
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    AIModel.objects.filter(id="local-llm").update(provider=provider,
                                                  provider_model="model-x")
    path = (Path(__file__).resolve().parents[2] / "knowledge" / "fixtures" / "library" /
            "privacy" / "eu" / "breach-notification.md")
    category = library[("privacy", "eu")]
    library_document_add(path, domain=category.domain, category=category)
    upstream = llm(lambda request: reply("Notify within 72 hours [1]. See [9]."))
    response = ask(api, query="How fast must we tell the authority about a personal data "
                              "breach, and what must the notification describe?",
                   domain="privacy", category="eu", model="local-llm")
    assert response.status_code == 200, response.content
    prompt = user_text(upstream.bodies[0])
    if isinstance(prompt, list):  # Anthropic content blocks
        prompt = "".join(block["text"] for block in prompt)
    library = path.read_text(encoding="utf-8")
    items = [line[2:].rstrip(";.") for line in
             library.split("The notification should describe:")[1].split("\n\n")[1].splitlines()]
    assert len(items) == 4
    for item in items:
        assert item in prompt  # every item of the list, not just its lead-in
    assert "### " in prompt  # neighbouring sections come with their headings
    body = response.json()
    assert body["response"] == "Notify within 72 hours [1]. See."  # same post-check
    assert len(body["sources"]) >= 1


def sse_stream(deltas: list[str]) -> httpx.Response:
    chunks = [{"choices": [{"index": 0, "delta": {"content": d}, "finish_reason": None}]}
              for d in deltas]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5}})
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return httpx.Response(200, content=body.encode(),
                          headers={"Content-Type": "text/event-stream"})


def stream_events(response) -> list[dict]:
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


DELTAS = ["Test ", "the plan ", "every ", "year ", "[1]", ". Keep ", "the records."]


@pytest.mark.parametrize("coalesce, expected", [
    # The first delta at once; the rest arrive within 50 ms of it, so they make one line.
    # (A trailing space waits for the next delta: it could lead a marker.)
    (0.05, ["Test", " the plan every year [1]. Keep the records."]),
    # 0 turns coalescing off: a line per delta.
    (0.0, ["Test", " the plan", " every", " year", " [1]", ". Keep", " the records."]),
])
def test_stream_deltas_are_coalesced_without_delaying_the_first(api, org, llm, settings,
                                                                coalesce, expected):
    settings.EGRET_STREAM_COALESCE_SECONDS = coalesce
    llm(lambda request: sse_stream(DELTAS))
    before = balance(org)
    response = ask(api, model="local-llm", stream=True)
    assert response.status_code == 200
    events = stream_events(response)
    assert [e["type"] for e in events] == ["sources", *["text_delta"] * len(expected), "done"]
    assert [e["text"] for e in events[1:-1]] == expected
    assert events[-1]["full_text"] == "".join(DELTAS) == "".join(expected)
    assert events[-1]["credits_used"] == 2 and balance(org) == before - 2
    assert Message.objects.get(sender="assistant").content == "".join(DELTAS)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("stream", [True, False])
def test_no_database_connection_is_held_while_the_model_generates(api, org, llm, stream):
    """Outside a transaction (as in production), the request's connection is given back
    before the model is called and taken again to persist and settle. (SQLite's in-memory
    test database cannot be closed, so this runs on PostgreSQL only.)"""
    from django.db import connection

    held = []

    def respond(request):
        held.append(connection.connection is not None)
        return sse_stream(DELTAS) if stream else completion("Test the plan every year [1].")

    llm(respond)
    before = balance(org)
    response = ask(api, model="local-llm", stream=stream)
    assert response.status_code == 200
    body = stream_events(response)[-1] if stream else response.json()
    assert held == [False]
    assert body["credits_used"] == 2 and balance(org) == before - 2
    assert Reservation.objects.get(organization=org).status == "settled"
