"""Which units an answer quotes, within its budget: each part's best answer, the best
sentence's section or the best list, then the best of the rest, each with the section, list
or paragraph it belongs to."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace

from assistant.providers.base import GenerationRequest
from assistant.providers.extractive.scoring import _LIST_QUESTION
from assistant.providers.extractive.units import _Unit, _unit_key

# A list is worth more than its best item: each item of a list counts for this share of the
# scores of the list's other items, so a list that answers item by item ("the controls
# are: ...") outranks a list with one item that shares a word with the question.
LIST_SUM = 0.15
LEAD_LIST_RATIO = 0.6  # a list question's best list leads when it scores this share of the best
MAX_LIST_UNITS = 16  # a list introduction and its items quoted together, at most
WHOLE_SECTION_WORDS = 110  # a section this short is quoted whole (docs/benchmarks.md)
PARAGRAPH_WORDS = 70  # a paragraph this short is quoted whole when one of its sentences is chosen
MAX_STEPS = 5
MIN_STEP_WORDS = 5
FALLBACK_SENTENCES = 2
LEAD_SECTION_WORDS = 180  # the best sentence's section is quoted whole up to this length
PART_WORDS = 60  # more words for each further part of a several-part question,
MAX_EXTRA_PARTS = 2  # for at most this many further parts (answers stay under 3,000 characters)
# A sentence from another document than the one the answer leads with needs this share of
# the best score: it is there for what the lead document does not say, not as filler.
OTHER_DOCUMENT_RATIO = 0.75
TOP_SPREAD = 2.0  # the best score counts for at most this many times the second best


@dataclass(frozen=True)
class _Budget:
    sentences: int
    per_source: int
    words: int
    min_ratio: float  # drop sentences scoring below this share of the best one


_BUDGETS = {
    # compliance quotes more and cites more; advisory leaves room for "What to do".
    "compliance": _Budget(sentences=6, per_source=4, words=185, min_ratio=0.45),
    "advisory": _Budget(sentences=5, per_source=2, words=170, min_ratio=0.4),
}


def _budget(mode: str, parts: list[str]) -> _Budget:
    """The mode's budget, with room for each further part of a several-part question
    (question_parts()): four questions in one need four answers, and the budget of one crowds
    the last parts out."""
    budget = _BUDGETS[mode]
    extra = min(len(parts) - 1, MAX_EXTRA_PARTS)
    if extra <= 0:
        return budget
    return replace(budget, words=budget.words + PART_WORDS * extra)


def _normal(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _whole_list(unit: _Unit, units: list[_Unit]) -> list[_Unit]:
    """A list's introduction with every item, or the unit alone when it is in no list."""
    key = _unit_key(unit)
    if key is None:
        return [unit]
    members = [u for u in units if u.source == unit.source and _unit_key(u) == key]
    return members[:MAX_LIST_UNITS]


def _lead_section(units: list[_Unit], scores: dict[_Unit, float]) -> list[_Unit]:
    """The whole section of the best-scoring sentence, when it is short enough to quote: the
    sentences around the one that matched the question's words usually complete it (the list
    of acceptable methods after "obtain verifiable parental consent"), and a relative score
    floor would drop them for using other words."""
    top = max(units, key=lambda u: (scores[u], -u.source, -u.position))
    if scores[top] <= 0:
        return []
    section = [u for u in units if (u.source, u.heading) == (top.source, top.heading)
               or (top.grouped and (u.source, u.group) == (top.source, top.group))]
    return section if sum(u.words for u in section) <= LEAD_SECTION_WORDS else []


def _with_lists(units: list[_Unit], scores: dict[_Unit, float]) -> dict[_Unit, float]:
    """Scores with each list item (and introduction) earning LIST_SUM of its list's other
    members' scores."""
    totals: Counter[tuple[int, str]] = Counter()
    for unit in units:
        if _unit_key(unit) is not None:
            totals[(unit.source, _unit_key(unit))] += scores[unit]
    return {unit: score + LIST_SUM * (totals[(unit.source, _unit_key(unit))] - score)
            if score > 0 and _unit_key(unit) is not None else score
            for unit, score in scores.items()}


