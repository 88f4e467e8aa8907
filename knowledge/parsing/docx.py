"""DOCX: paragraphs and tables in document order (python-docx); Title and Heading N styles
give the sections, the Title outermost and each Heading N at level N. List paragraphs
(numbered, or in a List style) are written as Markdown items ("- ..."), so an introduction
keeps its list; an item of a deeper level joins the item above it.
"""

from __future__ import annotations

import dataclasses
import io
import re
from typing import TYPE_CHECKING

from knowledge.parsing.common import Block, Outline, ParseError, Parsed, clean, logger

if TYPE_CHECKING:
    from docx.table import Table

_HEADING_LEVEL = re.compile(r"Heading\s*(\d+)")
_LIST_STYLE = re.compile(r"List(?: Paragraph| Bullet| Number)?(?:\s+(\d+))?$")


def parse_docx(data: bytes) -> Parsed:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[Block] = []
        outline = Outline()
        first_title: str | None = None
        first_h1: str | None = None
        for item in document.iter_inner_content():
            if isinstance(item, Paragraph):
                text = clean(item.text)
                if not text:
                    continue
                style = item.style.name if item.style is not None else ""
                if style.startswith("Title"):
                    first_title = first_title or text
                    outline.enter(0, text)
                elif style.startswith("Heading"):
                    if style == "Heading 1":
                        first_h1 = first_h1 or text
                    outline.enter(_heading_level(style), text)
                else:
                    level = _list_level(item, style)
                    if level is None:
                        blocks.append(outline.block(text))
                    elif level > 0 and blocks and blocks[-1].text.startswith("- "):
                        joined = f"{blocks[-1].text} {text}"  # a nested item joins its item
                        blocks[-1] = dataclasses.replace(blocks[-1], text=joined)
                    else:
                        blocks.append(outline.block(f"- {text}"))
            elif isinstance(item, Table):
                text = _docx_table_text(item)
                if text:
                    blocks.append(outline.block(text))
        core_title = clean(document.core_properties.title or "")
    except ParseError:
        raise
    except Exception as exc:  # python-docx/lxml raise KeyError, ValueError, XMLSyntaxError...
        logger.info("python-docx failed: %r", exc)
        raise ParseError(
            "The DOCX file could not be read: it is damaged or not a Word document."
        ) from exc
    return Parsed(
        kind="docx",
        blocks=blocks,
        page_count=None,
        title=core_title or first_title or first_h1,
    )


def _heading_level(style: str) -> int:
    """'Heading 2' -> 2; a heading style without a number counts as level 1."""
    match = _HEADING_LEVEL.match(style)
    return int(match.group(1)) if match else 1


def _list_level(paragraph, style: str) -> int | None:
    """0 for an item of a top-level list, 1 and more for nested ones; None for a paragraph
    that is no list item. Word marks items with numbering properties (their `ilvl` is the
    level) or with a List style ("List Bullet 2" is level 1)."""
    properties = paragraph._p.pPr
    numbering = properties.numPr if properties is not None else None
    if numbering is not None and numbering.numId is not None and numbering.numId.val != 0:
        return int(numbering.ilvl.val) if numbering.ilvl is not None else 0
    match = _LIST_STYLE.match(style)
    if match is None:
        return None
    return int(match.group(1)) - 1 if match.group(1) else 0


def _docx_table_text(table: Table) -> str:
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        seen: list[object] = []
        for cell in row.cells:
            # Merged cells are repeated once per grid column they span. The list keeps the
            # lxml proxies alive, which is what makes the identity test reliable.
            if any(cell._tc is other for other in seen):
                continue
            seen.append(cell._tc)
            text = clean(cell.text)
            if text:
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    return "\n".join(rows)
