"""Uploaded file -> text blocks (paragraph-sized, each tagged with its section and page).

Two entry points with different costs:

* `screen()` runs inside the upload request. It sniffs the type from the content and refuses
  files that are hostile to later stages (zip bombs, PDFs with scripts or launch actions,
  binary junk posing as text) without decompressing or fully parsing anything big.
* `parse()` runs in the background job and does the real extraction.

Every exception raised here is a `ParseError` whose message is shown to the user as the
document's error, so messages are whole readable sentences.

Layout: `detect` (type detection and the upload screen), one module per format (`pdf`,
`docx`, `markdown`, `html`, `text`, each with its `parse_<format>()`), and `common` (result
types, errors, and the whitespace and heading-shape helpers the formats share). Callers
import from this package only.
"""

from __future__ import annotations

from knowledge.parsing.common import (
    ACCEPTED,
    KINDS,
    Block,
    ParseError,
    Parsed,
    UnsafeFile,
    UnsupportedType,
)
from knowledge.parsing.detect import check_zip_limits, decode_text, detect_type, screen
from knowledge.parsing.docx import parse_docx
from knowledge.parsing.html import parse_html
from knowledge.parsing.markdown import parse_markdown
from knowledge.parsing.pdf import parse_pdf
from knowledge.parsing.text import parse_text


def parse(data: bytes, filename: str) -> Parsed:
    """Extract paragraph-sized blocks; raises ParseError with a readable message."""
    kind = detect_type(data, filename)
    if kind == "pdf":
        parsed = parse_pdf(data)
    elif kind == "docx":
        # parse() may run on files that never went through screen() (re-ingestion, admin).
        check_zip_limits(data)
        parsed = parse_docx(data)
    else:
        text = decode_text(data)
        if kind == "markdown":
            parsed = parse_markdown(text)
        elif kind == "html":
            parsed = parse_html(text)
        else:
            parsed = parse_text(text)
    if not parsed.blocks:
        raise ParseError("The file contains no readable text.")
    return parsed


__all__ = [
    "ACCEPTED",
    "KINDS",
    "Block",
    "ParseError",
    "Parsed",
    "UnsafeFile",
    "UnsupportedType",
    "decode_text",
    "detect_type",
    "parse",
    "screen",
]
