"""The one interface every generation provider implements.

A provider turns a `GenerationRequest` (the question, the mode, numbered sources, earlier
turns) into an answer. `generate` returns it whole; `stream` yields `TextDelta`s as they are
produced and ends with exactly one `Finish` carrying token usage and follow-up suggestions.
Providers never touch the database or credits: the pipeline (assistant/pipeline.py) reserves,
persists and settles around them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from contextlib import contextmanager
from types import ModuleType
from typing import Callable, Iterator, Protocol

MODES = ("compliance", "advisory")


class ProviderError(Exception):
    """Anything that went wrong upstream (network, timeout, refusal, bad response). The
    pipeline turns it into the generic 500 of API.md 1 (or a stream `error` event) and a
    refund; the message is logged, never shown to the client."""


@dataclass(frozen=True)
class SourceText:
    """One retrieved passage as the provider sees it; cited as `[number]`."""

    number: int  # 1-based, the marker that cites it
    title: str
    text: str
    section: str = ""
    page: int | None = None
    # How close in meaning each section in `text` is to the question (cosine), by the heading
    # it sits under ("" for the passage's own section); empty without embeddings.
    relevance: tuple[tuple[str, float], ...] = ()
    # In a comparison, the marker that cites it: "<category code>:<number>" (API.md 12).
    label: str = ""


@dataclass(frozen=True)
class Turn:
    """An earlier message of the session, oldest first."""

    sender: str  # "user" | "assistant"
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    question: str
    mode: str  # "compliance" | "advisory" (auto is resolved before)
    sources: list[SourceText]
    history: list[Turn] = field(default_factory=list)
    model_name: str = ""  # the provider-side model name (AIModel.provider_model)
    options: dict = field(default_factory=dict)  # AIModel.options (temperature, max_tokens...)
    # "answer": one category's answer citing [n]; "compare": a side-by-side table of
    # `categories` ((code, name) in request order) citing the sources' labels [code:n].
    task: str = "answer"
    categories: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class Generation:
    text: str  # Markdown with [n] markers
    usage: Usage
    suggestions: list[str]


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Finish:
    usage: Usage
    suggestions: list[str]


class Provider(Protocol):
    name: str

    def generate(self, request: GenerationRequest) -> Generation: ...

    def stream(self, request: GenerationRequest) -> Iterator[TextDelta | Finish]: ...


@contextmanager
def sdk_errors(vendor: str, sdk: ModuleType, detail: Callable[[Exception], str],
               timeout: float) -> Iterator[None]:
    """Every failure of an SDK call (or of reading its stream) becomes a ProviderError, which
    the pipeline turns into a refund and a generic error. `sdk` is the `anthropic` or `openai`
    module: both SDKs share these exception names."""
    import httpx

    try:
        yield
    except sdk.APIStatusError as exc:
        # An `error` event inside a 200 stream (e.g. overloaded) also lands here.
        where = (f"HTTP {exc.status_code}" if exc.status_code >= 400
                 else "an error event in the stream")
        request_id = f" (request id {exc.request_id})" if exc.request_id else ""
        raise ProviderError(f"{vendor} API returned {where}{request_id}: {detail(exc)}"
                            ) from exc
    except sdk.APITimeoutError as exc:
        raise ProviderError(f"{vendor} API timed out after {timeout}s") from exc
    except sdk.APIConnectionError as exc:
        cause = exc.__cause__ or exc
        raise ProviderError(f"could not reach the {vendor} API: {cause!r}") from exc
    except sdk.APIError as exc:
        # e.g. an {"error": ...} object sent inside a stream.
        raise ProviderError(f"{vendor} API error: {detail(exc)}") from exc
    except Exception as exc:
        if isinstance(exc, httpx.HTTPError):
            # The SDKs do not wrap errors raised while a streamed body is being read.
            raise ProviderError(f"{vendor} stream broke: {exc!r}") from exc
        if isinstance(exc, (TypeError, ValueError, AttributeError, KeyError, IndexError)):
            # Malformed JSON/events, a body of the wrong shape, or a client that could not
            # resolve credentials (the Anthropic SDK raises TypeError for that).
            raise ProviderError(f"unexpected {vendor} response or configuration: {exc!r}"
                                ) from exc
        if type(exc).__module__.split(".")[0] == sdk.__name__:
            raise ProviderError(f"{vendor} SDK error: {exc}") from exc
        raise
