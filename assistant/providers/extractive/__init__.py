"""The built-in `extractive` provider: answers by quoting the retrieved passages.

It needs no model, key or network, and the same request always gives the same answer, which
makes the service useful out of the box and keeps tests offline. The answer is Markdown:

* a lead sentence naming the document(s) quoted (never a rephrasing of the question);
* per source (in retrieval order) and per section inside it (a source is widened to its
  neighbouring sections), a bold heading with its title and section, then the sentences most
  relevant to the question in their original order, each followed by the source's `[n]`
  marker; a list comes whole with its lead-in, a short section whole, a short paragraph
  whole, the subsections of a
  heading without text of its own together, and the section of the best sentence whole up
  to 180 words (for a question asking for a list, its best list in its place);
* in `advisory` mode, a closing "**What to do**" list of instructions and obligations drawn
  from the sources, each with its marker.

Relevance is the overlap of the question's content words (stemmed) with a sentence, weighted
by how rare each word is among the candidate sentences, plus the closeness in meaning to the
question (embeddings) of its section and, within the nearest sections, of the sentence
itself (a sentence that answers in other words: "Notify ... within 72 hours" for "how fast
must we tell the regulator?"), and small bonuses for the source's rank, a matching
heading, list items when the question asks for a list, and numbers when it asks "how
long/often". Each part of a several-part question gets its best sentence first, scored on
its own words and on each sentence's closeness in meaning to that part ("how long must the
paperwork be kept?" finds "Retain ... records for ... five years" in any section). The answer
leads with the document whose quotes score best, unless another retrieved document's
sentences are clearly nearer in meaning to the question and each of its parts; then that one
leads and the others' sentences count for less (_favoured_document()).

The steps live in their own modules: `units` (a source parsed into sentences, list items and
table rows), `scoring` (each unit's relevance), `parts` (the parts of a several-part question
and each part's best answer), `selection` (what is quoted within the budget) and `rendering`
(the Markdown); this module composes them (compose()) and is the provider.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterator

from assistant.providers.base import Finish, Generation, GenerationRequest, TextDelta, Usage
from assistant.providers.extractive.parts import (
    MAX_PART_SENTENCES,
    _part_leaders,
    question_parts,
    question_queries,
)
from assistant.providers.extractive.rendering import (
    NO_SOURCES_TEXT,
    _cite,
    _lead,
    _lead_order,
    _source_blocks,
    _standalone,
)
from assistant.providers.extractive.scoring import (
    _embedded,
    _idf,
    _meaning,
    _query_weights,
    _scores,
)
from assistant.providers.extractive.selection import (
    _budget,
    _fallback,
    _lead_list,
    _lead_section,
    _select,
    _steps,
)
from assistant.providers.extractive.units import _source_units, _Unit
from assistant.suggestions import suggest
from knowledge.text import terms

MAX_ANSWER_CHARS = 3000  # a longer answer drops what it chose last until it fits (compose())
# _favoured_document(): how much nearer in meaning (summed cosines of the best sentences for
# the question and each of its parts) another document must be than the one the answer would
# lead with (the others' scores then count for scoring.FAVOURED_DAMP of theirs), and how many
# of each document's sections nearest the question are looked at.
FAVOUR_MARGIN = 0.2
FAVOUR_SECTIONS = 3


def _favoured_document(request: GenerationRequest, units: list[_Unit], parts: list[str],
                       lead: str) -> str | None:
    """A second opinion on the document an answer leads with, by meaning: for each document,
    the cosine of its sentence nearest the question, plus, for a several-part question, that
    of its sentence nearest each part. When another document's total beats that of `lead`
    (the document whose quotes scored best on words) by FAVOUR_MARGIN, that document is the
    one to answer from: "it's in our business interest instead of asking for consent" is
    legitimate interests in the lawful-bases guidance, though "objects" and "customer" pull
    toward the data subject rights guidance. None when embeddings are off or unavailable,
    or there are more than MAX_PART_SENTENCES units."""
    queries = question_queries(request.question, parts)
    # Each document's FAVOUR_SECTIONS sections nearest the question (all of a source that has
    # no cosines): the sentences that can answer it, at a bounded cost in embeddings (a
    # sentence not seen before costs about 5 ms).
    nearest: dict[str, list[tuple[float, int, str]]] = {}
    for index, source in enumerate(request.sources):
        for heading, cosine in source.relevance:
            nearest.setdefault(source.title, []).append((cosine, index, heading))
    kept = {(index, heading) for sections in nearest.values()
            for _, index, heading in sorted(sections, reverse=True)[:FAVOUR_SECTIONS]}
    units = [unit for unit in units if (unit.source, unit.heading) in kept
             or not request.sources[unit.source].relevance]
    vectors = _embedded(queries, units, MAX_PART_SENTENCES)
    if vectors is None:
        return None
    closeness = vectors[len(queries):] @ vectors[:len(queries)].T
    best: dict[str, list[float]] = {}
    for row, unit in zip(closeness, units):
        title = request.sources[unit.source].title
        best[title] = [max(a, float(b)) for a, b in zip(best.get(title, [-1.0] * len(row)), row)]
    totals = {title: sum(values) for title, values in best.items()}
    favoured = max(totals, key=lambda title: totals[title])
    if favoured != lead and totals[favoured] - totals.get(lead, 0.0) >= FAVOUR_MARGIN:
        return favoured
    return None


def _chosen(request: GenerationRequest, units: list[_Unit], mode: str, parts: list[str],
            idf: dict[str, float], meaning: dict[_Unit, float],
            favoured: str | None = None) -> tuple[dict[_Unit, float], list[_Unit]]:
    """The units' scores and the units the answer quotes (leaders, lead list or section, then
    the best of the rest within the budget)."""
    scores = _scores(request, units, _query_weights(request), idf, meaning, favoured)
    budget = _budget(mode, parts)
    chosen = _select(units, scores, budget,
                     _part_leaders(request, parts, units, scores, idf, meaning, favoured),
                     _lead_list(request, units, scores, meaning, budget)
                     or _lead_section(units, scores), [s.title for s in request.sources],
                     frozenset(terms(request.question)))
    return scores, chosen


def compose(request: GenerationRequest) -> str:
    """The whole Markdown answer for a request (pure function of the request)."""
    return quoted(request)[0]


def quoted(request: GenerationRequest) -> tuple[str, list[_Unit], list[_Unit]]:
    """The answer (compose()), the units its sources were parsed into and those it quotes;
    bench/answer_frontier.py looks at which quoted units hold a key fact."""
    mode = "advisory" if request.mode == "advisory" else "compliance"
    units = [
        unit
        for index, source in enumerate(request.sources)
        for unit in _source_units(index, source)
    ]
    if not units:
        return NO_SOURCES_TEXT, [], []
    parts = question_parts(request.question)
    idf, meaning = _idf(units), _meaning(request, units)  # the same whichever document leads
    scores, chosen = _chosen(request, units, mode, parts, idf, meaning)
    if chosen:
        lead = request.sources[_lead_order(request.sources, chosen, scores)[0]].title
        favoured = _favoured_document(request, units, parts, lead)
        if favoured is not None:
            scores, chosen = _chosen(request, units, mode, parts, idf, meaning, favoured)
    matched = bool(chosen)
    if not matched:
        chosen = _fallback(units)
    text = _render(request, units, chosen, scores, mode, matched)
    while len(text) > MAX_ANSWER_CHARS:
        shorter = _without_last_section(chosen)
        if shorter is None:  # one section is all there is: it stays whole
            break
        chosen = shorter
        text = _render(request, units, chosen, scores, mode, matched)
    return text, units, chosen


def _render(request: GenerationRequest, units: list[_Unit], chosen: list[_Unit],
            scores: dict[_Unit, float], mode: str, matched: bool) -> str:
    blocks = _source_blocks(request.sources, chosen, mode,
                            _lead_order(request.sources, chosen, scores))
    parts = [_lead(request.sources, chosen, mode, matched), *blocks]
    if mode == "advisory":
        steps = _steps(units, scores, chosen)
        if steps:
            numbers = [request.sources[step.source].number for step in steps]
            lines = [f"- {_cite(_standalone(s), n)}" for s, n in zip(steps, numbers)]
            parts.append("**What to do**\n" + "\n".join(lines))
    return "\n\n".join(parts)


def _without_last_section(chosen: list[_Unit]) -> list[_Unit] | None:
    """`chosen` without its last run of units from one section: what was chosen last (the
    lowest-scoring addition), with its list whole; None when that run is all of `chosen`."""
    last = (chosen[-1].source, chosen[-1].heading)
    cut = len(chosen) - 1
    while cut > 0 and (chosen[cut - 1].source, chosen[cut - 1].heading) == last:
        cut -= 1
    return chosen[:cut] or None


# --- Provider -----------------------------------------------------------------------------


def approximate_tokens(text: str) -> int:
    """About 4 tokens per 3 words, the usual ratio for English with BPE tokenizers."""
    return _tokens(len(text.split()))


def _tokens(words: int) -> int:
    return int(words * 4 / 3 + 0.5)


@functools.lru_cache(maxsize=2048)  # passages recur; their word counts do not change
def _word_count(text: str) -> int:
    return len(text.split())


def _input_tokens(request: GenerationRequest) -> int:
    """The question, each source's title, section and text, and the earlier turns."""
    words = sum(len(part.split()) for part in
                [request.question, *(turn.content for turn in request.history)])
    words += sum(_word_count(part) for s in request.sources
                 for part in (s.title, s.section, s.text))
    return _tokens(words)


