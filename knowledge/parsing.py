"""Uploaded file -> text blocks (paragraph-sized, each tagged with its section and page).

Two entry points with different costs:

* `screen()` runs inside the upload request. It sniffs the type from the content and refuses
  files that are hostile to later stages (zip bombs, PDFs with scripts or launch actions,
  binary junk posing as text) without decompressing or fully parsing anything big.
* `parse()` runs in the background job and does the real extraction.

Every exception raised here is a `ParseError` whose message is shown to the user as the
document's error, so messages are whole readable sentences.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docx.table import Table

KINDS: dict[str, str] = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "markdown": "text/markdown",
    "text": "text/plain",
    "html": "text/html",
}
ACCEPTED = "PDF, DOCX, Markdown, plain text, HTML"

MAX_DOCX_UNCOMPRESSED = 100 * 1024 * 1024
MAX_DOCX_RATIO = 100
MAX_ZIP_MEMBERS = 10_000
# Small XML parts legitimately compress very well; only judge the ratio of big members.
RATIO_MIN_MEMBER_SIZE = 1024 * 1024
# Budget for inflating PDF object streams while looking for hidden actions.
PDF_OBJSTM_BUDGET = 32 * 1024 * 1024

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


# --------------------------------------------------------------------------- detection

_MAGICS: list[tuple[bytes, str]] = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"\x1f\x8b", "application/gzip"),
    (b"\xfd7zXZ\x00", "application/x-xz"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"\x28\xb5\x2f\xfd", "application/zstd"),
    (b"\x7fELF", "application/x-executable"),
    (b"\xfe\xed\xfa\xce", "application/x-mach-binary"),
    (b"\xfe\xed\xfa\xcf", "application/x-mach-binary"),
    (b"\xcf\xfa\xed\xfe", "application/x-mach-binary"),
    (b"\xca\xfe\xba\xbe", "application/java-vm"),
    (b"\x00asm", "application/wasm"),
    (b"SQLite format 3\x00", "application/vnd.sqlite3"),
    (b"OggS\x00", "audio/ogg"),
    (b"{\\rtf", "application/rtf"),
    (b"%!PS", "application/postscript"),
]
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE2_BY_EXTENSION = {
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
    ".msg": "application/vnd.ms-outlook",
}
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
# Member that identifies an Office Open XML package other than a Word document.
_OOXML_MARKERS = {
    "xl/workbook.xml": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/presentation.xml": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    ),
}
_TEXT_EXTENSIONS = (".txt", ".text", ".md", ".markdown", ".html", ".htm", ".csv", ".log")

_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.MULTILINE)
# Only at the very start: Markdown or text that merely quotes HTML must stay what it is.
_HTML_START = re.compile(
    r"^\s*(?:<!--.*?-->\s*)*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<html[\s>])",
    re.I | re.S,
)
_ANY_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>")


def _extension(filename: str) -> str:
    name = (filename or "").lower().rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return name[name.rfind(".") :] if "." in name else ""


def _binary_mime(data: bytes, filename: str) -> str | None:
    """The MIME type of a known non-text format, from its magic bytes."""
    head = data[:64]
    for magic, mime in _MAGICS:
        if head.startswith(magic):
            return mime
    if head.startswith(_OLE2):
        return _OLE2_BY_EXTENSION.get(_extension(filename), "application/x-ole-storage")
    # Printable magics could start real text ('MZ Corp ...'); demand a binary byte after them.
    if head.startswith(b"MZ") and b"\x00" in head:
        return "application/x-msdownload"
    if head.startswith(b"ID3") and len(head) > 4 and head[3] < 10:
        return "audio/mpeg"
    if head.startswith(b"fLaC") and len(head) > 4 and head[4] in (0, 0x80):
        return "audio/flac"
    if head.startswith(b"RIFF") and len(head) >= 12:
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}.get(
            head[8:12], "application/octet-stream"
        )
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1"):
            return "image/heic"
        if brand.startswith(b"M4A"):
            return "audio/mp4"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    # 'BM' alone is too common at the start of text; also require the declared file size.
    if head.startswith(b"BM") and int.from_bytes(head[2:6], "little") == len(data):
        return "image/bmp"
    if re.match(rb"BZh[1-9]1AY&SY", head):
        return "application/x-bzip2"
    return None


def _open_zip(data: bytes) -> zipfile.ZipFile:
    # Reads only the central directory; nothing is inflated.
    return zipfile.ZipFile(io.BytesIO(data))


def _zip_kind(data: bytes, filename: str) -> str:
    """'docx', or raise: the zip is some other package, or a damaged/fake Word file."""
    is_docx_name = _extension(filename) in (".docx", ".docm", ".dotx")
    try:
        with _open_zip(data) as archive:
            names = set(archive.namelist())
            if "word/document.xml" in names:
                return "docx"
            for marker, mime in _OOXML_MARKERS.items():
                if marker in names:
                    raise UnsupportedType(mime)
            mime = _zip_declared_mimetype(archive, names)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        if is_docx_name:
            raise UnsafeFile(
                "The file is not a valid DOCX: its ZIP container is damaged."
            ) from exc
        raise UnsupportedType("application/zip") from exc
    if mime is None and is_docx_name:
        raise UnsafeFile(
            "The file is not a valid DOCX: it has no word/document.xml part."
        )
    raise UnsupportedType(mime or "application/zip")


def _zip_declared_mimetype(archive: zipfile.ZipFile, names: set[str]) -> str | None:
    """ODF and EPUB packages name their type in a small stored 'mimetype' member."""
    if "mimetype" not in names:
        return None
    info = archive.getinfo("mimetype")
    if info.file_size > 200:
        return None
    try:
        value = archive.read(info).decode("ascii").strip()
    except (UnicodeDecodeError, zipfile.BadZipFile, NotImplementedError, OSError):
        return None
    return value if re.fullmatch(r"[\w.+-]+/[\w.+-]+", value) else None


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return True
    controls = sum(1 for byte in sample if byte < 32 and byte not in b"\t\n\r\f\b\x1b")
    return controls > len(sample) * 0.1


def decode_text(data: bytes) -> str:
    """Decode UTF-8 (with or without BOM) or BOM-marked UTF-16; refuse anything else."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise UnsafeFile("The file is not valid UTF-16 text.") from exc
    else:
        if b"\x00" in data:
            raise UnsafeFile("The file contains NUL bytes, so it is not a text document.")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UnsafeFile(
                "The file is not valid UTF-8 text; save it as UTF-8 and upload it again."
            ) from exc
    text = text.lstrip("\ufeff")
    if "\x00" in text:
        raise UnsafeFile("The file contains NUL bytes, so it is not a text document.")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _text_kind(text: str, filename: str) -> str:
    ext = _extension(filename)
    head = text[:4096]
    if _HTML_START.match(head):
        return "html"
    if ext in (".html", ".htm", ".xhtml") and _ANY_TAG.search(head):
        return "html"
    stripped = head.lstrip()
    if (stripped.startswith("<?xml") and "<svg" in head) or stripped.startswith("<svg"):
        raise UnsupportedType("image/svg+xml")
    if ext in (".md", ".markdown") or _ATX_HEADING.search(text):
        return "markdown"
    return "text"


