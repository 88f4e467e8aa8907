"""The built-in `extractive` provider: answers by quoting the retrieved passages.

It needs no model, key or network, and the same request always gives the same answer, which
makes the service useful out of the box and keeps tests offline. The answer is Markdown:

* a lead sentence naming the document(s) quoted (never a rephrasing of the question);
* per source (in retrieval order) and per section inside it (a source is widened to its
  neighbouring sections), a bold heading with its title and section, then the sentences most
  relevant to the question in their original order, each followed by the source's `[n]`
  marker; a list comes whole with its lead-in, a short section whole, the subsections of a
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
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import groupby
from typing import NamedTuple

from assistant.providers.base import (
    Finish,
    Generation,
    GenerationRequest,
    SourceText,
    TextDelta,
    Turn,
    Usage,
)
from assistant.suggestions import document_name, is_imperative, suggest
from knowledge import embeddings
from knowledge.boilerplate import is_boilerplate
from knowledge.chunking import split_sentences
from knowledge.text import terms

# --- Markdown noise -----------------------------------------------------------------------
_HEADING = re.compile(r"^\s{0,3}#{1,6}(?:\s|$)")
_RULE = re.compile(r"^\s*(?:[-*_=]\s*){3,}$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_TABLE_ROW = re.compile(r"^\s*\|(.+)\|\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+(.*)$")
_QUOTE = re.compile(r"^\s*>\s?")
_LINK = re.compile(r"\[([^\]\n]+)\]\([^)\n]*\)")
# Bracketed numbers in a source would read as our citation markers and point nowhere.
_BRACKET_NUMBER = re.compile(r"\[\s*\d[\d,;\s–-]*\]")
_EMPHASIS = re.compile(r"\*\*|__|`")
_SINGLE_EMPHASIS = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")

# --- Relevance ---------------------------------------------------------------------------
_OBLIGATION = re.compile(
    r"\b(?:must|should|shall|(?:is|are) required to|(?:need|needs) to|(?:is|are) expected to)\b",
    re.I,
)
_QUANTITY_QUESTION = re.compile(
    r"\b(?:how (?:long|often|many|much|soon|quickly|far)|when|deadline|within|period|"
    r"timeline|frequency|by when|maximum|minimum)\b",
    re.I,
)
_QUANTITY = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twelve|annual(?:ly)?|"
    r"quarterly|monthly|weekly|daily|yearly|every|immediately|promptly)\b",
    re.I,
)
# "What must the notice contain?", "which criteria ...", "walk me through the steps": the
# answer is a list, and a list item or introduction that matches beats a lone sentence.
_LIST_QUESTION = re.compile(
    r"\b(?:what (?:are|were|should|must|do|does|kinds?|types?|sorts?|information|details|"
    r"items?|steps?|elements?|factors?|criteria)|which|list|contain|include|cover|consist|"
    r"walk (?:me|us) through|steps?|phases?|stages?|elements?|criteria|factors?|"
    r"categor(?:y|ies)|kinds? of|types? of|signs?|triggers?|examples?)\b", re.I)
LIST_BONUS = 0.6
SENTENCE_WEIGHT = 20.0  # per unit of a sentence's cosine above the floor, in overlap points
SENTENCE_FLOOR = 0.35
MAX_SENTENCES_EMBEDDED = 40  # more than this in the nearest sections: no sentence cosines
PART_SENTENCE_WEIGHT = 30.0  # a part's own cosine to a sentence, above SENTENCE_FLOOR
MAX_PART_SENTENCES = 200  # more candidate sentences than this: parts go by their words alone
MEANING_MARGIN = 0.08  # sections within this cosine of the nearest one count for meaning
MEANING_WEIGHT = 10.0  # per unit of cosine above the floor, in term-overlap points
RANK_BONUS = 0.3  # the top source's edge over the last; retrieval already ranked them
SECTION_BONUS = 0.25  # per question term found in the heading a sentence sits under
QUANTITY_BONUS = 0.5
OBLIGATION_BONUS = 0.2  # compliance mode only: the rule itself beats its background
HISTORY_WEIGHT = 0.5  # terms carried over from the previous question count for less
# A question's words that its source's title also has ("... in a written information security
# program?") say which document, not which section; they count for less inside that source.
TITLE_WEIGHT = 0.75
# A list is worth more than its best item: each item of a list counts for this share of the
# scores of the list's other items, so a list that answers item by item ("the controls
# are: ...") outranks a list with one item that shares a word with the question.
LIST_SUM = 0.15
LEAD_LIST_RATIO = 0.6  # a list question's best list leads when it scores this share of the best
FOLLOW_UP_TERMS = 3  # a question with fewer content terms than this is a follow-up

SHORT_INTRO_WORDS = 4
_POINTS_AT_LIST = re.compile(r"\b(?:below|the following|as follows)\b", re.I)
MAX_LIST_UNITS = 16  # a list introduction and its items quoted together, at most
WHOLE_SECTION_WORDS = 110  # a section this short is quoted whole (docs/benchmarks.md)
PARAGRAPH_WORDS = 70  # a paragraph this short is quoted whole
MAX_STEPS = 5
MIN_STEP_WORDS = 5
FALLBACK_SENTENCES = 2
LEAD_SECTION_WORDS = 180  # the best sentence's section is quoted whole up to this length
GROUP_WORDS = 180  # subsections of a text-less heading up to this length are one unit
PART_WORDS = 60  # more words for each further part of a several-part question,
MAX_EXTRA_PARTS = 2  # for at most this many further parts (answers stay under 3,000 characters)
MAX_ANSWER_CHARS = 3000  # a longer answer drops what it chose last until it fits (compose())
# A sentence from another document than the one the answer leads with needs this share of
# the best score: it is there for what the lead document does not say, not as filler.
OTHER_DOCUMENT_RATIO = 0.75
# _favoured_document(): how much nearer in meaning (summed cosines of the best sentences for
# the question and each of its parts) another document must be than the one the answer would
# lead with, and what the other documents' scores are then worth.
FAVOUR_MARGIN = 0.2
FAVOURED_DAMP = 0.5
FAVOUR_SECTIONS = 3
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


class _Unit(NamedTuple):
    """One quotable piece of a source: a sentence of prose, or one list item / table row.
    (A named tuple: dozens are made per answer, and a frozen dataclass is slow to build.)"""

    source: int  # index into request.sources
    position: int
    text: str
    intro: str | None  # for list items: the "... include:" sentence that introduces them
    opens_list: bool  # this sentence is such an introduction
    terms: frozenset[str]
    intro_terms: frozenset[str]
    words: int
    directive: bool  # an instruction or an obligation ("Retain ...", "... must ...")
    heading: str  # the heading inside the source it sits under ("" for the source's own)
    group: str  # the text-less heading over `heading` ("5. What We Monitor"), or ""
    grouped: bool  # its group is short enough to be quoted as one unit (GROUP_WORDS)
    paragraph: int  # the block of the source it comes from (a paragraph, or a list item)


# --- Parsing sources into units -----------------------------------------------------------


def _inline(text: str) -> str:
    """Plain text of a Markdown fragment, without anything that could pose as a marker."""
    text = _LINK.sub(r"\1", text)
    text = _BRACKET_NUMBER.sub("", text)
    text = _EMPHASIS.sub("", text)
    text = _SINGLE_EMPHASIS.sub(r"\1", text)
    return " ".join(text.split()).replace(" ,", ",").replace(" .", ".")


def _blocks(text: str) -> list[tuple[str, str, int]]:
    """("prose" | "item" | "heading" | "group", text, heading level or 0) blocks; rules and
    blockquote markers dropped. A "group" is a heading straight followed by a deeper one: it
    has no text of its own, and its subsections make one part of the source."""
    blocks: list[tuple[str, str, int]] = []
    prose: list[str] = []
    item: list[str] | None = None

    def flush() -> None:
        nonlocal item
        if prose:
            blocks.append(("prose", " ".join(prose), 0))
            prose.clear()
        if item:
            blocks.append(("item", " ".join(item), 0))
        item = None

    for raw in text.split("\n"):
        line = raw
        while _QUOTE.match(line):
            line = _QUOTE.sub("", line, count=1)
        if _HEADING.match(line):
            flush()
            level = len(line.strip()) - len(line.strip().lstrip("#"))
            blocks.append(("heading", _inline(_HEADING.sub("", line).strip(" #")), level))
            continue
        if not line.strip() or _RULE.match(line) or _TABLE_RULE.match(line):
            flush()
            continue
        row = _TABLE_ROW.match(line)
        if row:
            flush()
            cells = [cell.strip() for cell in row.group(1).split("|") if cell.strip()]
            blocks.append(("item", "; ".join(cells), 0))
            continue
        bullet = _LIST_ITEM.match(line)
        if bullet:
            flush()
            item = [bullet.group(1).strip()]
        elif item is not None:
            item.append(line.strip())  # a lazy continuation of the list item
        else:
            prose.append(line.strip())
    flush()
    return [("group", block, level) if kind == "heading" and index + 1 < len(blocks)
            and blocks[index + 1][0] == "heading" and blocks[index + 1][2] > level
            else (kind, block, level) for index, (kind, block, level) in enumerate(blocks)]


def _quotable(text: str) -> bool:
    if is_boilerplate(text) or not re.search(r"[A-Za-z]", text):
        return False
    return len(text.split()) >= 3 or bool(re.search(r"\d", text))


def _source_units(index: int, source: SourceText) -> list[_Unit]:
    return [_Unit(index, *fields) for fields in _parsed(source.text)]


@functools.lru_cache(maxsize=2048)  # the same passages come back for many questions
def _parsed(text: str) -> tuple[tuple, ...]:
    """A source's units, in order, as the `_Unit` fields that follow `source`. A pure
    function of the text, so each passage is parsed once per process."""
    units: list[tuple] = []
    paragraphs: list[int] = []
    intro: str | None = None
    heading = group = ""
    group_level = 0
    blocks = _blocks(text)
    for block_index, (kind, block, level) in enumerate(blocks):
        if kind in ("heading", "group"):
            if level <= group_level:
                group, group_level = "", 0
            if kind == "group":
                group, group_level = block, level
            heading, intro = block, None
            continue
        if kind == "item":
            pieces = [_inline(block)]
        else:
            intro = None
            pieces = [_inline(sentence) for sentence in split_sentences(block)]
            next_is_item = block_index + 1 < len(blocks) and blocks[block_index + 1][0] == "item"
            if pieces and next_is_item:
                # "The report should include:" is rendered together with its items; a bare
                # "Consider:" takes the sentence before it, which says what the list is for.
                # A paragraph's last sentence introduces the list right after it whatever it
                # ends with ("... using the criteria below.").
                if (pieces[-1].endswith(":") and len(pieces) > 1
                        and len(pieces[-1].split()) < SHORT_INTRO_WORDS):
                    pieces[-2:] = [f"{pieces[-2]} {pieces[-1]}"]
                elif not pieces[-1].endswith(":"):
                    # "... using the criteria below. If an incident sits between two levels,
                    # choose the higher one.": the list belongs to the sentence pointing at it.
                    pointing = [i for i, piece in enumerate(pieces[:-1])
                                if _POINTS_AT_LIST.search(piece)]
                    if pointing:
                        pieces[pointing[-1]:] = [" ".join(pieces[pointing[-1]:])]
                intro = pieces[-1]
        for piece_index, piece in enumerate(pieces):
            if not _quotable(piece):
                continue
            item_intro = intro if kind == "item" else None
            opens_list = kind == "prose" and intro is not None and piece_index == len(pieces) - 1
            units.append((
                len(units), piece, item_intro, opens_list, frozenset(terms(piece)),
                frozenset(terms(item_intro)) if item_intro else frozenset(),
                len(piece.split()), is_imperative(piece) or bool(_OBLIGATION.search(piece)),
                heading, group,
            ))
            paragraphs.append(block_index)
    sizes: Counter[str] = Counter()
    for fields in units:
        sizes[fields[-1]] += fields[6]
    return tuple((*fields, bool(fields[-1]) and sizes[fields[-1]] <= GROUP_WORDS, paragraph)
                 for fields, paragraph in zip(units, paragraphs))


def _list_key(unit: _Unit) -> str | None:
    """The introduction shared by a list's items and the sentence opening it."""
    return unit.text if unit.opens_list else unit.intro


