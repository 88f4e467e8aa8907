"""Type detection by content, and the upload-time screen that refuses hostile files.

Nothing here decompresses or fully parses anything big: `screen()` runs inside the upload
request.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib

from knowledge.parsing.common import ParseError, UnsafeFile, UnsupportedType

MAX_DOCX_UNCOMPRESSED = 100 * 1024 * 1024
MAX_DOCX_RATIO = 100
MAX_ZIP_MEMBERS = 10_000
# Small XML parts legitimately compress very well; only judge the ratio of big members.
RATIO_MIN_MEMBER_SIZE = 1024 * 1024
# Budget for inflating PDF object streams while looking for hidden actions.
PDF_OBJSTM_BUDGET = 32 * 1024 * 1024

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


def check_zip_limits(data: bytes) -> None:
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
        check_zip_limits(data)
    elif kind == "pdf":
        if _pdf_has_active_content(data):
            raise UnsafeFile(
                "The PDF contains JavaScript or launch actions, which are not allowed."
            )
    # Text kinds were already decoded (UTF-8/UTF-16, no NUL bytes) by detect_type.
    return kind