def detect_type(data: bytes, filename: str) -> str:
    """The KINDS key for `data`, judged by content; the name only breaks ties among text kinds."""
    if not data:
        raise ParseError("The file is empty.")
    if data[:1024].lstrip(b"\t\n\r\f ").startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(_ZIP_MAGICS):
        return _zip_kind(data, filename)
    mime = _binary_mime(data, filename)
    if mime is not None:
        raise UnsupportedType(mime)
    has_bom = data.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf"))
    if not has_bom and _looks_binary(data) and _extension(filename) not in _TEXT_EXTENSIONS:
        # Unknown binary formats get a type error; binary junk named like text is refused
        # by decode_text below with a message about the text itself.
        raise UnsupportedType("application/octet-stream")
    text = decode_text(data)
    if not text.strip():
        raise ParseError("The file is empty.")
    return _text_kind(text, filename)


# ------------------------------------------------------------------------------ screening


def _check_zip_limits(data: bytes) -> None:
    try:
        with _open_zip(data) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise UnsafeFile("The file is not a valid DOCX: its ZIP container is damaged.") from exc
    if len(infos) > MAX_ZIP_MEMBERS:
        raise UnsafeFile("The DOCX file has too many parts to be a normal document.")
    declared = sum(info.file_size for info in infos)
    compressed = sum(info.compress_size for info in infos)
    refuse = UnsafeFile(
        "The DOCX file expands to an unreasonable size when unpacked (a possible zip bomb)."
    )
    if declared > MAX_DOCX_UNCOMPRESSED:
        raise refuse
    if declared > RATIO_MIN_MEMBER_SIZE and declared > MAX_DOCX_RATIO * max(compressed, 1):
        raise refuse
    for info in infos:
        if info.file_size > RATIO_MIN_MEMBER_SIZE and (
            info.file_size > MAX_DOCX_RATIO * max(info.compress_size, 1)
        ):
            raise refuse