def _unit_key(unit: _Unit) -> str | None:
    """What a unit is selected with: the subsections of a short group together ("5.1
    Email ..." to "5.4 Company Laptops" under "5. What We Monitor"), else its list."""
    return f"\N{SECTION SIGN} {unit.group}" if unit.grouped else _list_key(unit)


# --- Scoring and selection ----------------------------------------------------------------


def _previous_question(history: list[Turn], question: str) -> str:
    for turn in reversed(history):
        if turn.sender == "user" and turn.content.strip() != question.strip():
            return turn.content
    return ""


def _query_weights(request: GenerationRequest) -> dict[str, float]:
    """Stemmed question terms with their weights; a short follow-up ("and how often?")
    borrows the previous user question's terms at a lower weight."""
    weights = {term: 1.0 for term in terms(request.question)}
    if len(weights) < FOLLOW_UP_TERMS:
        for term in terms(_previous_question(request.history, request.question)):
            weights.setdefault(term, HISTORY_WEIGHT)
    return weights


def _idf(units: list[_Unit]) -> dict[str, float]:
    """Words found in every candidate sentence say little about which one answers."""
    counts: Counter[str] = Counter()
    for unit in units:
        counts.update(unit.terms | unit.intro_terms)
    return {term: math.log(1 + len(units) / count) for term, count in counts.items()}


