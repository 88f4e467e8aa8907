"""Blocks that are never worth citing: disclaimers, copyright lines, tables of contents.

They are dropped before chunking, so they are neither indexed nor given to a model. The
tests are deliberately narrow (short blocks, tell-tale phrases, dot leaders): a paragraph
that states a rule is kept even if it also says "for illustration".
"""

from __future__ import annotations

import re

MAX_NOTICE_WORDS = 60
_NOTICE = re.compile(
    r"\b(?:not (?:legal|regulatory|professional) (?:advice|or regulatory text)|"
    r"not legal or regulatory|does not constitute (?:legal )?advice|"
    r"for (?:illustration|information(?:al)?) (?:purposes )?only|"
    r"sample content (?:written )?for|all rights reserved|"
    r"(?:copyright|©)\s*(?:\(c\)\s*)?\d{4}|this page (?:is )?intentionally left blank)\b",
    re.I,
)
# "4.2 Retention of records ........ 12" or "Scope  3": a line of a table of contents.
_TOC_LINE = re.compile(r"^.{2,120}?(?:\.{3,}|…+|\s{2,}|\t)\s*\d{1,4}\s*$")
_TOC_TITLE = re.compile(r"^\s*(?:table of )?contents\s*$", re.I)


def is_boilerplate(text: str, section: str = "") -> bool:
    if _TOC_TITLE.match(section):
        return True
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if len(lines) >= 3 and sum(bool(_TOC_LINE.match(line)) for line in lines) >= 0.8 * len(lines):
        return True
    return len(text.split()) <= MAX_NOTICE_WORDS and bool(_NOTICE.search(text))
