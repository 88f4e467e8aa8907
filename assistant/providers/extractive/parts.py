"""Several questions in one: the parts of a question ("how quickly ..., and what must it
contain?"), and the unit that answers each part best, on its own words and its own
closeness in meaning."""

from __future__ import annotations

import re

from assistant.providers.base import GenerationRequest
from assistant.providers.extractive.scoring import SENTENCE_FLOOR, _embedded, _scores
from assistant.providers.extractive.units import _Unit
from knowledge.text import terms

PART_SENTENCE_WEIGHT = 30.0  # a part's own cosine to a sentence, above SENTENCE_FLOOR
MAX_PART_SENTENCES = 200  # more candidate sentences than this: parts go by their words alone


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