def _embedded_text(unit: _Unit) -> str:
    """What a unit is embedded as: a list item (or introduction) with its introduction."""
    key = _list_key(unit)
    return f"{key} {unit.text}" if key else unit.text


def _embedded(queries: list[str], units: list[_Unit], most: int):
    """The vectors of `queries` then of `units` (one row each), or None when embeddings are
    off or unavailable, or there are no units or more than `most` (vectors are remembered
    per text, so recurring sentences cost nothing)."""
    if not units or len(units) > most or not embeddings.enabled():
        return None
    try:
        return embeddings.embed_texts([*queries, *map(_embedded_text, units)])
    except embeddings.EmbeddingsUnavailable:
        return None


def _sentence_cosines(question: str, units: list[_Unit]) -> dict[_Unit, float]:
    """Cosine of each unit of the nearest sections to the question, when embeddings are on."""
    vectors = _embedded([question], units, MAX_SENTENCES_EMBEDDED)
    if vectors is None:
        return {}
    return {unit: float(vectors[i + 1] @ vectors[0]) for i, unit in enumerate(units)}


def _meaning(request: GenerationRequest, units: list[_Unit]) -> dict[_Unit, float]:
    """Overlap points each unit earns for its closeness in meaning to the whole question:
    its section's (only the sections nearest the question count: cosines of sections on one
    topic sit close together, and a boost for all of them drowns the words that tell them
    apart) and, inside those sections, its own. A section that answers in other words
    ("respond within one month" under "Deadlines" for "how long do we have to reply?") gets
    its sentences considered. Computed once per answer: every part of the question shares it."""
    relevance = [dict(source.relevance) for source in request.sources]
    floor = max((c for r in relevance for c in r.values()), default=1.0) - MEANING_MARGIN
    near = [u for u in units if relevance[u.source].get(u.heading, -1.0) >= floor]
    sentences = _sentence_cosines(request.question, near)
    return {unit: MEANING_WEIGHT * max(0.0, relevance[unit.source].get(unit.heading, 0.0) - floor)
            + SENTENCE_WEIGHT * max(0.0, sentences.get(unit, 0.0) - SENTENCE_FLOOR)
            for unit in units}


