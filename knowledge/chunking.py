"""Parsed blocks -> retrieval chunks made of whole sentences.

Chunks are sized in words (a cheap, tokenizer-independent proxy for tokens), never mix two
sections (a citation names one section), and consecutive chunks of a section share a few
trailing sentences so a fact split across a boundary is still retrievable with its context.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby

from knowledge.boilerplate import is_boilerplate
from knowledge.parsing import Block
from knowledge.parsing.common import LIST_ITEM, LIST_MARKER

# A trailing piece this small says too little on its own; it joins the chunk before it.
TAIL_MERGE_WORDS = 60


@dataclass(frozen=True)
class ChunkDraft:
    ordinal: int
    text: str
    section: str
    page: int | None
    token_count: int
    path: tuple[str, ...] = ()  # the headings the chunk sits under, outermost first


# Lowercased tokens (with their final period) after which a period does not end a sentence.
_ABBREVIATIONS = frozenset(
    """
    e.g. i.e. cf. vs. viz. approx. ca. al. resp. incl. excl. esp.
    dr. mr. mrs. ms. prof. sr. jr. st. mt. rev. gen. col. capt. lt. sgt. hon.
    no. nos. nr. art. arts. sec. secs. ch. chap. para. paras. fig. figs. vol. vols. pp. p.
    ed. eds. op. ref. refs. tab. app. annex. cl. reg. regs. dept. div. est. min. max.
    inc. ltd. co. corp. llc. plc. bros.
    jan. feb. mar. apr. jun. jul. aug. sep. sept. oct. nov. dec.
    u.s. u.k. u.n. e.u. a.m. p.m.
    """.split()
)
# Candidate boundary: terminal punctuation, optional closing quotes/brackets, whitespace.
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*(\s+)")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# A new list item on its own line starts a new sentence even without punctuation before it.
_LIST_ITEM_LINE = re.compile(rf"\n[ \t]*(?={LIST_MARKER}[ \t]+\S)")
_OPENERS = "\"'“‘([¿¡"
# Enumerator such as '1.' or '4.2.' at the start of a line: a list number, not a sentence.
_ENUMERATOR = re.compile(r"^(?:\d+(?:\.\d+)*|[A-Za-z]|[ivxlcdm]+)\.$", re.I)
_INITIALS = re.compile(r"^(?:[A-Za-z]\.){2,}$")
_H_SPACE = re.compile(r"[ \t\f\v\r\u00a0]+")


def _normalise(text: str) -> str:
    """Collapse runs of spaces; keep single line breaks (list items, code) readable."""
    lines = [_H_SPACE.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def _ends_sentence(text: str, end: int, next_start: int) -> bool:
    """Whether the punctuation run ending at `end` (exclusive) closes a sentence."""
    following = text[next_start : next_start + 1]
    if not following:
        return True
    if not (following.isupper() or following.isdigit() or following in _OPENERS):
        # A lowercase continuation ('approx. three', 'Fig. 2 shows') is the same sentence.
        return False
    punct_at = end - 1
    while punct_at > 0 and text[punct_at] in "\"'”’)]":
        punct_at -= 1
    if text[punct_at] != ".":
        return True
    token_start = max(text.rfind(c, 0, punct_at) for c in " \n\t") + 1
    token = text[token_start : punct_at + 1].lstrip(_OPENERS)
    if token.lower() in _ABBREVIATIONS or _INITIALS.match(token):
        return False
    if len(token) == 2 and token[0].isupper():
        return False  # an initial: 'J. Smith'
    at_line_start = token_start == 0 or text[token_start - 1] == "\n"
    return not (at_line_start and _ENUMERATOR.match(token))


def _split_paragraph(paragraph: str) -> Iterator[str]:
    start = 0
    for match in _BOUNDARY.finditer(paragraph):
        whitespace_start, next_start = match.span(1)
        if _ends_sentence(paragraph, whitespace_start, next_start):
            piece = paragraph[start:whitespace_start]
            if piece.strip():
                yield piece
            start = next_start
    if paragraph[start:].strip():
        yield paragraph[start:]


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences with regexes; abbreviations and numbers like 2.5 or 4.2.1
    do not end a sentence. Blank lines and new list-item lines always do."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        for item in _LIST_ITEM_LINE.split(paragraph):
            for sentence in _split_paragraph(item):
                normalised = _normalise(sentence)
                if normalised:
                    sentences.append(normalised)
    return sentences


@dataclass(frozen=True)
class _Unit:
    """One sentence (or, for an over-long sentence, one max_words piece of it)."""

    text: str
    words: int
    page: int | None
    block: int
    whole: bool


def _units(blocks: list[tuple[int, Block]], max_words: int) -> list[_Unit]:
    units: list[_Unit] = []
    for block_index, block in blocks:
        for sentence in split_sentences(block.text):
            words = sentence.split()
            if len(words) <= max_words:
                units.append(_Unit(sentence, len(words), block.page, block_index, True))
                continue
            for start in range(0, len(words), max_words):
                piece = words[start : start + max_words]
                units.append(_Unit(" ".join(piece), len(piece), block.page, block_index, False))
    return units


def _join(units: list[_Unit]) -> str:
    parts: list[str] = []
    for previous, unit in zip([None, *units], units):
        if previous is not None:
            if previous.block != unit.block:
                parts.append("\n\n")
            elif unit.text[:1] in "-*+•" or LIST_ITEM.match(unit.text):
                parts.append("\n")
            else:
                parts.append(" ")
        parts.append(unit.text)
    return "".join(parts)


def _overlap(units: list[_Unit], overlap_words: int) -> list[_Unit]:
    """The trailing whole sentences of a chunk totalling at most overlap_words."""
    taken: list[_Unit] = []
    total = 0
    for unit in reversed(units):
        if not unit.whole or total + unit.words > overlap_words:
            break
        taken.append(unit)
        total += unit.words
    return taken[::-1]


@dataclass
class _Draft:
    units: list[_Unit]
    fresh: int  # how many leading units are overlap copied from the previous chunk

    @property
    def words(self) -> int:
        return sum(unit.words for unit in self.units)

    @property
    def new_words(self) -> int:
        return sum(unit.words for unit in self.units[self.fresh :])


def _section_drafts(
    units: list[_Unit], *, target_words: int, max_words: int, overlap_words: int
) -> list[list[_Unit]]:
    drafts: list[_Draft] = []
    current = _Draft([], 0)
    carry: list[_Unit] = []

    for unit in units:
        if current.units and current.words + unit.words > max_words and current.new_words:
            drafts.append(current)
            carry = _overlap(current.units, overlap_words)
            current = _Draft([], 0)
        if not current.units and carry:
            # The overlap never costs the chunk its new sentence: shrink it to make room.
            while carry and sum(u.words for u in carry) + unit.words > max_words:
                carry = carry[1:]
            current = _Draft(list(carry), len(carry))
            carry = []
        current.units.append(unit)
        if current.words >= target_words:
            drafts.append(current)
            carry = _overlap(current.units, overlap_words)
            current = _Draft([], 0)
    if current.units and current.new_words:
        tail = current
        if (
            drafts
            and tail.new_words < TAIL_MERGE_WORDS
            and drafts[-1].words + tail.new_words <= max_words
        ):
            drafts[-1].units.extend(tail.units[tail.fresh :])
        else:
            drafts.append(tail)
    return [draft.units for draft in drafts]


def chunk_blocks(
    blocks: Iterable[Block],
    *,
    target_words: int = 300,
    max_words: int = 400,
    min_words: int = 200,
    overlap_words: int = 40,
) -> list[ChunkDraft]:
    """Group blocks' sentences into chunks of about target_words (never above max_words).

    min_words is the size a chunk normally reaches before a section ends; the last piece of
    a section may be smaller, since chunks never cross sections.
    """
    if not 0 < min_words <= target_words <= max_words:
        raise ValueError("Expected 0 < min_words <= target_words <= max_words.")
    if not 0 <= overlap_words < min_words:
        raise ValueError("Expected 0 <= overlap_words < min_words.")

    chunks: list[ChunkDraft] = []
    indexed = [(index, block) for index, block in enumerate(blocks)
               if block.text.strip() and not is_boilerplate(block.text, block.section)]
    # Two subsections may share a heading ("Scope") under different parents: the whole path
    # tells sections apart.
    for (section, path), group in groupby(indexed,
                                          key=lambda pair: (pair[1].section, pair[1].path)):
        units = _units(list(group), max_words)
        for chunk_units in _section_drafts(
            units, target_words=target_words, max_words=max_words, overlap_words=overlap_words
        ):
            text = _join(chunk_units)
            chunks.append(
                ChunkDraft(
                    ordinal=len(chunks),
                    text=text,
                    section=section,
                    page=chunk_units[0].page,
                    token_count=len(text.split()),
                    path=path,
                )
            )
    return chunks
