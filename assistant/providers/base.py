"""The one interface every generation provider implements.

A provider turns a `GenerationRequest` (the question, the mode, numbered sources, earlier
turns) into an answer. `generate` returns it whole; `stream` yields `TextDelta`s as they are
produced and ends with exactly one `Finish` carrying token usage and follow-up suggestions.
Providers never touch the database or credits: the pipeline (assistant/pipeline.py) reserves,
persists and settles around them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol

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