def _scores(request: GenerationRequest, units: list[_Unit], weights: dict[str, float],
            idf: dict[str, float], meaning: dict[_Unit, float],
            favoured: str | None = None) -> dict[_Unit, float]:
    """Each unit's relevance to the question (`weights`). With `favoured` (a document title,
    _favoured_document()), the units of other documents count for FAVOURED_DAMP of theirs."""
    quantity_question = bool(_QUANTITY_QUESTION.search(request.question))
    list_question = bool(_LIST_QUESTION.search(request.question))
    compliance = request.mode != "advisory"
    count = max(1, len(request.sources))
    heading_terms: dict[tuple[int, str | None], frozenset[str]] = {}
    scores: dict[_Unit, float] = {}
    for unit in units:
        source_key = (unit.source, None)
        if source_key not in heading_terms:
            heading_terms[source_key] = frozenset(terms(request.sources[unit.source].title))
        title = heading_terms[source_key]
        own = sum(w * idf.get(t, 0.0) * (TITLE_WEIGHT if t in title else 1.0)
                  for t, w in weights.items() if t in unit.terms)
        borrowed = sum(
            w * idf.get(t, 0.0) * (TITLE_WEIGHT if t in title else 1.0)
            for t, w in weights.items()
            if t in unit.intro_terms and t not in unit.terms
        )
        key = (unit.source, unit.heading)
        if key not in heading_terms:
            source = request.sources[unit.source]
            heading_terms[key] = frozenset(terms(f"{unit.group} {unit.heading or source.section}"))
        overlap = own + 0.5 * borrowed + meaning[unit]
        if overlap <= 0:
            scores[unit] = 0.0
            continue
        # Long sentences match more words by sheer length; damp that gently.
        score = overlap / (1 + max(0, unit.words - 25) / 50)
        score += RANK_BONUS * (1 - unit.source / count)
        named = (heading_terms[key] | heading_terms[source_key]) & weights.keys()
        score += min(3, len(named)) * SECTION_BONUS
        if quantity_question and _QUANTITY.search(unit.text):
            score += QUANTITY_BONUS
        if compliance and _OBLIGATION.search(unit.text):
            score += OBLIGATION_BONUS
        if list_question and _unit_key(unit) is not None:
            score += LIST_BONUS
        if favoured is not None and request.sources[unit.source].title != favoured:
            score *= FAVOURED_DAMP
        scores[unit] = score
    return scores


