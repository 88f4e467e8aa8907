"""What every format shares: the result types, the errors, whitespace and heading shapes."""

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
    text: str
    section: str
    page: int | None


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
# A bulleted or numbered list item; such lines are kept on their own line when unwrapping.
LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")


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