# /JS is short enough to occur by chance in compressed binary streams, so it only counts
# when followed by a value (string, hex string or reference); the long names stand alone.
_PDF_DANGEROUS_PLAIN = re.compile(
    rb"/(?:JavaScript|Launch)(?![^\s/<>\[\]()%{}])|/JS\s*(?:\(|<|\d+\s+\d+\s+R)"
)
# Only names that use #xx escapes (/J#53 is /JS), a trick to dodge naive scans.
_PDF_ESCAPED_NAME = re.compile(rb"/[^\s/<>\[\]()%{}#]*#[0-9A-Fa-f]{2}[^\s/<>\[\]()%{}]*")
_PDF_DANGEROUS_NAMES = {b"JavaScript", b"JS", b"Launch"}
_PDF_HEX_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_PDF_OBJSTM = re.compile(rb"/Type\s*/ObjStm")
_PDF_STREAM_START = re.compile(rb"stream\r?\n")


def _pdf_has_active_content(data: bytes) -> bool:
    return _has_dangerous_names(data) or _objstm_has_active_content(data)


def _has_dangerous_names(blob: bytes) -> bool:
    if _PDF_DANGEROUS_PLAIN.search(blob):
        return True
    for match in _PDF_ESCAPED_NAME.finditer(blob):
        name = _PDF_HEX_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), match.group()[1:])
        if name in _PDF_DANGEROUS_NAMES:
            return True
    return False


def _objstm_has_active_content(data: bytes) -> bool:
    """Look inside compressed object streams, where PDF 1.5+ writers put most dictionaries.

    Inflation is capped by a total budget so a hostile stream cannot make the upload
    request expensive; this is a screen, not a parser.
    """
    budget = PDF_OBJSTM_BUDGET
    for header in _PDF_OBJSTM.finditer(data):
        start_match = _PDF_STREAM_START.search(data, header.end(), header.end() + 4096)
        if start_match is None:
            continue
        start = start_match.end()
        end = data.find(b"endstream", start)
        if end < 0:
            end = len(data)
        raw = data[start:end]
        try:
            inflated = zlib.decompressobj().decompress(raw, budget)
        except zlib.error:
            # Unfiltered (or differently filtered) streams are searched as they are.
            inflated = raw
        budget -= len(inflated)
        if _has_dangerous_names(inflated):
            return True
        if budget <= 0:
            break
    return False


def screen(data: bytes, filename: str) -> str:
    """Upload-time check: detect the type and refuse hostile files. Returns the KINDS key."""
    kind = detect_type(data, filename)
    if kind == "docx":
        _check_zip_limits(data)
    elif kind == "pdf":
        if _pdf_has_active_content(data):
            raise UnsafeFile(
                "The PDF contains JavaScript or launch actions, which are not allowed."
            )
    # Text kinds were already decoded (UTF-8/UTF-16, no NUL bytes) by detect_type.
    return kind


# -------------------------------------------------------------------------------- parsing


def parse(data: bytes, filename: str) -> Parsed:
    """Extract paragraph-sized blocks; raises ParseError with a readable message."""
    kind = detect_type(data, filename)
    if kind == "pdf":
        parsed = _parse_pdf(data)
    elif kind == "docx":
        # parse() may run on files that never went through screen() (re-ingestion, admin).
        _check_zip_limits(data)
        parsed = _parse_docx(data)
    else:
        text = decode_text(data)
        if kind == "markdown":
            parsed = _parse_markdown(text)
        elif kind == "html":
            parsed = _parse_html(text)
        else:
            parsed = _parse_text(text)
    if not parsed.blocks:
        raise ParseError("The file contains no readable text.")
    return parsed


_WS = re.compile(r"\s+")


def _clean(text: str) -> str:
    return _WS.sub(" ", text).strip()


# ---- PDF

_SMALL_WORDS = frozenset(
    "a an and as at but by de for from in into nor of on or per the to up via vs with".split()
)
_NUMBERED_HEADING = re.compile(
    r"^(?:(?:section|article|chapter|part|annex|appendix)\s+)?"
    r"(?:\d+(?:\.\d+)*\.?|[A-Z]\.|[IVXLC]+\.)\s+(?P<rest>\S.*)$",
    re.I,
)
_PAGE_NUMBER_LINE = re.compile(r"^(?:page\s+)?\d+(?:\s*(?:of|/)\s*\d+)?$", re.I)
_SENTENCE_END = re.compile(r"[.!?:;][\"'”’)\]]*$")


