"""Markdown: ATX and setext headings give the sections, nested by level (a block's path runs
from its H1 down); inline markup is stripped, code blocks and code spans are kept verbatim.
"""

from __future__ import annotations

import re

from knowledge.parsing.common import LIST_ITEM, WS_H, Block, Outline, Parsed, clean

_MD_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_MD_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_MD_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_MD_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s+\S+")
_MD_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_MD_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_MD_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_MD_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_MD_EM_STAR = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
_MD_EM_UNDERSCORE = re.compile(r"(?<![\w_])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![\w_])")
_MD_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_MD_QUOTE = re.compile(r"^\s{0,3}(?:>\s?)+")
_MD_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)\s*$")


def _md_inline(text: str) -> str:
    """Strip inline Markdown; code spans are kept verbatim (without backticks)."""
    pieces: list[str] = []
    last = 0
    for match in _MD_CODE_SPAN.finditer(text):
        pieces.append(_md_inline_plain(text[last : match.start()]))
        pieces.append(match.group(2).strip())
        last = match.end()
    pieces.append(_md_inline_plain(text[last:]))
    return "".join(pieces)


def _md_inline_plain(text: str) -> str:
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_REF_LINK.sub(r"\1", text)
    text = _MD_AUTOLINK.sub(r"\1", text)
    text = _MD_STRONG.sub(r"\2", text)
    text = _MD_EM_STAR.sub(r"\1", text)
    text = _MD_EM_UNDERSCORE.sub(r"\1", text)
    return _MD_STRIKE.sub(r"\1", text)


def _md_paragraph(lines: list[str]) -> str:
    """Join a paragraph's lines: wrapped prose is unwrapped, list items stay one per line. An
    item of a nested list (indented deeper than the item before it) joins that item's line:
    "SEV1: any one of the following: a complete outage; ..." stays one item, its conditions
    with it, instead of reading as items of the outer list."""
    out: list[str] = []
    item_indent: int | None = None  # indentation of the current outer list item
    for raw in lines:
        unquoted = _MD_QUOTE.sub("", raw)
        line = _md_inline(unquoted).strip()
        if not line:
            continue
        indent = len(unquoted.expandtabs(4)) - len(unquoted.expandtabs(4).lstrip())
        if LIST_ITEM.match(line):
            if item_indent is not None and indent > item_indent and out:
                out[-1] = f"{out[-1]} {LIST_ITEM.sub('', line, count=1)}"
                continue
            item_indent = indent
            out.append(line)
        elif out and not line.startswith("|"):
            out[-1] = f"{out[-1]} {line}"
        else:
            item_indent = None
            out.append(line)
    return "\n".join(WS_H.sub(" ", line) for line in out)


def _skip_front_matter(lines: list[str]) -> list[str]:
    if not lines or lines[0].strip() != "---":
        return lines
    for index in range(1, min(len(lines), 100)):
        if _MD_FRONT_MATTER_END.match(lines[index]):
            return lines[index + 1 :]
    return lines


def parse_markdown(text: str) -> Parsed:
    lines = _skip_front_matter(text.split("\n"))
    blocks: list[Block] = []
    outline = Outline()
    title: str | None = None
    paragraph: list[str] = []

    def flush() -> None:
        nonlocal paragraph
        body = _md_paragraph(paragraph)
        if body:
            blocks.append(outline.block(body))
        paragraph = []

    def set_heading(level: int, heading: str) -> None:
        nonlocal title
        heading = clean(_md_inline(heading))
        if not heading:
            return
        outline.enter(level, heading)
        if level == 1 and title is None:
            title = heading

    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _MD_FENCE.match(line)
        if fence:
            flush()
            marker = fence.group(1)
            code: list[str] = []
            index += 1
            while index < len(lines) and not lines[index].lstrip().startswith(marker):
                code.append(lines[index].rstrip())
                index += 1
            index += 1
            code_text = "\n".join(code).strip("\n")
            if code_text.strip():
                blocks.append(outline.block(code_text))
            continue
        heading = _MD_ATX.match(line)
        if heading:
            flush()
            set_heading(len(heading.group(1)), heading.group(2))
        elif not line.strip():
            flush()
        elif (
            len(paragraph) == 1
            and _MD_SETEXT.match(line)
            and not LIST_ITEM.match(paragraph[0])
        ):
            heading_text = paragraph[0]
            paragraph = []
            set_heading(1 if line.strip().startswith("=") else 2, heading_text)
        elif _MD_REF_DEF.match(line) or _MD_TABLE_RULE.match(line):
            pass
        else:
            paragraph.append(line)
        index += 1
    flush()
    return Parsed(kind="markdown", blocks=blocks, page_count=None, title=title)
