"""POST /v1/compare/ with LLM models (the SDKs' real HTTP layer against mocked transports):
every category is answered as /v1/query/ answers it, then all categories' sources go out in
one comparison prompt labelled [code:n], and the post-check removes every marker of the
comparison that points nowhere — whole, and split across stream deltas."""

from __future__ import annotations

import json

import httpx
import pytest

from assistant import comparisons, pipeline
from assistant.models import AIModel, Comparison
from assistant.providers import get_provider
from billing.models import Reservation
from tests.assistant.conftest import balance
from tests.assistant.test_compare import compare, on_plan
from tests.assistant.test_providers_llm import (anthropic_events, anthropic_message,
                                                openai_stream, sse, stream_response)
from tests.assistant.test_query_llm import Upstream, completion

ANSWER = "Test the plan every year [1]. Ignore [7]."
TABLE = ("| Point | US | SG | Agree or differ |\n| --- | --- | --- | --- |\n"
         "| How often | **every year** [us:1] [us:9] | **annually** [sg:1, zz:1] [2] | Agree |\n"
         "| Who approves | Not stated [us:0] | **board** [sg:1] [sg:4] | Differ |")
CHECKED = ("| Point | US | SG | Agree or differ |\n| --- | --- | --- | --- |\n"
           "| How often | **every year** [us:1] | **annually** [sg:1] | Agree |\n"
           "| Who approves | Not stated | **board** [sg:1] | Differ |")


def is_comparison(body: dict) -> bool:
    system = body.get("system") or body["messages"][0]["content"]
    return "You compare" in system


@pytest.fixture
def llm(settings, monkeypatch, org, library):
    settings.EGRET_PROVIDER_MAX_RETRIES = 0
    settings.ANTHROPIC_API_KEY = "sk-ant-test"
    settings.ANTHROPIC_BASE_URL = None
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    on_plan(org, "professional")
    AIModel.objects.create(id="local-llm", name="Local", provider="openai",
                           provider_model="local-model", tier="standard", credits_per_query=2,
                           options={"base_url": "http://llm.internal/v1"},
                           input_usd_per_mtok=1, output_usd_per_mtok=2)

    def install(respond, provider: str = "openai") -> Upstream:
        AIModel.objects.filter(id="local-llm").update(provider=provider)
        upstream = Upstream(respond)
        client = httpx.Client(transport=httpx.MockTransport(upstream))
        factory = lambda name: get_provider(name, http_client=client)  # noqa: E731
        monkeypatch.setattr(pipeline, "get_provider", factory)
        monkeypatch.setattr(comparisons, "get_provider", factory)
        return upstream

    return install


def test_all_sources_go_in_one_prompt_and_markers_pointing_nowhere_go(api, org, llm):
    upstream = llm(lambda request: completion(
        TABLE if is_comparison(json.loads(request.content)) else ANSWER))
    response = compare(api, model="local-llm")
    assert response.status_code == 200, response.content
    body = response.json()
    checked = "Test the plan every year [1]. Ignore."
    assert [a["response"] for a in body["answers"]] == [checked] * 2
    assert body["comparison"] == CHECKED
    assert len(upstream.bodies) == 3  # one answer per category, then one comparison
    prompt = upstream.bodies[2]["messages"][-1]["content"]
    us, sg = body["answers"]
    for code, answer in (("us", us), ("sg", sg)):
        for number, source in enumerate(answer["sources"], start=1):
            assert f"[{code}:{number}] {source['title']}" in prompt
    assert "Categories, in column order: US (`us`), SG (`sg`)" in prompt
    assert QUESTION_LINE in prompt
    assert (body["input_tokens"], body["output_tokens"]) == (3 * 321, 3 * 45)
    assert body["cost_usd"] == pytest.approx(3 * (321 + 2 * 45) / 1_000_000)
    assert body["credits_used"] == 4 and balance(org) == 96


QUESTION_LINE = "Question: How often must the plan be reviewed or tested, and who approves it?"


def test_anthropic_gets_the_comparison_rules_as_its_system_prompt(api, org, llm):
    def respond(request):
        body = json.loads(request.content)
        reply = TABLE if "You compare" in body["system"] else ANSWER
        return httpx.Response(200, json=anthropic_message(reply))

    upstream = llm(respond, provider="anthropic")
    body = compare(api, model="local-llm").json()
    assert body["comparison"] == CHECKED
    assert "[code:n]" in upstream.bodies[-1]["system"]


def test_streamed_comparison_is_post_checked_across_deltas(api, org, llm):
    pieces = [TABLE[i:i + 7] for i in range(0, len(TABLE), 7)]  # markers split mid-way

    def respond(request):
        body = json.loads(request.content)
        deltas = pieces if is_comparison(body) else ["Test the plan ", "every year [1", "]."]
        return stream_response(openai_stream(deltas))(request)

    llm(respond)
    events = [json.loads(line) for line in
              b"".join(compare(api, model="local-llm", stream=True).streaming_content)
              .splitlines()]
    comparison = "".join(e["text"] for e in events
                         if e["type"] == "text_delta" and e["category"] is None)
    assert comparison == CHECKED == events[-1]["comparison"]
    assert events[-1]["type"] == "done" and events[-1]["credits_used"] == 4
    assert balance(org) == 96


def test_anthropic_stream_cut_before_the_end_is_refunded(api, org, llm):
    def respond(request):
        body = json.loads(request.content)
        complete = not ("You compare" in body["system"])
        return stream_response(sse(anthropic_events(["| Point |"], complete=complete)))(request)

    llm(respond, provider="anthropic")
    events = [json.loads(line) for line in
              b"".join(compare(api, model="local-llm", stream=True).streaming_content)
              .splitlines()]
    assert events[-1]["type"] == "error"
    assert balance(org) == 100 and not Comparison.objects.exists()
    assert Reservation.objects.get(organization=org).status == "refunded"


def test_upstream_failure_is_500_and_refunded(api, org, llm):
    llm(lambda request: httpx.Response(503, json={"error": {"message": "overloaded"}}))
    response = compare(api, model="local-llm")
    assert response.status_code == 500 and "overloaded" not in response.json()["detail"]
    assert balance(org) == 100 and not Comparison.objects.exists()