# Stream piece boundaries: after each line break, and between sentences of a long line.
_PIECE_BOUNDARY = re.compile(r"(?<=\n)|(?<=[.?!] )(?=[A-Z])")


class ExtractiveProvider:
    """Deterministic, offline provider quoting the sources (see the module docstring)."""

    name = "extractive"
    # Generation runs in-process: the pipeline keeps its database connection.
    remote = False

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = max(0.0, float(delay))

    def generate(self, request: GenerationRequest) -> Generation:
        if request.task == "compare":
            from assistant.comparing import compose_comparison  # it builds on scoring, units

            text = compose_comparison(request)
            return Generation(text=text, usage=self._usage(request, text), suggestions=[])
        text = compose(request)
        return Generation(text=text, usage=self._usage(request, text),
                          suggestions=suggest(request.question, request.sources, text))

    def stream(self, request: GenerationRequest) -> Iterator[TextDelta | Finish]:
        generation = self.generate(request)
        delay = self._delay(request)
        pieces = [piece for piece in _PIECE_BOUNDARY.split(generation.text) if piece]
        for index, piece in enumerate(pieces):
            if index and delay:
                time.sleep(delay)
            yield TextDelta(piece)
        yield Finish(usage=generation.usage, suggestions=generation.suggestions)

    def _delay(self, request: GenerationRequest) -> float:
        raw = request.options.get("stream_delay", self.delay)
        try:
            return max(0.0, float(raw))
        except (TypeError, ValueError):
            return self.delay

    @staticmethod
    def _usage(request: GenerationRequest, text: str) -> Usage:
        return Usage(input_tokens=_input_tokens(request),
                     output_tokens=approximate_tokens(text))