# "How quickly must we notify, and what must the notice contain?": each part gets an answer.
# A question word may follow a preposition: "..., and for how long?", "..., and by when?".
_ASKING_PREPOSITIONS = ("by", "for", "at", "in", "to", "from", "until", "within", "under", "on")
_ASKING = r"(?:(?:" + "|".join(_ASKING_PREPOSITIONS) + r")\s+)?"
_PART_BREAK = re.compile(
    r"\?\s*|[;,]?\s+(?:and|or|also|plus)\s+(?=" + _ASKING + r"(?:how|what|who|whom|when|which|"
    r"where|whether|do|does|is|are|must|should|can|to what)\b)|,\s+(?=" + _ASKING
    + r"(?:how|what|who|whom|when|which|where|whether)\b)", re.I)
# "..., and if our CRO keeps the file, who is responsible for it?": the condition opens the
# next question.
_CONDITION_BREAK = re.compile(
    r"[;,]\s+(?:and|but)\s+(?=(?:if|once|when|where|after|before|while)\b)", re.I)
_CLAUSE = re.compile(r"[.:!,;()]+\s*|\s[-–—]\s")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_QUESTION_WORDS = frozenset("how what who whom whose which where whether why".split())
_AUXILIARIES = frozenset("do does did is are was were can could must should shall will would may "
                         "might has have had".split())
