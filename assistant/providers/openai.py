"""OpenAI chat models, and any OpenAI-compatible server (vLLM, Ollama, llama.cpp...), through
the official `openai` SDK's Chat Completions API.

Options read from `GenerationRequest.options` (AIModel.options): `base_url` (the server of
this model; wins over OPENAI_BASE_URL because it is the more specific), `max_tokens`
(default 1024), `temperature` (default 0.2; null to omit it, which reasoning models need),
`max_tokens_param` ("max_tokens" | "max_completion_tokens"; by default
`max_completion_tokens` for OpenAI itself, whose reasoning models reject `max_tokens`, and
`max_tokens` for compatible servers, which all understand it).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Iterator

import httpx
import openai
# The SDK imports its chat resources on the first use of `client.chat`: 0.35 s of CPU
# holding the GIL, which stalled every thread of a fresh worker during its first streamed
# answer. Imported with this module instead, so a worker's providers.preload() pays it as
# it starts (egret/wsgi.py).
import openai.resources.chat  # noqa: F401
from django.conf import settings

from assistant.prompting import StreamSplitter, messages_for, split_suggestions, system_for
from assistant.providers.base import (
    Finish,
    Generation,
    GenerationRequest,
    ProviderError,
    TextDelta,
    Usage,
    sdk_errors,
)

DEFAULT_MAX_TOKENS = 1024
DEFAULT_TEMPERATURE = 0.2
TOKEN_LIMIT_PARAMS = ("max_tokens", "max_completion_tokens")
# Finish reasons after which the text is not an answer we should bill for.
_FAILED_FINISH_REASONS = ("content_filter",)


@lru_cache(maxsize=8)
def _shared_client(api_key: str, base_url: str | None, timeout: float,
                   max_retries: int) -> openai.OpenAI:
    """One SDK client per configuration, so requests reuse its connection pool."""
    return _build_client(api_key, base_url, timeout, max_retries, None)


def _build_client(api_key: str, base_url: str | None, timeout: float, max_retries: int,
                  http_client: httpx.Client | None) -> openai.OpenAI:
    return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout,
                         max_retries=max_retries, http_client=http_client)


def _error_detail(exc: openai.APIError) -> str:
    """The server's own message: the SDK unwraps {"error": {...}} into `body`; compatible
    servers sometimes send a bare {"message"} or {"detail"}."""
    body = exc.body
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            if body.get(key):
                return str(body[key])
    return exc.message


def _translated_errors():  # the SDK's exceptions → ProviderError
    return sdk_errors("OpenAI", openai, _error_detail, settings.EGRET_PROVIDER_TIMEOUT)


def _check_finish_reason(finish_reason: str | None) -> None:
    if finish_reason in _FAILED_FINISH_REASONS:
        raise ProviderError(f"OpenAI model stopped with finish_reason={finish_reason}")


def _usage(usage: Any) -> Usage:
    if usage is None:  # many compatible servers send none
        return Usage()
    return Usage(input_tokens=usage.prompt_tokens or 0,
                 output_tokens=usage.completion_tokens or 0)


class OpenAIProvider:
    name = "openai"
    # Generation waits on a server: the pipeline gives its database connection back meanwhile.
    remote = True

    def __init__(self, http_client: httpx.Client | None = None) -> None:
        # Tests inject a client with httpx.MockTransport; production shares pooled clients.
        self._http_client = http_client

    @staticmethod
    def _base_url(request: GenerationRequest) -> str | None:
        return request.options.get("base_url") or settings.OPENAI_BASE_URL

    def _client(self, request: GenerationRequest) -> openai.OpenAI:
        # Local servers need no key, but the SDK refuses to start without one.
        config = (settings.OPENAI_API_KEY or "not-needed", self._base_url(request),
                  settings.EGRET_PROVIDER_TIMEOUT, settings.EGRET_PROVIDER_MAX_RETRIES)
        if self._http_client is not None:
            return _build_client(*config, self._http_client)
        return _shared_client(*config)

    def _params(self, request: GenerationRequest) -> dict[str, Any]:
        if not request.model_name:
            raise ProviderError("no provider model name configured for this model")
        limit_param = request.options.get("max_tokens_param") or (
            "max_completion_tokens" if self._base_url(request) is None else "max_tokens")
        if limit_param not in TOKEN_LIMIT_PARAMS:
            raise ProviderError(f"max_tokens_param must be one of {TOKEN_LIMIT_PARAMS}")
        params: dict[str, Any] = {
            "model": request.model_name,
            "messages": [{"role": "system", "content": system_for(request)},
                         *messages_for(request)],
            limit_param: int(request.options.get("max_tokens") or DEFAULT_MAX_TOKENS),
        }
        temperature = request.options.get("temperature", DEFAULT_TEMPERATURE)
        if temperature is not None:
            params["temperature"] = float(temperature)
        return params

    def generate(self, request: GenerationRequest) -> Generation:
        params = self._params(request)
        with _translated_errors():
            completion = self._client(request).chat.completions.create(**params)
            choice = completion.choices[0]
            _check_finish_reason(choice.finish_reason)
            if getattr(choice.message, "refusal", None):
                raise ProviderError(f"OpenAI model refused: {choice.message.refusal}")
            raw = choice.message.content or ""
            usage = _usage(completion.usage)
        text, suggestions = split_suggestions(raw)
        if not text:
            raise ProviderError("OpenAI returned an empty answer")
        return Generation(text=text, usage=usage, suggestions=suggestions)

    def stream(self, request: GenerationRequest) -> Iterator[TextDelta | Finish]:
        """The SDK sends the request (retries, errors, auth); the Server-Sent Events of the
        answer are read here as plain JSON: building the SDK's typed chunk objects cost more
        than everything else done per delta."""
        params = self._params(request)
        splitter = StreamSplitter()
        usage = Usage()
        emitted = finished = False
        with _translated_errors():
            # The messages go in `extra_body`, sent as they are: the SDK's walk of them
            # against its typed parameters cost more CPU than the rest of the request.
            messages = params.pop("messages")
            raw = self._client(request).chat.completions.with_streaming_response.create(
                **params, messages=[], extra_body={"messages": messages}, stream=True,
                stream_options={"include_usage": True})
            with raw as response:  # closes the HTTP response if our consumer stops early
                for event, data in _server_sent_events(response.iter_lines()):
                    if data.startswith("[DONE]"):
                        break
                    chunk = json.loads(data)
                    if not isinstance(chunk, dict):
                        raise ValueError(f"a stream chunk that is not an object: {data[:200]}")
                    if chunk.get("error") or event == "error":
                        error = chunk.get("error") or chunk
                        message = (error.get("message") if isinstance(error, dict)
                                   else None) or str(error)
                        raise ProviderError(f"OpenAI API error: {message}")
                    if chunk.get("usage"):  # the last chunk, with no choices
                        usage = _usage_of(chunk["usage"])
                    for choice in chunk.get("choices") or ():
                        content = (choice.get("delta") or {}).get("content")
                        if content:
                            text = splitter.feed(content)
                            if text:
                                emitted = True
                                yield TextDelta(text)
                        if choice.get("finish_reason"):
                            _check_finish_reason(choice["finish_reason"])
                            finished = True
        if not finished:
            # The connection closed cleanly mid-answer: the text is truncated, do not bill it.
            raise ProviderError("OpenAI stream ended without a finish_reason")
        rest, suggestions = splitter.finish()
        if rest:
            emitted = True
            yield TextDelta(rest)
        if not emitted:
            raise ProviderError("OpenAI returned an empty answer")
        yield Finish(usage=usage, suggestions=suggestions)


class ServerSentEvents:
    """Server-Sent Events read line by line: `line()` gives (event name, data) when a line
    ends an event, `end()` what the last lines left open; `data:` lines joined, comments and
    other fields skipped. Fed by a blocking iterator here and by an asynchronous one in
    bench/serving.py."""

    def __init__(self) -> None:
        self._event, self._data = "", []

    def line(self, line: str) -> tuple[str, str] | None:
        if not line:
            return self.end()
        if line.startswith("data:"):
            self._data.append(line[6:] if line.startswith("data: ") else line[5:])
        elif line.startswith("event:"):
            self._event = line[6:].strip()
        return None

    def end(self) -> tuple[str, str] | None:
        event = (self._event, "\n".join(self._data)) if self._data else None
        self._event, self._data = "", []
        return event


def _server_sent_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event name, data) of each Server-Sent Event of `lines`."""
    events = ServerSentEvents()
    for line in lines:
        event = events.line(line)
        if event is not None:
            yield event
    event = events.end()
    if event is not None:
        yield event


def _usage_of(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    return Usage(input_tokens=usage.get("prompt_tokens") or 0,
                 output_tokens=usage.get("completion_tokens") or 0)