def _is_title_case(line: str) -> bool:
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
        if index > 0 and word.lower() in _SMALL_WORDS:
            continue
        return False
    return True


def _is_all_caps(line: str) -> bool:
    letters = [c for c in line if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def _heading_candidate(line: str) -> bool:
    """A short line shaped like a heading; context (what follows) is judged by the caller."""
    if not line or len(line) > 80 or line.endswith((".", ",", ";", ":")):
        return False
    if _PAGE_NUMBER_LINE.match(line) or not any(c.isalpha() for c in line):
        return False
    numbered = _NUMBERED_HEADING.match(line)
    if numbered:
        rest = numbered.group("rest")
        return rest[0].isupper() or rest[0].isdigit()
    return _is_all_caps(line) or _is_title_case(line)


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


def _pdf_blocks(pages: list[str]) -> list[Block]:
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
        if current is None or not _heading_candidate(current.text):
            return False
        previous = lines[index - 1] if index > 0 else None
        if previous is not None and not (
            _SENTENCE_END.search(previous.text) or _heading_candidate(previous.text)
        ):
            return False
        # Must be followed by body text (possibly after further headings, e.g. '2' then '2.1').
        for position in range(index + 1, len(lines)):
            following = lines[position]
            if following is None:
                continue
            if following.text[:1].islower():
                return False
            if not _heading_candidate(following.text):
                return True
        return False

    blocks: list[Block] = []
    section = ""
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
                and previous.section == section
                and previous.page is not None
                and paragraph_page is not None
                and previous.page < paragraph_page
                and not _SENTENCE_END.search(previous.text)
                and text[:1].islower()
            ):
                blocks[-1] = Block(_join_lines([previous.text, text]), section, previous.page)
            else:
                blocks.append(Block(text, section, paragraph_page))
        paragraph = []
        paragraph_page = None

    for index, line in enumerate(lines):
        if line is None:
            flush()
            continue
        if is_heading(index):
            flush()
            section = _clean(line.text)
            continue
        if paragraph and _SENTENCE_END.search(paragraph[-1]) and len(paragraph[-1]) < 60:
            # A short line ending a sentence usually ends a paragraph in extracted text.
            flush()
        if not paragraph:
            paragraph_page = line.page
        paragraph.append(line.text)
    flush()
    return blocks


def _parse_pdf(data: bytes) -> Parsed:
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
            title = _clean(str(metadata.title)) or None
    except Exception:  # noqa: BLE001 - a broken Info dict must not fail the whole file
        title = None

    if not any(text.strip() for text in pages):
        raise ParseError(
            "The PDF has no text layer (scanned images are not supported); "
            "upload a PDF with selectable text."
        )
    return Parsed(kind="pdf", blocks=_pdf_blocks(pages), page_count=len(pages), title=title)


# ---- DOCX


def _parse_docx(data: bytes) -> Parsed:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[Block] = []
        section = ""
        first_title: str | None = None
        first_h1: str | None = None
        for item in document.iter_inner_content():
            if isinstance(item, Paragraph):
                text = _clean(item.text)
                if not text:
                    continue
                style = item.style.name if item.style is not None else ""
                if style.startswith("Title"):
                    first_title = first_title or text
                    section = text
                elif style.startswith("Heading"):
                    if style == "Heading 1":
                        first_h1 = first_h1 or text
                    section = text
                else:
                    blocks.append(Block(text, section, None))
            elif isinstance(item, Table):
                text = _docx_table_text(item)
                if text:
                    blocks.append(Block(text, section, None))
        core_title = _clean(document.core_properties.title or "")
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
            text = _clean(cell.text)
            if text:
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    return "\n".join(rows)


# ---- Markdown

_MD_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_MD_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_MD_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_MD_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s+\S+")
_MD_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_MD_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")
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
    """Join a paragraph's lines: wrapped prose is unwrapped, list items stay one per line."""
    out: list[str] = []
    for raw in lines:
        line = _md_inline(_MD_QUOTE.sub("", raw)).strip()
        if not line:
            continue
        if out and not _MD_LIST_ITEM.match(line) and not line.startswith("|"):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return "\n".join(_WS_H.sub(" ", line) for line in out)


_WS_H = re.compile(r"[ \t\f\v]+")


def _skip_front_matter(lines: list[str]) -> list[str]:
    if not lines or lines[0].strip() != "---":
        return lines
    for index in range(1, min(len(lines), 100)):
        if _MD_FRONT_MATTER_END.match(lines[index]):
            return lines[index + 1 :]
    return lines


