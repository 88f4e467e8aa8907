"""The Anthropic (API and Bedrock) and OpenAI providers, through their SDKs' real HTTP layer
against an in-process `httpx.MockTransport` (no network, no database)."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Callable, Iterator

import httpx
import pytest

from assistant.prompting import system_prompt, user_prompt
from assistant.providers import PROVIDERS, get_provider
from assistant.providers.anthropic import AnthropicProvider
from assistant.providers.base import (
    Finish,
    Generation,
    GenerationRequest,
    ProviderError,
    SourceText,
    TextDelta,
    Turn,
    Usage,
)
from assistant.providers.openai import OpenAIProvider

SOURCES = [
    SourceText(number=1, title="GDPR", text="Personal data shall be kept no longer than necessary.",
               section="Art. 5", page=3),
    SourceText(number=2, title="AML Directive", text="Records shall be retained for five years."),
]
HISTORY = [Turn("user", "What is AML?"), Turn("assistant", "Anti-money laundering [1].")]
ANSWER = ("Records must be kept for five years [2].\n\n"
          "FOLLOW-UP QUESTIONS:\n- Does this apply to backups?\n- Who keeps them?\n"
          "- What about GDPR?")
SUGGESTIONS = ["Does this apply to backups?", "Who keeps them?", "What about GDPR?"]
# The answer as a model streams it: the marker arrives split over three deltas.
DELTAS = ["Records must be kept ", "for five years [2].", "\n\nFOLL", "OW-UP QUEST",
          "IONS:\n- Does this apply", " to backups?\n- Who keeps them?\n- What about GDPR?"]
STREAMED = [TextDelta("Records must be kept"), TextDelta(" for five years [2].")]
BEDROCK_MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"


def make_request(model: str = "model-x", mode: str = "compliance", **options
                 ) -> GenerationRequest:
    return GenerationRequest(question="How long must records be kept?", mode=mode,
                             sources=SOURCES, history=HISTORY, model_name=model,
                             options=options)


EXPECTED_CHAT = [
    {"role": "user", "content": "What is AML?"},
    {"role": "assistant", "content": "Anti-money laundering."},
    {"role": "user", "content": user_prompt(make_request())},
]


@pytest.fixture(autouse=True)
def provider_settings(settings, monkeypatch):
    settings.EGRET_PROVIDER_TIMEOUT = 5.0
    settings.EGRET_PROVIDER_MAX_RETRIES = 0  # keeps error tests fast; one test sets 1
    settings.ANTHROPIC_API_KEY = "sk-ant-test"
    settings.ANTHROPIC_BASE_URL = None
    settings.AWS_REGION = "us-east-1"
    settings.OPENAI_API_KEY = "sk-openai-test"
    settings.OPENAI_BASE_URL = None
    # The SDKs read these when an argument is None; a developer's shell must not leak in.
    for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_BEDROCK_BASE_URL", "OPENAI_BASE_URL",
                 "AWS_BEARER_TOKEN_BEDROCK", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


class FakeServer:
    """Records every request and answers each with the next response factory (the last one
    repeats, so retries see it again)."""

    def __init__(self, *responses: Callable[[httpx.Request], httpx.Response]) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        respond = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        return respond(request)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))

    @property
    def body(self) -> dict:
        return json.loads(self.requests[-1].content)


def json_response(status: int, body: object, **headers: str) -> Callable:
    return lambda request: httpx.Response(status, json=body, headers=headers)


class StreamBody(httpx.SyncByteStream):
    """A response body sent in `chunks`, optionally breaking with `error` after them."""

    def __init__(self, chunks: list[bytes], error: Exception | None) -> None:
        self.chunks, self.error, self.closed = chunks, error, False

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True


def stream_response(chunks: list[bytes], content_type: str = "text/event-stream",
                    error: Exception | None = None, bodies: list | None = None) -> Callable:
    """A 200 streamed in `chunks`; `bodies` collects the bodies sent, to check closing."""

    def respond(request: httpx.Request) -> httpx.Response:
        body = StreamBody(chunks, error)
        if bodies is not None:
            bodies.append(body)
        return httpx.Response(200, headers={"content-type": content_type}, stream=body)

    return respond


def raise_error(error: Exception) -> Callable:
    def respond(request: httpx.Request) -> httpx.Response:
        raise error
    return respond


def collect(events: Iterator) -> list:
    return list(events)


# --- Anthropic wire format -------------------------------------------------------------------

def anthropic_message(text: str = ANSWER, stop_reason: str = "end_turn") -> dict:
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": "model-x",
            "content": [{"type": "text", "text": text}], "stop_reason": stop_reason,
            "stop_sequence": None, "usage": {"input_tokens": 120, "output_tokens": 30}}


def anthropic_events(deltas: list[str], complete: bool = True) -> list[dict]:
    start = [
        {"type": "message_start", "message": {
            "id": "msg_01", "type": "message", "role": "assistant", "model": "model-x",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 120, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    body = [{"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": delta}} for delta in deltas]
    end = [
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": 30}},
        {"type": "message_stop"},
    ]
    return start + body + (end if complete else [])


def sse(events: list[dict]) -> list[bytes]:
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


def anthropic_error(kind: str, message: str) -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}}


# --- Anthropic API ---------------------------------------------------------------------------

def test_anthropic_generate_sends_the_prompt_and_parses_the_answer():
    server = FakeServer(json_response(200, anthropic_message()))
    result = AnthropicProvider(http_client=server.client()).generate(make_request())

    assert result == Generation(text="Records must be kept for five years [2].",
                                usage=Usage(input_tokens=120, output_tokens=30),
                                suggestions=SUGGESTIONS)
    sent = server.requests[0]
    assert str(sent.url) == "https://api.anthropic.com/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert "anthropic-version" in sent.headers
    assert server.body == {"model": "model-x", "system": system_prompt("compliance"),
                           "messages": EXPECTED_CHAT, "max_tokens": 1024, "temperature": 0.2}
    prompt = server.body["messages"][-1]["content"]
    assert "[1] GDPR — Art. 5 (page 3)\nPersonal data shall be kept" in prompt
    assert "[2] AML Directive\nRecords shall be retained for five years." in prompt
    assert prompt.endswith("Question: How long must records be kept?")


def test_anthropic_options_and_settings_reach_the_request(settings):
    settings.ANTHROPIC_BASE_URL = "https://llm-gateway.internal"
    server = FakeServer(json_response(200, anthropic_message()))
    AnthropicProvider(http_client=server.client()).generate(
        make_request(mode="advisory", max_tokens=300, temperature=None))

    assert str(server.requests[0].url) == "https://llm-gateway.internal/v1/messages"
    assert server.body["system"] == system_prompt("advisory")
    assert server.body["max_tokens"] == 300
    assert "temperature" not in server.body


def test_anthropic_stream_yields_answer_deltas_then_finish():
    server = FakeServer(stream_response(sse(anthropic_events(DELTAS))))
    events = collect(AnthropicProvider(http_client=server.client()).stream(make_request()))

    assert events == [*STREAMED, Finish(usage=Usage(input_tokens=120, output_tokens=30),
                                        suggestions=SUGGESTIONS)]
    assert server.body["stream"] is True
    assert server.body["messages"] == EXPECTED_CHAT
    assert server.body["system"] == system_prompt("compliance")


def test_anthropic_stream_without_marker_flushes_the_held_tail():
    server = FakeServer(stream_response(sse(anthropic_events(["Ends with FOLLOW", "-UP"]))))
    events = collect(AnthropicProvider(http_client=server.client()).stream(make_request()))

    assert events == [TextDelta("Ends with"), TextDelta(" FOLLOW-UP"),
                      Finish(usage=Usage(120, 30), suggestions=[])]


def test_anthropic_server_error_after_retries_is_a_provider_error(settings):
    settings.EGRET_PROVIDER_MAX_RETRIES = 1
    # retry-after-ms keeps the SDK's back-off to a millisecond.
    server = FakeServer(json_response(500, anthropic_error("api_error", "Internal server error"),
                                      **{"retry-after-ms": "1", "request-id": "req_42"}))
    with pytest.raises(ProviderError) as caught:
        AnthropicProvider(http_client=server.client()).generate(make_request())

    assert len(server.requests) == 2  # the first try and one retry (the setting)
    assert str(caught.value) == ("Anthropic API returned HTTP 500 (request id req_42): "
                                 "api_error: Internal server error")


def test_anthropic_401_is_a_provider_error_without_retry():
    server = FakeServer(json_response(401, anthropic_error("authentication_error",
                                                           "invalid x-api-key")))
    with pytest.raises(ProviderError, match="HTTP 401.*authentication_error: invalid x-api-key"):
        AnthropicProvider(http_client=server.client()).generate(make_request())
    assert len(server.requests) == 1


def test_anthropic_connection_error_is_a_provider_error():
    server = FakeServer(raise_error(httpx.ConnectError("connection refused")))
    with pytest.raises(ProviderError,
                       match="could not reach the Anthropic API.*connection refused"):
        AnthropicProvider(http_client=server.client()).generate(make_request())


def test_anthropic_timeout_is_a_provider_error():
    server = FakeServer(raise_error(httpx.ReadTimeout("read timed out")))
    with pytest.raises(ProviderError, match=r"timed out after 5.0s"):
        AnthropicProvider(http_client=server.client()).generate(make_request())


@pytest.mark.parametrize("body", [{"unexpected": True}, {"content": "not a list"}])
def test_anthropic_unexpected_response_shape_is_a_provider_error(body):
    server = FakeServer(json_response(200, body))
    with pytest.raises(ProviderError, match="unexpected Anthropic response"):
        AnthropicProvider(http_client=server.client()).generate(make_request())


def test_anthropic_refusal_is_a_provider_error():
    server = FakeServer(json_response(200, anthropic_message("", stop_reason="refusal")))
    with pytest.raises(ProviderError, match="refused"):
        AnthropicProvider(http_client=server.client()).generate(make_request())


def test_anthropic_stream_breaking_midway_raises_from_the_iterator():
    chunks = sse(anthropic_events(DELTAS[:2], complete=False))
    server = FakeServer(stream_response(chunks, error=httpx.ReadError("connection reset")))
    events = AnthropicProvider(http_client=server.client()).stream(make_request())

    assert next(events) == TextDelta("Records must be kept")
    assert next(events) == TextDelta(" for five years [2].")
    with pytest.raises(ProviderError, match="Anthropic stream broke.*connection reset"):
        next(events)


def test_anthropic_stream_closes_the_response_when_the_consumer_stops():
    bodies: list[StreamBody] = []
    server = FakeServer(stream_response(sse(anthropic_events(DELTAS)), bodies=bodies))
    events = AnthropicProvider(http_client=server.client()).stream(make_request())

    assert next(events) == TextDelta("Records must be kept")
    assert not bodies[0].closed
    events.close()  # e.g. the client of our API disconnected
    assert bodies[0].closed


def test_anthropic_stream_closed_before_message_stop_is_a_provider_error():
    server = FakeServer(stream_response(sse(anthropic_events(DELTAS[:2], complete=False))))
    with pytest.raises(ProviderError, match="ended before message_stop"):
        collect(AnthropicProvider(http_client=server.client()).stream(make_request()))


def test_anthropic_error_event_in_stream_is_a_provider_error():
    events = anthropic_events(DELTAS[:1], complete=False)
    events.append(anthropic_error("overloaded_error", "Overloaded"))
    server = FakeServer(stream_response(sse(events)))
    with pytest.raises(ProviderError, match="error event in the stream.*Overloaded"):
        collect(AnthropicProvider(http_client=server.client()).stream(make_request()))


def test_anthropic_without_model_name_is_a_provider_error():
    server = FakeServer(json_response(200, anthropic_message()))
    with pytest.raises(ProviderError, match="no provider model name"):
        AnthropicProvider(http_client=server.client()).generate(make_request(model=""))
    assert server.requests == []


# --- Anthropic on Bedrock --------------------------------------------------------------------

def event_stream_message(payload: bytes, headers: dict[str, str]) -> bytes:
    """One AWS event-stream frame (the binary framing of Bedrock's streaming responses):
    prelude (total length, headers length, CRC), string headers, payload, message CRC."""
    encoded = b"".join(struct.pack(">B", len(name)) + name.encode() + b"\x07"
                       + struct.pack(">H", len(value)) + value.encode()
                       for name, value in headers.items())
    prelude = struct.pack(">II", 16 + len(encoded) + len(payload), len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def bedrock_chunks(events: list[dict]) -> list[bytes]:
    headers = {":event-type": "chunk", ":content-type": "application/json",
               ":message-type": "event"}
    return [event_stream_message(json.dumps(
        {"bytes": base64.b64encode(json.dumps(e).encode()).decode()}).encode(), headers)
        for e in events]


def test_bedrock_generate_goes_to_bedrock_runtime_with_the_model_in_the_path():
    pytest.importorskip("botocore", reason="Bedrock needs the anthropic[bedrock] extra")
    server = FakeServer(json_response(200, anthropic_message()))
    result = AnthropicProvider(http_client=server.client()).generate(
        make_request(model=BEDROCK_MODEL, platform="bedrock"))

    assert result.text == "Records must be kept for five years [2]."
    assert result.suggestions == SUGGESTIONS
    sent = server.requests[0]
    assert str(sent.url) == ("https://bedrock-runtime.us-east-1.amazonaws.com/model/"
                             f"{BEDROCK_MODEL}/invoke")
    # SigV4 with the credentials from the environment, for the bedrock service.
    assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/us-east-1/bedrock/aws4_request" in sent.headers["authorization"]
    assert "x-api-key" not in sent.headers
    assert server.body == {"anthropic_version": "bedrock-2023-05-31",
                           "system": system_prompt("compliance"), "messages": EXPECTED_CHAT,
                           "max_tokens": 1024, "temperature": 0.2}


def test_bedrock_stream_decodes_the_aws_event_stream():
    pytest.importorskip("botocore", reason="Bedrock needs the anthropic[bedrock] extra")
    server = FakeServer(stream_response(bedrock_chunks(anthropic_events(DELTAS)),
                                        content_type="application/vnd.amazon.eventstream"))
    events = collect(AnthropicProvider(http_client=server.client()).stream(
        make_request(model=BEDROCK_MODEL, platform="bedrock")))

    assert events == [*STREAMED, Finish(usage=Usage(120, 30), suggestions=SUGGESTIONS)]
    assert str(server.requests[0].url) == ("https://bedrock-runtime.us-east-1.amazonaws.com/"
                                           f"model/{BEDROCK_MODEL}/invoke-with-response-stream")
    assert "stream" not in server.body and "model" not in server.body


def test_bedrock_http_error_is_a_provider_error():
    pytest.importorskip("botocore", reason="Bedrock needs the anthropic[bedrock] extra")
    server = FakeServer(json_response(403, {"message": "The security token is invalid."}))
    with pytest.raises(ProviderError, match="HTTP 403.*The security token is invalid."):
        AnthropicProvider(http_client=server.client()).generate(
            make_request(model=BEDROCK_MODEL, platform="bedrock"))


def test_bedrock_without_botocore_is_a_provider_error(monkeypatch):
    monkeypatch.setattr("assistant.providers.anthropic._has_botocore", lambda: False)
    server = FakeServer(json_response(200, anthropic_message()))
    with pytest.raises(ProviderError, match=r"pip install 'anthropic\[bedrock\]'"):
        AnthropicProvider(http_client=server.client()).generate(
            make_request(model=BEDROCK_MODEL, platform="bedrock"))
    assert server.requests == []


def test_unknown_anthropic_platform_is_a_provider_error():
    with pytest.raises(ProviderError, match="unknown Anthropic platform 'vertex'"):
        AnthropicProvider(http_client=FakeServer().client()).generate(
            make_request(platform="vertex"))


# --- OpenAI wire format ----------------------------------------------------------------------

def openai_completion(text: str = ANSWER, finish_reason: str = "stop", refusal: str | None = None
                      ) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
            "model": "model-x",
            "choices": [{"index": 0, "finish_reason": finish_reason, "logprobs": None,
                         "message": {"role": "assistant", "content": text, "refusal": refusal}}],
            "usage": {"prompt_tokens": 150, "completion_tokens": 45, "total_tokens": 195}}


def openai_chunk(delta: dict, finish_reason: str | None = None) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "model-x",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                         "logprobs": None}]}


def openai_stream(deltas: list[str], usage: bool = True, finish: bool = True,
                  done: bool = True, ensure_ascii: bool = True) -> list[bytes]:
    chunks = [openai_chunk({"role": "assistant", "content": ""})]
    chunks += [openai_chunk({"content": delta}) for delta in deltas]
    if finish:
        chunks.append(openai_chunk({}, finish_reason="stop"))
    if usage:
        chunks.append({"id": "chatcmpl-1", "object": "chat.completion.chunk",
                       "created": 1700000000, "model": "model-x", "choices": [],
                       "usage": {"prompt_tokens": 150, "completion_tokens": 45,
                                 "total_tokens": 195}})
    lines = [f"data: {json.dumps(chunk, ensure_ascii=ensure_ascii)}\n\n".encode()
             for chunk in chunks]
    return lines + ([b"data: [DONE]\n\n"] if done else [])


def openai_error(message: str) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "code": None}}


EXPECTED_OPENAI_MESSAGES = [{"role": "system", "content": system_prompt("compliance")},
                            *EXPECTED_CHAT]


# --- OpenAI ----------------------------------------------------------------------------------

def test_openai_generate_sends_the_prompt_and_parses_the_answer():
    server = FakeServer(json_response(200, openai_completion()))
    result = OpenAIProvider(http_client=server.client()).generate(make_request())

    assert result == Generation(text="Records must be kept for five years [2].",
                                usage=Usage(input_tokens=150, output_tokens=45),
                                suggestions=SUGGESTIONS)
    sent = server.requests[0]
    assert str(sent.url) == "https://api.openai.com/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-openai-test"
    # OpenAI itself: max_completion_tokens (its reasoning models reject max_tokens).
    assert server.body == {"model": "model-x", "messages": EXPECTED_OPENAI_MESSAGES,
                           "max_completion_tokens": 1024, "temperature": 0.2}


def test_openai_compatible_server_from_options_needs_no_key(settings):
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = "https://ignored.example/v1"
    server = FakeServer(json_response(200, openai_completion()))
    OpenAIProvider(http_client=server.client()).generate(
        make_request(base_url="http://localhost:11434/v1", max_tokens=200, temperature=0.7))

    sent = server.requests[0]
    assert str(sent.url) == "http://localhost:11434/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer not-needed"
    assert server.body["max_tokens"] == 200
    assert "max_completion_tokens" not in server.body
    assert server.body["temperature"] == 0.7


def test_openai_base_url_setting_and_token_param_option(settings):
    settings.OPENAI_BASE_URL = "http://vllm.internal:8000/v1"
    server = FakeServer(json_response(200, openai_completion()))
    OpenAIProvider(http_client=server.client()).generate(
        make_request(max_tokens_param="max_completion_tokens", temperature=None))

    assert str(server.requests[0].url) == "http://vllm.internal:8000/v1/chat/completions"
    assert server.body["max_completion_tokens"] == 1024
    assert "max_tokens" not in server.body and "temperature" not in server.body


def test_openai_stream_yields_answer_deltas_then_finish_with_usage():
    server = FakeServer(stream_response(openai_stream(DELTAS)))
    events = collect(OpenAIProvider(http_client=server.client()).stream(make_request()))

    assert events == [*STREAMED, Finish(usage=Usage(input_tokens=150, output_tokens=45),
                                        suggestions=SUGGESTIONS)]
    assert server.body["stream"] is True
    assert server.body["stream_options"] == {"include_usage": True}
    assert server.body["messages"] == EXPECTED_OPENAI_MESSAGES


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
@pytest.mark.parametrize("size", [1, 3, 7])
def test_openai_stream_split_anywhere_and_any_line_ending_gives_the_same_events(ending, size):
    """The events do not depend on where the network cuts the bytes (inside a line, between
    the CR and LF of a line ending, inside a UTF-8 character) nor on the line ending used."""
    deltas = ["Conservez les données [1]", " pendant cinq ans — 5 ans [2]."]
    body = b"".join(openai_stream(deltas, ensure_ascii=False)).replace(b"\n", ending)
    assert "données".encode() in body  # two bytes for é: some cuts fall inside it
    chunks = [body[i:i + size] for i in range(0, len(body), size)]
    server = FakeServer(stream_response(chunks))
    events = collect(OpenAIProvider(http_client=server.client()).stream(make_request()))

    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "".join(deltas)
    assert events[-1] == Finish(usage=Usage(input_tokens=150, output_tokens=45), suggestions=[])


def test_openai_stream_without_usage_reports_zero_tokens():
    server = FakeServer(stream_response(openai_stream(["Short answer [1]."], usage=False)))
    events = collect(OpenAIProvider(http_client=server.client()).stream(make_request()))

    assert events == [TextDelta("Short answer [1]."), Finish(usage=Usage(0, 0), suggestions=[])]


def test_openai_server_error_after_retries_is_a_provider_error(settings):
    settings.EGRET_PROVIDER_MAX_RETRIES = 1
    server = FakeServer(json_response(500, openai_error("The server had an error"),
                                      **{"retry-after-ms": "1", "x-request-id": "req_7"}))
    with pytest.raises(ProviderError) as caught:
        OpenAIProvider(http_client=server.client()).generate(make_request())

    assert len(server.requests) == 2
    assert str(caught.value) == ("OpenAI API returned HTTP 500 (request id req_7): "
                                 "The server had an error")


def test_openai_401_is_a_provider_error_without_retry():
    server = FakeServer(json_response(401, openai_error("Incorrect API key provided")))
    with pytest.raises(ProviderError, match="HTTP 401.*Incorrect API key provided"):
        OpenAIProvider(http_client=server.client()).generate(make_request())
    assert len(server.requests) == 1


def test_openai_connection_error_is_a_provider_error():
    server = FakeServer(raise_error(httpx.ConnectError("connection refused")))
    with pytest.raises(ProviderError, match="could not reach the OpenAI API.*connection refused"):
        OpenAIProvider(http_client=server.client()).generate(make_request())


@pytest.mark.parametrize("body", [{"choices": []}, {"object": "list", "data": "nope"}])
def test_openai_unexpected_response_shape_is_a_provider_error(body):
    server = FakeServer(json_response(200, body))
    with pytest.raises(ProviderError, match="unexpected OpenAI response"):
        OpenAIProvider(http_client=server.client()).generate(make_request())


def test_openai_refusal_and_content_filter_are_provider_errors():
    server = FakeServer(json_response(200, openai_completion(None, refusal="I can't help.")),
                        json_response(200, openai_completion("partial", "content_filter")))
    provider = OpenAIProvider(http_client=server.client())
    with pytest.raises(ProviderError, match="refused: I can't help."):
        provider.generate(make_request())
    with pytest.raises(ProviderError, match="finish_reason=content_filter"):
        provider.generate(make_request())


def test_openai_stream_breaking_midway_raises_from_the_iterator():
    chunks = openai_stream(DELTAS[:2], usage=False, finish=False, done=False)
    server = FakeServer(stream_response(chunks, error=httpx.RemoteProtocolError("peer closed")))
    events = OpenAIProvider(http_client=server.client()).stream(make_request())

    assert next(events) == TextDelta("Records must be kept")
    assert next(events) == TextDelta(" for five years [2].")
    with pytest.raises(ProviderError, match="OpenAI stream broke.*peer closed"):
        next(events)


def test_openai_stream_without_finish_reason_is_a_provider_error():
    chunks = openai_stream(DELTAS[:2], usage=False, finish=False, done=False)
    server = FakeServer(stream_response(chunks))
    with pytest.raises(ProviderError, match="without a finish_reason"):
        collect(OpenAIProvider(http_client=server.client()).stream(make_request()))


def test_openai_error_object_in_stream_is_a_provider_error():
    chunks = openai_stream(DELTAS[:1], usage=False, finish=False, done=False)
    chunks.append(f"data: {json.dumps(openai_error('model overloaded'))}\n\n".encode())
    server = FakeServer(stream_response(chunks))
    with pytest.raises(ProviderError, match="OpenAI API error: model overloaded"):
        collect(OpenAIProvider(http_client=server.client()).stream(make_request()))


# --- registry --------------------------------------------------------------------------------

def test_get_provider_builds_the_sdk_providers_with_kwargs():
    client = FakeServer(json_response(200, anthropic_message())).client()
    anthropic_provider = get_provider("anthropic", http_client=client)
    assert isinstance(anthropic_provider, AnthropicProvider)
    assert anthropic_provider.name == "anthropic"
    assert isinstance(get_provider("openai"), OpenAIProvider)
    assert PROVIDERS == ("extractive", "anthropic", "openai")


def test_get_provider_extractive():
    module = pytest.importorskip("assistant.providers.extractive")
    assert isinstance(get_provider("extractive"), module.ExtractiveProvider)


def test_get_provider_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown provider 'gemini'"):
        get_provider("gemini")
