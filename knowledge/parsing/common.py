"""What every format shares: the result types, the errors, whitespace and heading shapes,
and the outline that turns headings into each block's section and path."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

KINDS: dict[str, str] = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "markdown": "text/markdown",
    "text": "text/plain",
    "html": "text/html",
}
ACCEPTED = "PDF, DOCX, Markdown, plain text, HTML"

logger = logging.getLogger("egret.knowledge")


class ParseError(Exception):
    """Message is shown to users as the document's `error`: a readable sentence."""


class UnsupportedType(ParseError):
    """Message names the detected type, e.g. 'Unsupported file type: image/png. Accepted: ...'."""

    def __init__(self, mime: str) -> None:
        self.mime = mime
        super().__init__(f"Unsupported file type: {mime}. Accepted: {ACCEPTED}.")


class UnsafeFile(ParseError):
    """A file we refuse at upload time (zip bomb, PDF with JavaScript, ...)."""


@dataclass(frozen=True)
class Block:
    """A paragraph-sized piece of text and where it sits in the document.

    `path` is the trail of headings enclosing the block, outermost first (the document's top
    heading, H1 or title, included when there is one); `section` is its innermost heading,
    `path[-1]`, or "" before the first heading.
    """

    text: str
    section: str
    page: int | None
    path: tuple[str, ...] = ()


@dataclass
class Parsed:
    kind: str
    blocks: list[Block]
    page_count: int | None
    title: str | None


# ----------------------------------------------------------------------------- whitespace

_WS = re.compile(r"\s+")
# Horizontal whitespace only: runs inside one line, newlines kept.
WS_H = re.compile(r"[ \t\f\v]+")
# Items enumerated as legal and procedural text does: "(a)", "b)", "(A)", "(iv)", "(2)".
LETTERED = r"\(?[a-z]\)|\([A-Z]\)|\((?:[ivx]{2,4}|\d{1,3})\)"
# The marker of a bulleted, numbered or lettered list item.
LIST_MARKER = rf"(?:[-*+•]|\d+[.)]|{LETTERED})"
# A list item; such lines are kept on their own line when unwrapping.
LIST_ITEM = re.compile(rf"^\s*{LIST_MARKER}\s+")


def clean(text: str) -> str:
    return _WS.sub(" ", text).strip()


# ------------------------------------------------------------------------- heading shapes

SMALL_WORDS = frozenset(
    "a an and as at but by de for from in into nor of on or per the to up via vs with".split()
)
NUMBERED_HEADING = re.compile(
    r"^(?:(?:section|article|chapter|part|annex|appendix)\s+)?"
    r"(?:\d+(?:\.\d+)*\.?|[A-Z]\.|[IVXLC]+\.)\s+(?P<rest>\S.*)$",
    re.I,
)
# A heading's number and how deep it puts the heading: '4 Scope', '4.2. Labels', 'IV. Audit',
# 'A. Forms'; after a label ('Section 4', 'Article 4.2', 'Part II', 'Annex B') the number may
# end the line.
_HEADING_NUMBER = re.compile(
    r"^(?P<number>\d+(?:\.\d+)*\.?|[A-Z]\.|[IVXLC]+\.)(?=\s|$)"
    r"|^(?:section|article|chapter|part|annex|appendix)\s+"
    r"(?P<labelled>\d+(?:\.\d+)*|[IVXLC]+|[A-Z])\.?(?=\s|$)",
    re.I,
)
PAGE_NUMBER_LINE = re.compile(r"^(?:page\s+)?\d+(?:\s*(?:of|/)\s*\d+)?$", re.I)


def is_title_case(line: str) -> bool:
    words = [w.strip("()[]\"'“”‘’,:-–—&/") for w in line.split()]
    words = [w for w in words if w]
    if not words or len(words) > 14:
        return False
    alpha = [w for w in words if any(c.isalpha() for c in w)]
    if not alpha:
        return False
    for index, word in enumerate(words):
        first = word[0]
        if not first.isalpha():
            continue
        if first.isupper():
            continue
        if index > 0 and word.lower() in SMALL_WORDS:
            continue
        return False
    return True


def is_all_caps(line: str) -> bool:
    letters = [c for c in line if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def heading_candidate(line: str) -> bool:
    """A short line shaped like a heading; context (what follows) is judged by the caller."""
    if not line or len(line) > 80 or line.endswith((".", ",", ";", ":")):
        return False
    if PAGE_NUMBER_LINE.match(line) or not any(c.isalpha() for c in line):
        return False
    numbered = NUMBERED_HEADING.match(line)
    if numbered:
        rest = numbered.group("rest")
        return rest[0].isupper() or rest[0].isdigit()
    return is_all_caps(line) or is_title_case(line)


def number_depth(heading: str) -> int | None:
    """The depth a heading's number gives it ('4' and 'IV.' 1, '4.2' 2, '4.2.1' 3), or None.

    'Section 4' or 'Article 4' count as 1 like '4'; letters and Roman numerals are 1.
    """
    match = _HEADING_NUMBER.match(heading)
    if match is None:
        return None
    number = (match.group("number") or match.group("labelled")).rstrip(".")
    return number.count(".") + 1 if number[:1].isdigit() else 1


def shape_depths(
    headings: list[str], *, body_after_first: bool, title: str | None = None
) -> list[int]:
    """Depths for headings found by their shape (PDF, plain text), in document order.

    A numbered heading's depth is its number's (see `number_depth`); an unnumbered one (all
    caps, title case) is 1, except the document's first heading when it looks like the
    document's title: then it is 0, outermost. It looks like one when it is unnumbered and
    equals the `title` given (a PDF's metadata), or when the second heading follows it with
    no body text between, or the second heading is numbered (an unnumbered title over
    numbered sections).
    """
    depths = [number_depth(heading) or 1 for heading in headings]
    if headings and number_depth(headings[0]) is None:
        first = headings[0]
        same_as_title = title is not None and clean(title).casefold() == first.casefold()
        over_sections = len(headings) > 1 and (
            not body_after_first or number_depth(headings[1]) is not None
        )
        if same_as_title or over_sections:
            depths[0] = 0
    return depths


class Outline:
    """The headings enclosing the current position, outermost first, each with its depth.

    Entering a heading closes every open heading at its depth or deeper: a level-2 heading
    after a level-3 one closes it and the level 2 above it, and sits under the level 1. A
    skipped level is no matter (a level 3 straight under a level 1 sits under that level 1).
    """

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []

    def enter(self, depth: int, heading: str) -> None:
        while self._open and self._open[-1][0] >= depth:
            self._open.pop()
        self._open.append((depth, heading))

    @property
    def section(self) -> str:
        return self._open[-1][1] if self._open else ""

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(heading for _, heading in self._open)

    def block(self, text: str, page: int | None = None) -> Block:
        return Block(text, self.section, page, self.path)
