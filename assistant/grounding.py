"""Which retrieved passages are good enough to answer from, and how good the context is.

Retrieval scores are not comparable across databases (PostgreSQL's ts_rank_cd and SQLite's
bm25 live on different scales; bm25 is near 0 on a small corpus) or across methods, so the
threshold is on something both share: the share of the question's content terms a passage
contains (with the light stemmer of assistant/suggestions.py, so "tests" matches
"testing"). A passage below `EGRET_MIN_COVERAGE` does not count as a source; when none is left the answer is
`insufficient_context` and costs nothing.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from django.conf import settings

from assistant.suggestions import stem
from knowledge.retrieval import Passage, terms_of

# Words that shape a question but say nothing about its subject ("how long must we ...").
QUESTION_WORDS = frozenset(
    "must should shall need needs required require often long many much also any ever "
    "kind sort way ways get make made tell know".split())


def content_terms(question: str) -> list[str]:
    return [t for t in terms_of(question) if t not in QUESTION_WORDS]


@functools.lru_cache(maxsize=4096)  # the same top passages come back for many questions
def stems_of(text: str) -> frozenset[str]:
    return frozenset(stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 1)


def coverage(question_stems: set[str], passage: Passage) -> float:
    if not question_stems:
        return 0.0
    text = f"{passage.chunk.section} {passage.document.title} {passage.chunk.text}"
    return len(question_stems & stems_of(text)) / len(question_stems)


@dataclass(frozen=True)
class Grounding:
    passages: list[Passage]  # the ones good enough to cite, best first
    quality: str  # high | medium | low | insufficient

    @property
    def insufficient(self) -> bool:
        return not self.passages


def ground(question: str, passages: list[Passage], *, minimum: float | None = None
           ) -> Grounding:
    minimum = settings.EGRET_MIN_COVERAGE if minimum is None else minimum
    question_stems = {stem(t) for t in content_terms(question)}
    scored = [(coverage(question_stems, p), p) for p in passages]
    kept = [(c, p) for c, p in scored if c >= minimum and c > 0]
    if not kept:
        return Grounding([], "insufficient")
    best = max(c for c, _ in kept)
    if best >= 0.75 and len(kept) >= 2:
        quality = "high"
    elif best >= 0.5:
        quality = "medium"
    else:
        quality = "low"
    return Grounding([p for _, p in kept], quality)
