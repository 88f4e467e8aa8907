"""Builders for uploaded-file fixtures, made in memory so no binary fixture is committed.

Every builder returns the raw bytes a client would upload. They are plain functions so that
any test in the suite (parsing, upload endpoints, ingestion jobs) can use them.
"""

from __future__ import annotations

import io
import textwrap
import zipfile
from functools import lru_cache

import docx
from pypdf import PdfReader, PdfWriter

PDF_WRAP = 90
PDF_LINE_HEIGHT = 14
PDF_TOP = 760


def _pdf_string(text: str) -> bytes:
    # Helvetica with WinAnsiEncoding only covers cp1252; anything else becomes '?'.
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _page_stream(text: str) -> bytes:
    lines: list[str] = []
    for paragraph_line in text.split("\n"):
        wrapped = textwrap.wrap(paragraph_line, PDF_WRAP) if paragraph_line.strip() else []
        lines.extend(wrapped or [""])
    ops = [b"BT", b"/F1 11 Tf", f"{PDF_LINE_HEIGHT} TL".encode(), f"72 {PDF_TOP} Td".encode()]
    for line in lines:
        if line:
            ops.append(_pdf_string(line) + b" Tj")
        ops.append(b"T*")
    ops.append(b"ET")
    return b"\n".join(ops) + b"\n"


def _assemble_pdf(objects: list[bytes], *, root: int, info: int | None) -> bytes:
    """Serialise numbered objects (1-based, in order) with a byte-exact xref table."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode()
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    trailer = f"<< /Size {len(objects) + 1} /Root {root} 0 R"
    if info is not None:
        trailer += f" /Info {info} 0 R"
    out += f"trailer\n{trailer} >>\nstartxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)


def make_pdf(
    pages: list[str],
    *,
    title: str | None = None,
    encrypt_password: str | None = None,
    javascript: bool = False,
) -> bytes:
    """A small valid PDF: one page per string, lines drawn with Helvetica (wrapped at ~90 chars).

    `encrypt_password=""` encrypts with an empty user password (openable without a password);
    any other string must be supplied to open it. `javascript` adds an /OpenAction running JS.
    """
    # Fixed numbering: 1 catalog, 2 page tree, 3 font, then page/content pairs, then extras.
    page_count = len(pages)
    first_page = 4
    page_numbers = [first_page + 2 * i for i in range(page_count)]
    next_free = first_page + 2 * page_count
    js_number = info_number = None
    if javascript:
        js_number, next_free = next_free, next_free + 1
    if title is not None:
        info_number, next_free = next_free, next_free + 1

    catalog = b"<< /Type /Catalog /Pages 2 0 R"
    if js_number is not None:
        catalog += f" /OpenAction {js_number} 0 R".encode()
    objects: list[bytes] = [
        catalog + b" >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{n} 0 R' for n in page_numbers)}] "
        f"/Count {page_count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for page_number, text in zip(page_numbers, pages):
        stream = _page_stream(text)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_number + 1} 0 R >>".encode()
        )
        objects.append(
            f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"endstream"
        )
    if js_number is not None:
        objects.append(b"<< /Type /Action /S /JavaScript /JS (app.alert\\('hello'\\);) >>")
    if info_number is not None:
        objects.append(b"<< /Title " + _pdf_string(title or "") + b" /Producer (Egret tests) >>")
    data = _assemble_pdf(objects, root=1, info=info_number)

    if encrypt_password is None:
        return data
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    # RC4 works with pypdf's pure-Python fallback; AES would need the `cryptography` package.
    writer.encrypt(
        user_password=encrypt_password,
        owner_password=encrypt_password or "owner-secret",
        algorithm="RC4-128",
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def corrupt_pdf() -> bytes:
    """Starts like a PDF (passes the upload screen) but has no objects, xref or trailer."""
    return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 4 + b"\nthis is not a pdf body\n"


def make_docx(
    paragraphs: list[tuple[str | None, str]],
    *,
    title: str | None = None,
    tables: list[list[list[str]]] | None = None,
) -> bytes:
    """A DOCX with (style name or None, text) paragraphs, then any tables (rows of cells)."""
    document = docx.Document()
    if title is not None:
        document.core_properties.title = title
    for style, text in paragraphs:
        document.add_paragraph(text, style=style)
    for rows in tables or []:
        table = document.add_table(rows=len(rows), cols=max(len(row) for row in rows))
        for row_cells, row in zip(table.rows, rows):
            for cell, text in zip(row_cells.cells, row):
                cell.text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def make_xlsx_like() -> bytes:
    """Just enough of a spreadsheet package for content sniffing to call it XLSX."""
    return make_zip(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
            "xl/workbook.xml": b'<?xml version="1.0"?><workbook/>',
            "xl/worksheets/sheet1.xml": b'<?xml version="1.0"?><worksheet/>',
        }
    )


@lru_cache(maxsize=1)
def zip_bomb_docx() -> bytes:
    """A DOCX-shaped zip whose word/document.xml inflates to 150 MB of zeros (~150 KB on disk).

    Written 1 MB at a time so building it never holds the inflated content in memory;
    cached because compressing takes a moment and the bytes never change.
    """
    out = io.BytesIO()
    chunk = b"\0" * (1 << 20)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b'<?xml version="1.0"?><Types/>')
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            for _ in range(150):
                member.write(chunk)
    return out.getvalue()


def make_html(body: str, *, title: str | None = None, head_extra: str = "") -> bytes:
    """A complete HTML5 document around `body` (markup, inserted verbatim)."""
    title_tag = f"<title>{title}</title>" if title is not None else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"{title_tag}{head_extra}\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    ).encode("utf-8")


# The smallest well-formed PNG: 1x1 transparent pixel.
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6300010000050001a5f645400000000049454e44ae426082"
)


def continuity_policy_pdf() -> bytes:
    """Two pages with numbered and all-caps headings and a metadata title."""
    return make_pdf(
        [
            "1 Introduction\nThis policy sets out how we recover.\n"
            "1.2 Scope\nIt applies to all staff and all sites.",
            "Staff must read it every year. The plan is reviewed by the board.\n"
            "RECOVERY OBJECTIVES\nCritical systems return within four hours.",
        ],
        title="Continuity Policy",
    )
