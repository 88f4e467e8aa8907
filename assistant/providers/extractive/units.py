"""A source parsed into the units an extractive answer quotes: sentences of prose, list items
and table rows, each with the heading it sits under, the list it belongs to and the paragraph
it comes from."""

from __future__ import annotations

import functools
import re
from collections import Counter
from typing import NamedTuple

from assistant.providers.base import SourceText
from assistant.suggestions import is_imperative
from knowledge.boilerplate import is_boilerplate
from knowledge.chunking import split_sentences
from knowledge.parsing.common import LETTERED
from knowledge.text import terms

# Markdown noise.
_HEADING = re.compile(r"^\s{0,3}#{1,6}(?:\s|$)")
_RULE = re.compile(r"^\s*(?:[-*_=]\s*){3,}$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_TABLE_ROW = re.compile(r"^\s*\|(.+)\|\s*$")
_LIST_ITEM = re.compile(rf"^\s*(?:[-*+•]|\d{{1,3}}[.)]|{LETTERED})\s+(.*)$")
_QUOTE = re.compile(r"^\s*>\s?")
_LINK = re.compile(r"\[([^\]\n]+)\]\([^)\n]*\)")
# Bracketed numbers in a source would read as our citation markers and point nowhere.
_BRACKET_NUMBER = re.compile(r"\[\s*\d[\d,;\s–-]*\]")
_EMPHASIS = re.compile(r"\*\*|__|`")
_SINGLE_EMPHASIS = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")

# An obligation ("... must ..."): a directive for "What to do", and worth more in compliance mode.
_OBLIGATION = re.compile(
    r"\b(?:must|should|shall|(?:is|are) required to|(?:need|needs) to|(?:is|are) expected to)\b",
    re.I,
)

SHORT_INTRO_WORDS = 4
_POINTS_AT_LIST = re.compile(r"\b(?:below|the following|as follows)\b", re.I)
GROUP_WORDS = 180  # subsections of a text-less heading up to this length are one unit


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
    paragraph: int  # the block of the source it comes from (a paragraph, or a list item)
    heading: str  # the heading inside the source it sits under ("" for the source's own)
    group: str  # the text-less heading over `heading` ("5. What We Monitor"), or ""
    grouped: bool  # its group is short enough to be quoted as one unit (GROUP_WORDS)


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
                block_index, heading, group,
            ))
    sizes: Counter[str] = Counter()
    for fields in units:
        sizes[fields[-1]] += fields[6]
    return tuple((*fields, bool(fields[-1]) and sizes[fields[-1]] <= GROUP_WORDS)
                 for fields in units)


def _list_key(unit: _Unit) -> str | None:
    """The introduction shared by a list's items and the sentence opening it."""
    return unit.text if unit.opens_list else unit.intro


def _unit_key(unit: _Unit) -> str | None:
    """What a unit is selected with: the subsections of a short group together ("5.1
    Email ..." to "5.4 Company Laptops" under "5. What We Monitor"), else its list."""
    return f"\N{SECTION SIGN} {unit.group}" if unit.grouped else _list_key(unit)
