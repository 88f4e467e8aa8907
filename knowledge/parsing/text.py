"""Plain text: paragraphs separated by blank lines; underlined and all-caps lines are
headings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from knowledge.parsing.common import LIST_ITEM, WS_H, Block, Parsed, clean, is_all_caps

_TEXT_UNDERLINE = re.compile(r"^\s*(?:={3,}|-{3,})\s*$")


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


def parse_text(text: str) -> Parsed:
    blocks: list[Block] = []
    section = ""
    for lines in _text_paragraphs(text):
        body: list[str] = []
        index = 0
        while index < len(lines):
            line = lines[index]
            underlined = index + 1 < len(lines) and _TEXT_UNDERLINE.match(lines[index + 1])
            if underlined and len(line.strip()) <= 80 and not _TEXT_UNDERLINE.match(line):
                if body:
                    blocks.append(Block(_unwrap(body), section, None))
                    body = []
                section = clean(line)
                index += 2
                continue
            if not body and _text_heading(line):
                section = clean(line)
                index += 1
                continue
            body.append(line)
            index += 1
        if body:
            blocks.append(Block(_unwrap(body), section, None))
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
