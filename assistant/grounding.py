"""Which retrieved passages are good enough to answer from, and how good the context is.

Retrieval scores are not comparable across databases (PostgreSQL's ts_rank_cd and SQLite's
bm25 live on different scales; bm25 is near 0 on a small corpus) or across methods, so the
threshold is on something both share: the share of the question's content terms a passage
contains (with the light stemmer of assistant/suggestions.py, so "tests" matches
"testing"). A passage below `EGRET_MIN_COVERAGE` does not count as a source; when none is left the answer is
`insufficient_context` and costs nothing. With embeddings on, a passage close enough in
meaning (`EGRET_MIN_SIMILARITY`), or two sections of one document a little less close
(`EGRET_MIN_DOCUMENT_SIMILARITY`), count too, and when none does, a passage with one sentence
close to the question or to one of its parts (`EGRET_MIN_SENTENCE_SIMILARITY`); once a
document covers the question, its other retrieved sections are sources as well.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from django.conf import settings

from knowledge import embeddings
from knowledge.chunking import split_sentences
from knowledge.retrieval import Passage, terms_of
from knowledge.text import stem, terms

# Words that shape a question but say nothing about its subject ("how long must we ...").
QUESTION_WORDS = frozenset(
    "must should shall need needs required require often long many much also any ever "
    "kind sort way ways get make made tell know".split())
_QUESTION_STEMS = frozenset(stem(word) for word in QUESTION_WORDS)


def content_terms(question: str) -> list[str]:
    return [t for t in terms_of(question) if t not in QUESTION_WORDS]


def question_stems(question: str) -> set[str]:
    """The stems a passage is checked against, split as passages are ("pre-written" is
    "pre" and "written"), without the words that only frame a question."""
    return {t for t in terms(question) if t not in _QUESTION_STEMS}


@functools.lru_cache(maxsize=4096)  # the same top passages come back for many questions
def stems_of(text: str) -> frozenset[str]:
    return frozenset(stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 1)


def matched(question_stems: set[str], passage: Passage) -> int:
    """How many of the question's content stems the passage holds (the retrieved chunk with
    its heading path; the sections it was widened with do not vouch for it)."""
    return len(question_stems & stems_of(_own_text(passage)))


def _own_text(passage: Passage) -> str:
    return f"{passage.chunk.heading_path}. {passage.chunk.text}"


@functools.lru_cache(maxsize=4096)
def pairs_of(text: str) -> frozenset[tuple[str, str]]:
    """Adjacent content words, stemmed ("record review", "cleaning validation"); a
    hyphenated word ("mid-sized") is one word, not a pair."""
    stems = terms(text.replace("-", ""))
    return frozenset(zip(stems, stems[1:]))


def _document_covers(stems: set[str], passages: list[Passage],
                     phrases: frozenset[tuple[str, str]], minimum: float) -> bool:
    """The sections retrieved from one document together hold the share of the question's
    words, and one of them holds two side by side: a several-part question answered by
    several sections of one document."""
    by_document: dict = {}
    for passage in passages:
        held, phrased = by_document.get(passage.document.pk, (set(), False))
        by_document[passage.document.pk] = (
            held | (stems & stems_of(_own_text(passage))),
            phrased or bool(phrases & pairs_of(_own_text(passage))))
    needed = max(settings.EGRET_MIN_MATCHED_TERMS, minimum * len(stems))
    return any(phrased and len(held) >= needed for held, phrased in by_document.values())


def _close_documents(passages: list[Passage]) -> set:
    """Documents with two or more retrieved sections near the question in meaning, each
    below EGRET_MIN_SIMILARITY but above EGRET_MIN_DOCUMENT_SIMILARITY: a question in other
    words than its document's, which several sections of the document address. A single
    near section of an unrelated document is how an off-topic question comes close."""
    floor = settings.EGRET_MIN_DOCUMENT_SIMILARITY
    near: dict = {}
    for passage in passages:
        if closeness(passage) >= floor:
            near[passage.document.pk] = near.get(passage.document.pk, 0) + 1
    return {document for document, count in near.items() if count >= 2}


def closeness(passage: Passage) -> float:
    """How near the passage comes to the question in meaning: its chunk's cosine, or that of a
    section it was widened with when higher ("Ransom Demands" at 0.63 beside the chunk on
    "Decision-Making During an Attack" at 0.35 that retrieval found). Sections, not chunks,
    are what EGRET_MIN_SIMILARITY was measured on."""
    return max([passage.similarity or 0.0, *(cosine for _, cosine in passage.relevance)])


MIN_SENTENCE_WORDS = 4  # shorter sentences (headings, "Good data should be:") say too little
MAX_SENTENCES = 200  # looked at, best passages first: a bound on the embeddings of one question


def _sentence_documents(question: str, passages: list[Passage]) -> set:
    """Documents of the passages holding a sentence within EGRET_MIN_SENTENCE_SIMILARITY of
    the question or of one of its parts (question_queries()). A section's cosine averages a
    whole section, so a question in other words that one sentence answers ("by when do we
    have to write it up?" and "Produce an after-action report within 30 days of every
    exercise") can stay below EGRET_MIN_SIMILARITY; the off-topic questions of the evaluation
    set come no closer to any sentence than 0.41 (docs/benchmarks.md). Costs an embedding per
    sentence not embedded before (remembered per text: the library's sentences recur), so it
    is only asked when nothing else covers the question."""
    floor = settings.EGRET_MIN_SENTENCE_SIMILARITY
    if floor > 1 or not passages or not embeddings.enabled():
        return set()
    from assistant.providers.extractive import question_queries  # the provider's own split

    owners: dict[str, set] = {}
    for passage in passages:
        for sentence in split_sentences(passage.text):
            if len(sentence.split()) >= MIN_SENTENCE_WORDS and (
                    sentence in owners or len(owners) < MAX_SENTENCES):
                owners.setdefault(sentence, set()).add(passage.document.pk)
    if not owners:
        return set()
    queries = question_queries(question)
    try:
        vectors = embeddings.embed_texts([*queries, *owners])
    except embeddings.EmbeddingsUnavailable:
        return set()
    closest = (vectors[len(queries):] @ vectors[:len(queries)].T).max(axis=1)
    return {document for cosine, documents in zip(closest, owners.values())
            if cosine >= floor for document in documents}


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
    stems = question_stems(question)
    count = max(1, len(stems))
    scored = [(matched(stems, p), p) for p in passages]
    # Pairs of the question's own content words ("kind of training" frames, it names nothing).
    phrases = frozenset(pair for pair in pairs_of(question) if set(pair) <= stems)

    # A long question ("how quickly ..., who approves ... and how long ...?") is answered part
    # by part from several sections, each holding a few of its words. A passage holding
    # MIN_MATCHED_TERMS of them counts even below the share when it also holds two of them
    # side by side, as the question does ("record review"): scattered common words
    # ("business", "cost", "size") are how an off-topic question matches.
    def covers(n: int, passage: Passage) -> bool:
        if n / count >= minimum:
            return n > 0
        if closeness(passage) >= settings.EGRET_MIN_SIMILARITY:
            return True  # close in meaning: the question asked in other words
        return n >= settings.EGRET_MIN_MATCHED_TERMS and bool(
            phrases & pairs_of(_own_text(passage)))

    close = _close_documents(passages)
    if not (any(covers(n, p) for n, p in scored) or close
            or _document_covers(stems, passages, phrases, minimum)):
        close = _sentence_documents(question, passages)
        if not close:
            return Grounding([], "insufficient")
    # The question is covered; other passages that share two of its words with it are the
    # rest of the answer, not noise, and so are the other sections retrieved from a document
    # that covers it (the part of a several-part question put in other words).
    answering = close | {p.document.pk for n, p in scored if covers(n, p)}
    kept = [(n / count, p) for n, p in scored
            if n >= 2 or covers(n, p) or p.document.pk in answering]
    if not kept:  # covered only by several passages together, each too thin to quote
        return Grounding([], "insufficient")
    best = max(c for c, _ in kept)
    if best >= 0.75 and len(kept) >= 2:
        quality = "high"
    elif best >= 0.5:
        quality = "medium"
    else:
        quality = "low"
    return Grounding([p for _, p in kept], quality)