def _parse_markdown(text: str) -> Parsed:
    lines = _skip_front_matter(text.split("\n"))
    blocks: list[Block] = []
    section = ""
    title: str | None = None
    paragraph: list[str] = []

    def flush() -> None:
        nonlocal paragraph
        body = _md_paragraph(paragraph)
        if body:
            blocks.append(Block(body, section, None))
        paragraph = []

    def set_heading(level: int, heading: str) -> None:
        nonlocal section, title
        heading = _clean(_md_inline(heading))
        if not heading:
            return
        section = heading
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
                blocks.append(Block(code_text, section, None))
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
            and not _MD_LIST_ITEM.match(paragraph[0])
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


# ---- HTML

_HTML_SKIP = frozenset(
    {"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas"}
)
_HTML_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_HTML_BLOCKS = frozenset(
    {
        "p", "li", "pre", "div", "blockquote", "dd", "dt", "dl", "ul", "ol", "section",
        "article", "aside", "header", "footer", "nav", "main", "figure", "figcaption",
        "table", "tr", "caption", "address", "hr", "form", "fieldset", "details",
        "summary", "body", "html",
    }
)
_HTML_CELLS = frozenset({"td", "th"})
_HTML_VOID = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr",
    }
)


class _HtmlExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.section = ""
        self.title: str | None = None
        self.first_h1: str | None = None
        self._skip_stack: list[str] = []
        self._in_title = False
        self._title_parts: list[str] = []
        self._heading: str | None = None
        self._heading_parts: list[str] = []
        self._pre_depth = 0
        self._buffer: list[str] = []

    def _flush(self) -> None:
        raw = "".join(self._buffer)
        self._buffer = []
        if self._pre_depth:
            text = "\n".join(line.rstrip() for line in raw.strip("\n").split("\n"))
        else:
            text = " | ".join(part for part in (_clean(p) for p in raw.split("\x1f")) if part)
        if text.strip():
            self.blocks.append(Block(text, self.section, None))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_stack:
            if tag == self._skip_stack[-1] or (tag in _HTML_SKIP and tag not in _HTML_VOID):
                self._skip_stack.append(tag)
            return
        if tag == "title":
            self._in_title = True
            return
        if tag in _HTML_SKIP:
            self._skip_stack.append(tag)
            return
        if tag in _HTML_HEADINGS:
            self._flush()
            self._heading = tag
            self._heading_parts = []
        elif tag == "pre":
            self._flush()
            self._pre_depth += 1
        elif tag in _HTML_BLOCKS:
            self._flush()
        elif tag in _HTML_CELLS:
            # Unit separator marks cell borders; _flush turns it into ' | '.
            self._buffer.append("\x1f")
        elif tag == "br":
            self._buffer.append("\n" if self._pre_depth else " ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HTML_VOID:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if self._skip_stack:
            if tag == self._skip_stack[-1]:
                self._skip_stack.pop()
            return
        if tag == "title":
            if self._in_title and self.title is None:
                self.title = _clean("".join(self._title_parts)) or None
            self._in_title = False
            return
        if tag in _HTML_HEADINGS and self._heading is not None:
            heading = _clean("".join(self._heading_parts))
            if heading:
                self.section = heading
                if self._heading == "h1" and self.first_h1 is None:
                    self.first_h1 = heading
            self._heading = None
        elif tag == "pre":
            self._flush()
            self._pre_depth = max(0, self._pre_depth - 1)
        elif tag in _HTML_BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._skip_stack:
            return
        if self._in_title:
            self._title_parts.append(data)
        elif self._heading is not None:
            self._heading_parts.append(data)
        else:
            self._buffer.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def _parse_html(text: str) -> Parsed:
    extractor = _HtmlExtractor()
    try:
        extractor.feed(text)
        extractor.close()
    except Exception as exc:  # noqa: BLE001 - html.parser is lenient; this is a last resort
        raise ParseError("The HTML file could not be read.") from exc
    return Parsed(
        kind="html",
        blocks=extractor.blocks,
        page_count=None,
        title=extractor.title or extractor.first_h1,
    )


# ---- Plain text

_TEXT_UNDERLINE = re.compile(r"^\s*(?:={3,}|-{3,})\s*$")


def _text_heading(line: str) -> bool:
    stripped = line.strip()
    return (
        0 < len(stripped) <= 80
        and _is_all_caps(stripped)
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


def _parse_text(text: str) -> Parsed:
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
                section = _clean(line)
                index += 2
                continue
            if not body and _text_heading(line):
                section = _clean(line)
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
        line = _WS_H.sub(" ", raw).strip()
        if out and not _MD_LIST_ITEM.match(line):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return "\n".join(out)


__all__ = [
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