_LEADING = frozenset("and but also plus or so then".split())
_PREPOSITIONS = frozenset(_ASKING_PREPOSITIONS) | {"of", "with"}
MIN_PART_TERMS = 1


def _asks(text: str) -> bool:
    """Whether a clause of `text` is a question: it opens with a question word or an
    auxiliary ("how often ...", "do we ...", "by when ...", "when is ..."), or has a
    question word followed by an auxiliary ("once it ends, what do we ...")."""
    for clause in _CLAUSE.split(text):
        words = _WORD.findall(clause.lower())
        while words and words[0] in _LEADING:
            words = words[1:]
        if words and words[0] in _PREPOSITIONS:
            words = words[1:]
        if not words:
            continue
        first = words[0].split("'")[0]
        if (first in _QUESTION_WORDS or first in _AUXILIARIES
                or (first == "when" and words[1:2] and words[1] in _AUXILIARIES)):
            return True
        if any(word in _QUESTION_WORDS and _AUXILIARIES & set(words[i + 1:i + 3])
               for i, word in enumerate(words)):
            return True
    return False


def question_parts(question: str) -> list[str]:
    """The questions inside a question; one part when it asks one thing. A clause after the
    first part that asks nothing ("and if our CRO keeps the file") is the condition of the
    question after it and joins it. The first part keeps its own place even when it only sets
    the scene ("After a ransomware attack, ..."): joined to the part after it, the evaluation
    set's answers held fewer of their facts (docs/benchmarks.md)."""
    pieces = [piece.strip(" ,;") for part in _PART_BREAK.split(question)
              for piece in _CONDITION_BREAK.split(part)]
    pieces = [piece for piece in pieces if piece]
    parts: list[str] = []
    condition = ""
    for index, piece in enumerate(pieces):
        piece = f"{condition}, {piece}" if condition else piece
        condition = ""
        if 0 < index < len(pieces) - 1 and not _asks(piece):
            condition = piece
        else:
            parts.append(piece)
    parts = [part for part in parts if len(terms(part)) >= MIN_PART_TERMS]
    return parts if len(parts) > 1 else [question]


def question_queries(question: str, parts: list[str] | None = None) -> list[str]:
    """The question, then each of its parts when it has several (`parts`, question_parts(),
    computed when not given): what a sentence answering it in other words is compared with."""
    parts = question_parts(question) if parts is None else parts
    return [question, *parts] if len(parts) > 1 else [question]


_SENTENCE_BREAK = re.compile(r"(?<=[.!])\s+(?=[A-Z])")


def asking_sentences(part: str) -> str | None:
    """The sentences of a part that ask, when the part also holds sentences that only set the
    scene ("Our assessment of sending data to an overseas vendor flagged that the local
    authorities could get at it. What extra protections can we add"); None otherwise."""
    sentences = _SENTENCE_BREAK.split(part.strip())
    asking = [s for s in sentences if s.rstrip().endswith("?") or _asks(s)]
    return " ".join(asking) if asking and len(asking) < len(sentences) else None


def _part_cosines(parts: list[str], units: list[_Unit]) -> list[dict[_Unit, float]]:
    """Each part's cosine to every unit, when embeddings are on: a part is a question of its
    own, and the sentence answering it ("Retain ... records for the life of the equipment plus
    five years" for "how long must the paperwork be kept?") often shares no word with it and
    sits in a section far from the whole question in meaning. A part that opens with a scene
    is also compared by its asking sentences alone (asking_sentences()), and the nearer of the
    two counts: the scene's words otherwise pull its meaning toward sentences about the scene
    (the transfer assessment's factors, not the protections to add)."""
    queries, columns = list(parts), []  # each part's asking sentences' column, if any
    for part in parts:
        asking = asking_sentences(part)
        columns.append(None if asking is None else len(queries))
        if asking is not None:
            queries.append(asking)
    vectors = _embedded(queries, units, MAX_PART_SENTENCES)
    if vectors is None:
        return []
    products = vectors[len(queries):] @ vectors[:len(queries)].T
    return [{unit: float(products[i, index] if column is None
                         else max(products[i, index], products[i, column]))
             for i, unit in enumerate(units)}
            for index, column in enumerate(columns)]


