"""How relevant each unit is to the question: the question's words it holds (weighted by how
rare they are among the candidates), its closeness in meaning (its section's and its own),
and small bonuses (source rank, a matching heading, a list for a list question, a number for
"how long")."""

from __future__ import annotations

import math
import re
from collections import Counter

from assistant.providers.base import GenerationRequest, Turn
from assistant.providers.extractive.units import _OBLIGATION, _list_key, _Unit, _unit_key
from knowledge import embeddings
from knowledge.text import terms

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
FOLLOW_UP_TERMS = 3  # a question with fewer content terms than this is a follow-up
# The other documents' share of their scores when another one is favoured by meaning
# (_favoured_document() in the package's __init__).
FAVOURED_DAMP = 0.5


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
