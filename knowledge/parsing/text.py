"""Plain text: paragraphs separated by blank lines; underlined, all-caps and numbered lines
('4.2 Labelling', '1. PURPOSE') are headings, nested by their numbers (see
`common.shape_depths`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from knowledge.parsing.common import (
    LIST_ITEM,
    WS_H,
    Block,
    Outline,
    Parsed,
    clean,
    heading_candidate,
    is_all_caps,
    number_depth,
    shape_depths,
)

_TEXT_UNDERLINE = re.compile(r"^\s*(?:={3,}|-{3,})\s*$")
# A line ending a sentence (a colon or semicolon does not: a list or a clause follows).
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*$")


def _text_heading(line: str) -> bool:
    stripped = line.strip()
    return (
        0 < len(stripped) <= 80
        and is_all_caps(stripped)
        and not stripped.endswith((".", ",", ";"))
    )


def _text_paragraphs(text: str) -> Iterator[list[str]]:
    paragraph: list[str] = []
    for line in text.split("\n"):
        if line.strip():
            paragraph.append(line.rstrip())
        elif paragraph:
            yield paragraph
            paragraph = []
    if paragraph:
        yield paragraph


def _numbered_heading(lines: list[str], position: int) -> bool:
    """Whether lines[position] (non-blank lines of the whole text) is a numbered heading.

    '4.2 Labelling' or '1. PURPOSE' on a line of its own, shaped like a heading, with text
    after it that does not continue it (starts lowercase). Numbered lines next to a line
    numbered at the same depth are a list ('1. Open the valve', '2. Close ...'), not headings.
    """
    line = lines[position].strip()
    depth = number_depth(line)
    if depth is None or not heading_candidate(line):
        return False
    if position + 1 >= len(lines) or lines[position + 1].lstrip()[:1].islower():
        return False
    neighbours = lines[position - 1 : position] + lines[position + 1 : position + 2]
    return all(number_depth(other.strip()) != depth for other in neighbours)


def parse_text(text: str) -> Parsed:
    paragraphs = list(_text_paragraphs(text))
    all_lines = [line for lines in paragraphs for line in lines]
    # ("heading", text) and ("body", text) in order; depths are set once all headings are
    # known, since whether the first one is the document's title depends on what follows.
    items: list[tuple[str, str]] = []
    start = 0  # position of the paragraph's first line in all_lines
    for lines in paragraphs:
        body: list[str] = []
        index = 0
        while index < len(lines):
            line = lines[index]
            underlined = index + 1 < len(lines) and _TEXT_UNDERLINE.match(lines[index + 1])
            if underlined and len(line.strip()) <= 80 and not _TEXT_UNDERLINE.match(line):
                if body:
                    items.append(("body", _unwrap(body)))
                    body = []
                items.append(("heading", clean(line)))
                index += 2
                continue
            if not body and _text_heading(line):
                items.append(("heading", clean(line)))
                index += 1
                continue
            if (not body or _SENTENCE_END.search(body[-1])) and _numbered_heading(
                all_lines, start + index
            ):
                if body:
                    items.append(("body", _unwrap(body)))
                    body = []
                items.append(("heading", clean(line)))
                index += 1
                continue
            body.append(line)
            index += 1
        if body:
            items.append(("body", _unwrap(body)))
        start += len(lines)

    at = [position for position, (kind, _) in enumerate(items) if kind == "heading"]
    body_after_first = len(at) > 1 and at[1] > at[0] + 1
    depths = iter(shape_depths([items[p][1] for p in at], body_after_first=body_after_first))
    blocks: list[Block] = []
    outline = Outline()
    for kind, value in items:
        if kind == "heading":
            outline.enter(next(depths), value)
        else:
            blocks.append(outline.block(value))
    return Parsed(kind="text", blocks=blocks, page_count=None, title=None)


def _unwrap(lines: list[str]) -> str:
    """Unwrap hard-wrapped prose but keep list-like lines on their own line."""
    out: list[str] = []
    for raw in lines:
        line = WS_H.sub(" ", raw).strip()
        if out and not LIST_ITEM.match(line):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return "\n".join(out)