def _part_leaders(request: GenerationRequest, parts: list[str], units: list[_Unit],
                  scores: dict[_Unit, float], idf: dict[str, float],
                  meaning: dict[_Unit, float], favoured: str | None = None) -> list[_Unit]:
    """For a several-part question (`parts`, question_parts()), the unit answering each part
    best (parts scored on their own words and their own closeness in meaning to each unit,
    _part_cosines(); ties broken by the whole question's score)."""
    if len(parts) < 2:
        return []
    leaders: list[_Unit] = []
    closeness = _part_cosines(parts, units)
    for index, part in enumerate(parts):
        weights = {term: 1.0 for term in terms(part)}
        part_meaning = meaning
        if closeness:
            part_meaning = {unit: value + PART_SENTENCE_WEIGHT
                            * max(0.0, closeness[index][unit] - SENTENCE_FLOOR)
                            for unit, value in meaning.items()}
        part_scores = _scores(request, units, weights, idf, part_meaning, favoured)
        # Another part's answer does not answer this one again.
        best = max((u for u in units if u not in leaders),
                   key=lambda u: (part_scores[u], scores[u], -u.source, -u.position), default=None)
        if best is not None and part_scores[best] > 0:
            leaders.append(best)
    return leaders


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
    include ..."), and the one that matched the question's words is rarely all of it."""
    paragraph = [u for u in units if u.source == unit.source and u.paragraph == unit.paragraph
                 and u.intro is None and not u.opens_list]
    if len(paragraph) > 1 and sum(u.words for u in paragraph) <= PARAGRAPH_WORDS:
        return paragraph
    return []


def _quoted_with(unit: _Unit, units: list[_Unit], section: list[_Unit] | None
                 ) -> list[tuple[list[_Unit], bool]]:
    """What a chosen unit is quoted with, as (units, whether they close its section to
    further picks), the first that fits the budget taken: `section` when given (the lead
    section); the subsections of its short group; its short section, or else just the list
    it belongs to ("Adopt clear timing standards ...:" and its four deadlines, when the
    section's closing sentences would take it over the budget); its list; its short
    paragraph; itself."""
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


# --- Rendering ----------------------------------------------------------------------------


def _cite(text: str, number: int) -> str:
    """The sentence with its marker before the final full stop: "... 30 days [2]."."""
    body = text.rstrip().rstrip(".;,:").rstrip()
    if body.endswith(("?", "!")):
        return f"{body} [{number}]"
    return f"{body} [{number}]."


def _standalone(unit: _Unit) -> str:
    """A list item that starts mid-sentence ("the objectives and ...") needs its intro."""
    if unit.intro and unit.text[:1].islower():
        return f"{unit.intro} {unit.text}"
    return unit.text


def _runs(units: list[_Unit]) -> list[tuple[str, list[str]]]:
    """Pieces to cite, as (sentence, list items): a list's items stay with their
    introduction."""
    pieces: list[tuple[str, list[str]]] = []
    index = 0
    while index < len(units):
        unit = units[index]
        key = _list_key(unit)
        if key is None:
            pieces.append((unit.text, []))
            index += 1
            continue
        index += 1 if unit.opens_list else 0
        items = []
        while index < len(units) and units[index].intro == key:
            items.append(units[index].text.rstrip(" .;,"))
            index += 1
        pieces.append((key, items))
    return pieces