def _lead_list(request: GenerationRequest, units: list[_Unit], scores: dict[_Unit, float],
               meaning: dict[_Unit, float], budget: _Budget) -> list[_Unit]:
    """For a question that asks for a list ("what must the notice contain?"), the best list
    of the sections nearest the question in meaning, whole, when it scores near the best
    sentence and fits the budget: it leads the answer in place of the best sentence's
    section."""
    if not _LIST_QUESTION.search(request.question):
        return []
    combined = _with_lists(units, scores)
    top = max(combined.values(), default=0.0)
    listed = [u for u in units if _unit_key(u) is not None and combined[u] > 0
              and meaning[u] > 0]
    if top <= 0 or not listed:
        return []
    best = max(listed, key=lambda u: (combined[u], -u.source, -u.position))
    members = _whole_list(best, units)
    if (combined[best] < LEAD_LIST_RATIO * top
            or sum(u.words for u in members) > budget.words):
        return []
    return members


def _select(units: list[_Unit], scores: dict[_Unit, float], budget: _Budget,
            leaders: list[_Unit] = (), lead: list[_Unit] = (),
            documents: list[str] = (), asked: frozenset[str] = frozenset()) -> list[_Unit]:
    """The best sentences within the budget, after the best answer to each part of the
    question; overlapping chunks repeat sentences, so a sentence already chosen from another
    source is skipped. A chosen list item or introduction ("refresh it within 90 days of any
    of the following triggers:") brings the whole list: its items are the substance, and a
    list cut short misleads. A list counts as one sentence. `lead`, the section of the best
    sentence when it is short, comes first and whole (it counts as one sentence too).
    `documents` (the title of each source) holds a sentence of another document than the one
    the answer leads with to OTHER_DOCUMENT_RATIO of the best score, unless it holds a word
    of the question (`asked`) that nothing chosen before it holds: filler from a neighbouring
    topic is left out, the other half of "how often are tests run and the BIA refreshed?"
    is not."""
    scores = _with_lists(units, scores)
    ranked = sorted(
        (unit for unit in units if scores[unit] > 0),
        key=lambda unit: (-scores[unit], unit.source, unit.position),
    )
    if not ranked:
        return []
    # Relative to the best sentence, but to no more than twice the second best: one sentence
    # far above the rest (it holds most of the question's words) would otherwise shut out the
    # rest of the answer.
    floor = min(scores[ranked[0]], TOP_SPREAD * scores[ranked[min(1, len(ranked) - 1)]]
                ) * budget.min_ratio
    chosen: list[_Unit] = []
    seen: set[str] = set()
    per_source: Counter[int] = Counter()
    words = 0
    lists: set[tuple[int, str]] = set()
    whole: set[tuple[int, str]] = set()
    candidates = [
        *((True, u, None) for u in leaders),
        *((True, lead[0], lead) for _ in lead[:1]),  # after each part's best answer
        *((False, u, None) for u in ranked),
    ]
    lead_document = documents[candidates[0][1].source] if documents else None
    other_floor = scores[ranked[0]] * OTHER_DOCUMENT_RATIO
    covered: set[str] = set()
    for forced, unit, section in candidates:
        if (not forced and documents and documents[unit.source] != lead_document
                and scores[unit] < other_floor and not (asked & unit.terms) - covered):
            continue
        if not forced and (scores[unit] < floor
                           or sum(per_source.values()) >= budget.sentences):
            break
        key = _unit_key(unit)
        if (section is None and ((key is not None and (unit.source, key) in lists)
                                 or _normal(unit.text) in seen)
                or (unit.source, unit.heading) in whole):
            continue
        fitting = [(batch, closing) for batch, closing in _quoted_with(unit, units, section)
                   if not chosen or words + sum(m.words for m in batch) <= budget.words]
        if not fitting:
            continue  # the length budget binds every part, leaders included
        batch, closing = fitting[0]
        if not forced and per_source[unit.source] >= budget.per_source:
            continue
        for member in batch:
            if _normal(member.text) not in seen:
                chosen.append(member)
                covered.update(member.terms)
                seen.add(_normal(member.text))
                words += member.words
        per_source[unit.source] += 1
        lists.update((m.source, _unit_key(m)) for m in batch if _unit_key(m) is not None)
        if closing:
            whole.add((unit.source, unit.heading))
    return chosen


