"""PDF: the text layer page by page (pypdf), with running headers and footers removed,
paragraphs rebuilt from extracted lines, and headings recognised by their shape and place
(nested by their numbers; see `common.shape_depths`).
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass

from knowledge.parsing.common import (
    Block,
    Outline,
    ParseError,
    Parsed,
    clean,
    heading_candidate,
    logger,
    shape_depths,
)

_SENTENCE_END = re.compile(r"[.!?:;][\"'”’)\]]*$")


def _page_lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n")]


def _boilerplate_lines(pages: list[list[str]]) -> set[str]:
    """Running headers/footers: first or last lines repeated on most pages (digits ignored)."""
    if len(pages) < 3:
        return set()
    counts: Counter[str] = Counter()
    for lines in pages:
        non_empty = [line for line in lines if line]
        edge = set(non_empty[:2] + non_empty[-2:])
        counts.update({_digitless(line) for line in edge})
    threshold = max(3, int(len(pages) * 0.6 + 0.5))
    return {line for line, count in counts.items() if count >= threshold}


def _digitless(line: str) -> str:
    return re.sub(r"\d+", "#", line)


def _join_lines(lines: list[str]) -> str:
    """Unwrap hard line breaks, repairing words hyphenated across lines."""
    out = ""
    for line in lines:
        if not out:
            out = line
        elif re.search(r"[A-Za-z]-$", out) and line[:1].islower():
            out = out[:-1] + line
        else:
            out = f"{out} {line}"
    return out


@dataclass
class _PdfLine:
    text: str
    page: int


def _pdf_blocks(pages: list[str], title: str | None = None) -> list[Block]:
    page_lines = [_page_lines(text) for text in pages]
    boilerplate = _boilerplate_lines(page_lines)
    # Flatten with blank lines kept as paragraph separators; a page break is one too.
    lines: list[_PdfLine | None] = []
    for number, page in enumerate(page_lines, start=1):
        for line in page:
            if line and _digitless(line) in boilerplate:
                continue
            lines.append(_PdfLine(line, number) if line else None)
        lines.append(None)

    def is_heading(index: int) -> bool:
        current = lines[index]
        if current is None or not heading_candidate(current.text):
            return False
        previous = lines[index - 1] if index > 0 else None
        if previous is not None and not (
            _SENTENCE_END.search(previous.text) or heading_candidate(previous.text)
        ):
            return False
        # Must be followed by body text (possibly after further headings, e.g. '2' then '2.1').
        for position in range(index + 1, len(lines)):
            following = lines[position]
            if following is None:
                continue
            if following.text[:1].islower():
                return False
            if not heading_candidate(following.text):
                return True
        return False

    # Headings first: whether the first one is the document's title depends on what follows.
    headings = {
        index: clean(line.text)
        for index, line in enumerate(lines)
        if line is not None and is_heading(index)
    }
    at = list(headings)
    body_after_first = len(at) > 1 and any(
        lines[index] is not None for index in range(at[0] + 1, at[1])
    )
    depths = shape_depths(list(headings.values()), body_after_first=body_after_first, title=title)
    heading_depth = dict(zip(at, depths))

    blocks: list[Block] = []
    outline = Outline()
    paragraph: list[str] = []
    paragraph_page: int | None = None

    def flush() -> None:
        nonlocal paragraph, paragraph_page
        if paragraph:
            text = _join_lines(paragraph)
            previous = blocks[-1] if blocks else None
            # A sentence running over a page break belongs to the paragraph it started in.
            if (
                previous is not None
                and previous.path == outline.path
                and previous.page is not None
                and paragraph_page is not None
                and previous.page < paragraph_page
                and not _SENTENCE_END.search(previous.text)
                and text[:1].islower()
            ):
                blocks[-1] = outline.block(_join_lines([previous.text, text]), previous.page)
            else:
                blocks.append(outline.block(text, paragraph_page))
        paragraph = []
        paragraph_page = None

    for index, line in enumerate(lines):
        if line is None:
            flush()
            continue
        if index in headings:
            flush()
            outline.enter(heading_depth[index], headings[index])
            continue
        if paragraph and _SENTENCE_END.search(paragraph[-1]) and len(paragraph[-1]) < 60:
            # A short line ending a sentence usually ends a paragraph in extracted text.
            flush()
        if not paragraph:
            paragraph_page = line.page
        paragraph.append(line.text)
    flush()
    return blocks


def parse_pdf(data: bytes) -> Parsed:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    damaged = "The PDF could not be read: it is damaged or not a PDF."
    encrypted = "The PDF is encrypted; upload an unencrypted copy."
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise ParseError(encrypted)
            except (DependencyError, NotImplementedError, FileNotDecryptedError) as exc:
                # DependencyError: AES without the `cryptography` package; still "encrypted".
                raise ParseError(encrypted) from exc
        pages = [page.extract_text() or "" for page in reader.pages]
    except ParseError:
        raise
    except FileNotDecryptedError as exc:
        raise ParseError(encrypted) from exc
    except Exception as exc:  # noqa: BLE001 - pypdf raises many unrelated types on junk input
        logger.info("pypdf failed: %r", exc)
        raise ParseError(damaged) from exc
    title: str | None = None
    try:
        metadata = reader.metadata
        if metadata is not None and metadata.title:
            title = clean(str(metadata.title)) or None
    except Exception:  # noqa: BLE001 - a broken Info dict must not fail the whole file
        title = None

    if not any(text.strip() for text in pages):
        raise ParseError(
            "The PDF has no text layer (scanned images are not supported); "
            "upload a PDF with selectable text."
        )
    return Parsed(
        kind="pdf", blocks=_pdf_blocks(pages, title), page_count=len(pages), title=title
    )