def _heading(source: SourceText, heading: str = "", *, with_title: bool = True) -> str:
    """"Title — Section"; a further section of a document already named is just "Section"."""
    title = _inline(source.title) or "Untitled source"
    section = _inline(heading or source.section)
    if not section or section.lower() == title.lower():
        label = title
    else:
        label = f"{title} — {section}" if with_title else section
    if source.page is not None:
        label += f" (p. {source.page})"
    return f"**{label}**"


def _quote(sentence: str, items: list[str], number: int, mode: str) -> str:
    if not items:
        return _cite(sentence, number)
    if mode == "advisory":  # prose: "The report should include: a; b; c [1]."
        return _cite(f"{sentence} {'; '.join(items)}", number)
    lines = [sentence.rstrip()] + [f"  - {item};" for item in items[:-1]]
    return "\n".join([*lines, f"  - {_cite(items[-1], number)}"])


def _lead_order(sources: list[SourceText], chosen: list[_Unit], scores: dict[_Unit, float]
                ) -> list[int]:
    """Source indexes, those of the document whose quoted sentences score best first: the
    answer leads with the document that answers, not with the one retrieval ranked first."""
    weight: Counter[str] = Counter()
    for unit in chosen:
        weight[sources[unit.source].title] += scores.get(unit, 0.0)
    return sorted(range(len(sources)), key=lambda i: (-weight[sources[i].title], i))


def _source_blocks(sources: list[SourceText], chosen: list[_Unit], mode: str,
                   order: list[int] | None = None) -> list[str]:
    """Per source (in `order`), per heading inside it (a source widened to its neighbouring
    sections quotes each under its own heading), the chosen sentences in document order."""
    blocks = []
    titled: set[str] = set()  # documents already named in a heading
    for index in (range(len(sources)) if order is None else order):
        source = sources[index]
        units = sorted((u for u in chosen if u.source == index), key=lambda u: u.position)
        for heading, group in groupby(units, key=lambda u: u.heading):
            cited = [_quote(text, items, source.number, mode) for text, items in _runs(list(group))]
            if mode == "advisory":
                body = " ".join(cited)  # interpretive guidance reads as prose
            else:
                body = "\n".join(f"- {sentence}" for sentence in cited)  # each rule quoted
            label = _heading(source, heading, with_title=source.title not in titled)
            titled.add(source.title)
            blocks.append(f"{label}\n{body}")
    return blocks


def _lead(sources: list[SourceText], chosen: list[_Unit], mode: str, matched: bool) -> str:
    """One sentence before the quotes. It names the documents quoted, never a paraphrase of
    the question: a rephrased question reads badly as often as not ("what the guidance says
    about the regulator and to customers"), and a follow-up would repeat the earlier one."""
    if not matched:
        return ("None of the retrieved passages answers this directly; the closest source "
                "opens as follows.")
    cited = sorted({unit.source for unit in chosen})
    titles = list(dict.fromkeys(_inline(sources[i].title) for i in cited))
    count = len(cited)
    quoted = f"{count} source{'s' if count != 1 else ''}"
    if len(titles) == 1 and titles[0]:
        guidance = document_name(titles[0])
    else:
        guidance = "the cited guidance"
        quoted += f" in {len(titles)} documents" if len(titles) > 1 else ""
    if mode == "advisory":
        return (f"Here is how {guidance} bears on this, drawn from {quoted}, with practical "
                "steps at the end.")
    return f"Here is what {guidance} says on this, quoted from {quoted}."


NO_SOURCES_TEXT = (
    "No passage in the selected library covers this question, so there is nothing to quote "
    "or cite. Try rephrasing it, naming the specific rule or process, or widening the "
    "knowledge scope."
)


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
    mode = "advisory" if request.mode == "advisory" else "compliance"
    units = [
        unit
        for index, source in enumerate(request.sources)
        for unit in _source_units(index, source)
    ]
    if not units:
        return NO_SOURCES_TEXT
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
    return text


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
            from assistant.comparing import compose_comparison  # it builds on this module

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