def _short_section(unit: _Unit, units: list[_Unit]) -> list[_Unit]:
    """All of a short section: a few sentences under a heading usually make one rule, and
    the sentence that matched the question's words is rarely the only one it needs."""
    section = [u for u in units if u.source == unit.source and u.heading == unit.heading]
    if len(section) > 1 and sum(u.words for u in section) <= WHOLE_SECTION_WORDS:
        return section
    return []


def _short_paragraph(unit: _Unit, units: list[_Unit]) -> list[_Unit]:
    """All of a short paragraph of prose: its sentences make one point ("Document the criteria
    for classifying deviations as important ... Typical examples of important deviations
    include ..."), and the one that matched the question's words is rarely all of it. Empty
    for a paragraph of one sentence or over PARAGRAPH_WORDS, and for a list item or a list's
    introduction (its list is what it comes with)."""
    if unit.intro is not None or unit.opens_list:
        return []
    paragraph = [u for u in units if u.source == unit.source and u.paragraph == unit.paragraph
                 and not u.opens_list]  # a list item is a block of its own
    if len(paragraph) > 1 and sum(u.words for u in paragraph) <= PARAGRAPH_WORDS:
        return paragraph
    return []


def _quoted_with(unit: _Unit, units: list[_Unit], section: list[_Unit] | None
                 ) -> list[tuple[list[_Unit], bool]]:
    """What a chosen unit is quoted with, as options (units, whether they close its section to
    further picks), the first that fits the budget taken; with none that fits, the unit is
    skipped. `section` when given (the lead section or lead list, `lead` in _select()); else
    the subsections of its short group; else its short section, or, when that does not fit,
    just the list it belongs to ("Adopt clear timing standards ...:" and its four deadlines,
    when the section's closing sentences would take it over the budget; the section's other
    sentences may still be picked on their own score); else its list; else its short
    paragraph, or itself."""
    def closes(batch: list[_Unit]) -> bool:
        return len(batch) > 1 and all(m.heading == unit.heading for m in batch)

    if section:
        return [(section, closes(section))]
    listed = _whole_list(unit, units)
    if unit.grouped:
        return [(listed, closes(listed))]
    short = _short_section(unit, units)
    if short:
        return [(short, True), *([(listed, False)] if len(listed) > 1 else [])]
    if len(listed) > 1:
        return [(listed, closes(listed))]
    return [(_short_paragraph(unit, units) or listed, False)]


def _fallback(units: list[_Unit]) -> list[_Unit]:
    """Nothing overlaps the question: the opening sentences of the best-ranked source."""
    if not units:
        return []
    top = min(unit.source for unit in units)
    # A list introduction alone reads as a dangling "... are:"; its items bring it along.
    opening = [unit for unit in units if unit.source == top and not unit.opens_list]
    return opening[:FALLBACK_SENTENCES]


def _steps(units: list[_Unit], scores: dict[_Unit, float], quoted: list[_Unit]) -> list[_Unit]:
    """Instructions and obligations for "What to do": relevant ones first, preferring
    sentences not already quoted above; only from sources the answer relies on unless the
    sentence itself matches the question."""
    quoted_sources = {unit.source for unit in quoted}
    quoted_text = {_normal(unit.text) for unit in quoted}
    eligible = [
        unit
        for unit in units
        if unit.directive
        and not unit.opens_list  # "Good data should be:" says nothing on its own
        and unit.words >= MIN_STEP_WORDS
        and (scores[unit] > 0 or unit.source in quoted_sources)
    ]
    fresh = [unit for unit in eligible if _normal(unit.text) not in quoted_text]
    pool = fresh or eligible  # repeat a quoted sentence only when nothing else applies
    ranked = sorted(pool, key=lambda unit: (-scores[unit], unit.source, unit.position))
    steps: list[_Unit] = []
    seen: set[str] = set()
    for unit in ranked:
        if _normal(unit.text) not in seen:
            steps.append(unit)
            seen.add(_normal(unit.text))
        if len(steps) == MAX_STEPS:
            break
    return steps
