"""Claude through the official `anthropic` SDK: the Anthropic API, or Amazon Bedrock when the
model's options say `"platform": "bedrock"` (model ids like
`us.anthropic.claude-3-5-haiku-20241022-v1:0`).

Options read from `GenerationRequest.options` (AIModel.options): `platform`
("anthropic" | "bedrock"), `max_tokens` (default 1024), `temperature` (default 0.2; null to
leave it to the API).

Bedrock signs requests with AWS SigV4 and frames streams as AWS event streams, both done by
botocore: it needs the `anthropic[bedrock]` extra. Credentials come from the usual AWS chain
(env vars, profile, instance role) or `AWS_BEARER_TOKEN_BEDROCK`; the region from
`AWS_REGION`.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from typing import Any, Iterator

import anthropic
import httpx
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

Client = anthropic.Anthropic | anthropic.AnthropicBedrock


@lru_cache(maxsize=8)
def _shared_client(platform: str, api_key: str | None, base_url: str | None,
                   region: str | None, timeout: float, max_retries: int) -> Client:
    """One SDK client per configuration, so requests reuse its connection pool (a TLS
    handshake per answer would add latency). Keyed by the settings it was built from, so
    changed settings get a new client."""
    return _build_client(platform, api_key, base_url, region, timeout, max_retries, None)


def _build_client(platform: str, api_key: str | None, base_url: str | None,
                  region: str | None, timeout: float, max_retries: int,
                  http_client: httpx.Client | None) -> Client:
    if platform == "bedrock":
        return anthropic.AnthropicBedrock(aws_region=region, timeout=timeout,
                                          max_retries=max_retries, http_client=http_client)
    # None lets the SDK fall back on its other credential sources (ANTHROPIC_AUTH_TOKEN...).
    return anthropic.Anthropic(api_key=api_key or None, base_url=base_url, timeout=timeout,
                               max_retries=max_retries, http_client=http_client)


def _error_detail(exc: anthropic.APIStatusError) -> str:
    """The API's own error message ({"type": "error", "error": {"message": ...}}), which says
    more than the SDK's generic 'Error code: 401 - {...}'."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return f"{error.get('type', 'error')}: {error['message']}"
        if body.get("message"):
            return str(body["message"])
    return exc.message


def _translated_errors():  # the SDK's exceptions → ProviderError
    return sdk_errors("Anthropic", anthropic, _error_detail, settings.EGRET_PROVIDER_TIMEOUT)


def _has_botocore() -> bool:
    # Checked up front: without it the SDK fails deep inside request signing.
    return importlib.util.find_spec("botocore") is not None


def _check_stop_reason(stop_reason: str | None) -> None:
    if stop_reason == "refusal":
        raise ProviderError("Anthropic model refused to answer (stop_reason=refusal)")


def _usage(usage: Any) -> Usage:
    """Input tokens include cache reads and writes: all of them are billed input."""
    if usage is None:
        return Usage()
    input_tokens = sum(getattr(usage, name, None) or 0 for name in (
        "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
    return Usage(input_tokens=input_tokens,
                 output_tokens=getattr(usage, "output_tokens", None) or 0)


class AnthropicProvider:
    name = "anthropic"
    # Generation waits on a server: the pipeline gives its database connection back meanwhile.
    remote = True

    def __init__(self, http_client: httpx.Client | None = None) -> None:
        # Tests inject a client with httpx.MockTransport; production shares pooled clients.
        self._http_client = http_client

    def _client(self, request: GenerationRequest) -> Client:
        platform = request.options.get("platform") or "anthropic"
        if platform not in ("anthropic", "bedrock"):
            raise ProviderError(f"unknown Anthropic platform {platform!r}")
        if platform == "bedrock" and not _has_botocore():
            raise ProviderError("Bedrock needs botocore: pip install 'anthropic[bedrock]'")
        config = (platform, settings.ANTHROPIC_API_KEY, settings.ANTHROPIC_BASE_URL,
                  settings.AWS_REGION, settings.EGRET_PROVIDER_TIMEOUT,
                  settings.EGRET_PROVIDER_MAX_RETRIES)
        if self._http_client is not None:
            return _build_client(*config, self._http_client)
        return _shared_client(*config)

    def _params(self, request: GenerationRequest) -> dict[str, Any]:
        if not request.model_name:
            raise ProviderError("no provider model name configured for this model")
        params: dict[str, Any] = {
            "model": request.model_name,
            "system": system_for(request),
            "messages": messages_for(request),
            "max_tokens": int(request.options.get("max_tokens") or DEFAULT_MAX_TOKENS),
        }
        temperature = request.options.get("temperature", DEFAULT_TEMPERATURE)
        if temperature is not None:  # some models reject it; null in options omits it
            params["temperature"] = float(temperature)
        return params

    def generate(self, request: GenerationRequest) -> Generation:
        params = self._params(request)
        with _translated_errors():
            message = self._client(request).messages.create(**params)
            _check_stop_reason(message.stop_reason)
            raw = "".join(block.text for block in message.content if block.type == "text")
            usage = _usage(message.usage)
        text, suggestions = split_suggestions(raw)
        if not text:
            raise ProviderError("Anthropic returned an empty answer")
        return Generation(text=text, usage=usage, suggestions=suggestions)

    def stream(self, request: GenerationRequest) -> Iterator[TextDelta | Finish]:
        params = self._params(request)
        splitter = StreamSplitter()
        input_tokens = output_tokens = 0
        emitted = completed = False
        with _translated_errors():
            events = self._client(request).messages.create(**params, stream=True)
            with events:  # closes the HTTP response if our consumer stops early
                for event in events:
                    if event.type == "message_start":
                        start = _usage(event.message.usage)
                        input_tokens, output_tokens = start.input_tokens, start.output_tokens
                    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                        text = splitter.feed(event.delta.text)
                        if text:
                            emitted = True
                            yield TextDelta(text)
                    elif event.type == "message_delta":
                        _check_stop_reason(event.delta.stop_reason)
                        # Cumulative counts; input_tokens only appears here on newer APIs.
                        final = _usage(event.usage)
                        input_tokens = final.input_tokens or input_tokens
                        output_tokens = final.output_tokens or output_tokens
                    elif event.type == "message_stop":
                        completed = True
        if not completed:
            # A connection closed cleanly mid-answer: the text is truncated, do not bill it.
            raise ProviderError("Anthropic stream ended before message_stop")
        rest, suggestions = splitter.finish()
        if rest:
            emitted = True
            yield TextDelta(rest)
        if not emitted:
            raise ProviderError("Anthropic returned an empty answer")
        yield Finish(usage=Usage(input_tokens, output_tokens), suggestions=suggestions)
