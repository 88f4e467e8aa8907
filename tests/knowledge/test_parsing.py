"""Upload screening and text extraction (knowledge/parsing/). Pure functions: no database."""

from __future__ import annotations

import pytest

from knowledge.parsing import (
    KINDS,
    Block,
    ParseError,
    UnsafeFile,
    UnsupportedType,
    detect_type,
    parse,
    screen,
)
from tests.knowledge.files import (
    PNG_1PX,
    continuity_policy_pdf,
    corrupt_pdf,
    make_docx,
    make_html,
    make_pdf,
    make_xlsx_like,
    make_zip,
    zip_bomb_docx,
)


def sections(blocks: list[Block]) -> list[str]:
    """Distinct sections in order of first appearance."""
    seen: list[str] = []
    for block in blocks:
        if block.section not in seen:
            seen.append(block.section)
    return seen


def body(blocks: list[Block]) -> str:
    return "\n".join(block.text for block in blocks)


# ---------------------------------------------------------------------------- detection


class TestDetection:
    def test_kinds_map_to_mime_types(self):
        assert set(KINDS) == {"pdf", "docx", "markdown", "text", "html"}
        assert KINDS["pdf"] == "application/pdf"

    def test_pdf_is_detected_by_content_whatever_its_name(self):
        assert detect_type(make_pdf(["Hello."]), "notes.txt") == "pdf"
        assert detect_type(make_pdf(["Hello."]), "noextension") == "pdf"

    def test_png_named_pdf_is_refused_naming_the_real_type(self):
        with pytest.raises(UnsupportedType) as excinfo:
            detect_type(PNG_1PX, "report.pdf")
        message = str(excinfo.value)
        assert "image/png" in message
        assert message.startswith("Unsupported file type: image/png.")
        assert "Accepted: PDF, DOCX, Markdown, plain text, HTML." in message

    @pytest.mark.parametrize(
        ("data", "mime"),
        [
            (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
            (b"GIF89a\x01\x00\x01\x00", "image/gif"),
            (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "application/gzip"),
            (b"\x7fELF\x02\x01\x01\x00", "application/x-executable"),
            (b"MZ\x90\x00\x03\x00\x00\x00", "application/x-msdownload"),
        ],
    )
    def test_known_binary_formats_are_refused(self, data, mime):
        with pytest.raises(UnsupportedType, match=mime.replace("+", r"\+")):
            detect_type(data + b"\x00" * 64, "file.txt")

    def test_docx_is_detected_by_content(self):
        assert detect_type(make_docx([(None, "Hi.")]), "upload.bin") == "docx"

    def test_xlsx_like_zip_is_refused_naming_spreadsheet(self):
        with pytest.raises(UnsupportedType, match="spreadsheetml"):
            detect_type(make_xlsx_like(), "book.xlsx")
        # Renaming it does not help.
        with pytest.raises(UnsupportedType, match="spreadsheetml"):
            detect_type(make_xlsx_like(), "book.docx")

    def test_plain_zip_is_refused(self):
        with pytest.raises(UnsupportedType, match="application/zip"):
            detect_type(make_zip({"readme.txt": b"hi"}), "archive.zip")

    def test_text_named_pdf_is_text(self):
        assert detect_type(b"Just some words.\n", "fake.pdf") == "text"

    def test_markdown_by_name_or_by_headings(self):
        assert detect_type(b"Plain words.", "readme.md") == "markdown"
        assert detect_type(b"Plain words.", "readme.markdown") == "markdown"
        assert detect_type(b"Intro\n\n## Setup\n\nSteps.", "notes.txt") == "markdown"
        assert detect_type(b"#hashtag is not a heading", "notes.txt") == "text"

    def test_html_by_doctype_tag_or_name(self):
        assert detect_type(b"<!DOCTYPE html><p>x</p>", "page.txt") == "html"
        assert detect_type(b"  <html><body>x</body></html>", "page") == "html"
        assert detect_type(b"<p>fragment</p>", "page.htm") == "html"
        # Markdown that merely quotes HTML further down stays Markdown.
        assert detect_type(b"# Title\n\nUse `<html>` here.", "doc.md") == "markdown"

    def test_text_starting_with_printable_magic_is_still_text(self):
        assert detect_type(b"MZ Corp annual report.", "report.txt") == "text"

    def test_unknown_binary_is_octet_stream(self):
        with pytest.raises(UnsupportedType, match="application/octet-stream"):
            detect_type(bytes(range(256)), "blob.dat")

    def test_empty_file(self):
        with pytest.raises(ParseError, match="The file is empty."):
            detect_type(b"", "empty.txt")
        with pytest.raises(ParseError, match="The file is empty."):
            parse(b" \n\t\n", "blank.txt")

    def test_utf8_bom_and_utf16_with_bom_are_text(self):
        assert detect_type(b"\xef\xbb\xbfHello.", "a.txt") == "text"
        assert detect_type("Héllo wörld.".encode("utf-16"), "a.txt") == "text"
        assert parse("Héllo wörld.".encode("utf-16"), "a.txt").blocks[0].text == "Héllo wörld."


# ---------------------------------------------------------------------------- screening


class TestScreen:
    def test_returns_the_kind_for_good_files(self):
        assert screen(make_pdf(["Hello."]), "a.pdf") == "pdf"
        assert screen(make_docx([(None, "Hello.")]), "a.docx") == "docx"
        assert screen(b"# T\n\nHello.", "a.md") == "markdown"
        assert screen(make_html("<p>Hello.</p>"), "a.html") == "html"
        assert screen(b"Hello.", "a.txt") == "text"

    def test_pdf_with_javascript_is_refused(self):
        with pytest.raises(UnsafeFile, match="JavaScript"):
            screen(make_pdf(["Hello."], javascript=True), "a.pdf")

    @pytest.mark.parametrize(
        "action",
        [
            b"<< /S /Launch /F (cmd.exe) >>",
            b"<< /S /JavaScript /JS (app.alert(1)) >>",
            b"<< /S /J#61vaScript /J#53 (x) >>",  # hex-escaped names
        ],
    )
    def test_pdf_actions_found_by_byte_scan(self, action):
        data = make_pdf(["Hello."]) + b"\n9 0 obj\n" + action + b"\nendobj\n"
        with pytest.raises(UnsafeFile):
            screen(data, "a.pdf")

    def test_js_hidden_in_compressed_object_stream_is_found(self):
        import zlib

        hidden = zlib.compress(b"<< /S /JavaScript /JS (app.alert(1)) >>")
        data = (
            make_pdf(["Hello."])
            + b"\n9 0 obj\n<< /Type /ObjStm /N 1 /First 0 /Filter /FlateDecode /Length "
            + str(len(hidden)).encode()
            + b" >>\nstream\n"
            + hidden
            + b"\nendstream\nendobj\n"
        )
        with pytest.raises(UnsafeFile):
            screen(data, "a.pdf")

    def test_words_like_jsonify_do_not_trigger_the_scan(self):
        assert screen(make_pdf(["Use /JSON and /Launcher paths."]), "a.pdf") == "pdf"

    def test_corrupt_pdf_passes_screen_and_fails_parse(self):
        data = corrupt_pdf()
        assert screen(data, "broken.pdf") == "pdf"
        with pytest.raises(ParseError, match="damaged or not a PDF"):
            parse(data, "broken.pdf")

    def test_zip_bomb_is_refused_without_inflating(self):
        bomb = zip_bomb_docx()
        assert len(bomb) < 5 * 1024 * 1024
        with pytest.raises(UnsafeFile, match="zip bomb"):
            screen(bomb, "bomb.docx")
        # parse() applies the same limits when called without screen().
        with pytest.raises(UnsafeFile):
            parse(bomb, "bomb.docx")

    def test_docx_name_without_word_document_is_refused(self):
        with pytest.raises(UnsafeFile, match="word/document.xml"):
            screen(make_zip({"[Content_Types].xml": b"<Types/>"}), "fake.docx")

    def test_docx_name_with_broken_zip_is_refused(self):
        with pytest.raises(UnsafeFile, match="damaged"):
            screen(b"PK\x03\x04" + b"garbage" * 100, "fake.docx")

    @pytest.mark.parametrize("name", ["notes.txt", "notes.md", "page.html"])
    def test_nul_bytes_are_refused(self, name):
        with pytest.raises(UnsafeFile, match="NUL"):
            screen(b"hello\x00world", name)

    @pytest.mark.parametrize("name", ["notes.txt", "notes.md", "page.html"])
    def test_invalid_utf8_is_refused(self, name):
        with pytest.raises(UnsafeFile, match="UTF-8"):
            screen("Café crème".encode("latin-1"), name)

    def test_utf16_without_bom_is_refused(self):
        with pytest.raises(UnsafeFile):
            screen("hello".encode("utf-16-le"), "notes.txt")

    def test_unsafe_and_unsupported_are_parse_errors(self):
        assert issubclass(UnsafeFile, ParseError)
        assert issubclass(UnsupportedType, ParseError)


# --------------------------------------------------------------------------------- PDF


class TestPdf:
    def test_pages_sections_and_title(self):
        data = continuity_policy_pdf()
        parsed = parse(data, "policy.pdf")
        assert parsed.kind == "pdf"
        assert parsed.page_count == 2
        assert parsed.title == "Continuity Policy"
        assert sections(parsed.blocks) == ["1 Introduction", "1.2 Scope", "RECOVERY OBJECTIVES"]
        by_text = {block.text: block for block in parsed.blocks}
        assert by_text["This policy sets out how we recover."].page == 1
        # The section carries over the page break.
        carried = by_text["Staff must read it every year. The plan is reviewed by the board."]
        assert (carried.section, carried.page) == ("1.2 Scope", 2)
        assert by_text["Critical systems return within four hours."].page == 2

    def test_no_title_metadata_means_none(self):
        assert parse(make_pdf(["Body text here."]), "a.pdf").title is None

    def test_long_lines_are_unwrapped_into_one_block(self):
        sentence = "Every site keeps a printed copy of the contact list in a sealed envelope. "
        parsed = parse(make_pdf([sentence * 4]), "a.pdf")
        assert [block.text for block in parsed.blocks] == [(sentence * 4).strip()]

    def test_sentence_lines_and_short_fragments_are_not_headings(self):
        parsed = parse(
            make_pdf(["Introduction\nThe Board Approves.\nmore words follow here."]), "a.pdf"
        )
        assert sections(parsed.blocks) == ["Introduction"]

    def test_running_headers_are_dropped(self):
        bodies = ["Alpha starts here.", "Bravo follows.", "Charlie is third.", "Delta ends it."]
        pages = [
            f"ACME CORP CONFIDENTIAL\n{text}\nPage {n} of 4"
            for n, text in enumerate(bodies, start=1)
        ]
        parsed = parse(make_pdf(pages), "a.pdf")
        assert "ACME" not in body(parsed.blocks)
        assert "Page 2 of 4" not in body(parsed.blocks)
        assert [(block.text, block.page) for block in parsed.blocks] == [
            (text, n) for n, text in enumerate(bodies, start=1)
        ]
        assert {block.section for block in parsed.blocks} == {""}

    def test_encrypted_pdf(self):
        with pytest.raises(ParseError) as excinfo:
            parse(make_pdf(["Secret."], encrypt_password="hunter2"), "a.pdf")
        assert str(excinfo.value) == "The PDF is encrypted; upload an unencrypted copy."

    def test_encrypted_with_empty_password_is_read(self):
        parsed = parse(make_pdf(["Open to all."], encrypt_password=""), "a.pdf")
        assert body(parsed.blocks) == "Open to all."

    def test_corrupt_pdf(self):
        with pytest.raises(ParseError) as excinfo:
            parse(corrupt_pdf(), "a.pdf")
        assert str(excinfo.value) == "The PDF could not be read: it is damaged or not a PDF."

    def test_pdf_without_text_layer(self):
        with pytest.raises(ParseError, match="no text layer"):
            parse(make_pdf(["", ""]), "scan.pdf")


# -------------------------------------------------------------------------------- DOCX


class TestDocx:
    def test_headings_become_sections_and_tables_are_body(self):
        data = make_docx(
            [
                ("Title", "Incident Handbook"),
                (None, "Read this first."),
                ("Heading 1", "Roles"),
                (None, "The lead decides."),
                ("Heading 2", "Deputies"),
                (None, "Deputies act when the lead is away."),
            ],
            tables=[[["Role", "Phone"], ["Lead", "555-0100"]]],
        )
        parsed = parse(data, "handbook.docx")
        assert parsed.kind == "docx"
        assert parsed.page_count is None
        assert parsed.title == "Incident Handbook"
        assert [(b.section, b.text) for b in parsed.blocks] == [
            ("Incident Handbook", "Read this first."),
            ("Roles", "The lead decides."),
            ("Deputies", "Deputies act when the lead is away."),
            ("Deputies", "Role | Phone\nLead | 555-0100"),
        ]
        assert all(block.page is None for block in parsed.blocks)
        # Headings are sections, never body.
        assert "Roles" not in body(parsed.blocks)

    def test_list_paragraphs_are_items_and_deeper_levels_join_their_item(self):
        data = make_docx([
            ("Heading 1", "Breach"),
            (None, "The notice must describe:"),
            ("List Bullet", "the nature of the breach;"),
            ("List Number", "the contact point:"),
            ("List Bullet 2", "the DPO;"),
            ("List Bullet 2", "the privacy desk;"),
            ("List Paragraph", "the measures taken."),
            (None, "After the list."),
        ])
        assert [b.text for b in parse(data, "notice.docx").blocks] == [
            "The notice must describe:",
            "- the nature of the breach;",
            "- the contact point: the DPO; the privacy desk;",
            "- the measures taken.",
            "After the list.",
        ]

    def test_core_property_title_wins(self):
        data = make_docx([("Heading 1", "First Heading"), (None, "Text.")], title="Core Title")
        assert parse(data, "a.docx").title == "Core Title"

    def test_title_falls_back_to_first_heading_1(self):
        data = make_docx([(None, "Before."), ("Heading 1", "First Heading"), (None, "Text.")])
        parsed = parse(data, "a.docx")
        assert parsed.title == "First Heading"
        assert parsed.blocks[0].section == ""

    def test_damaged_docx(self):
        data = make_zip({"word/document.xml": b"<not-xml", "[Content_Types].xml": b"<Types/>"})
        with pytest.raises(ParseError, match="could not be read"):
            parse(data, "a.docx")

    def test_docx_without_text(self):
        with pytest.raises(ParseError, match="no readable text"):
            parse(make_docx([("Heading 1", "Only A Heading")]), "a.docx")


# ---------------------------------------------------------------------------- Markdown


class TestMarkdown:
    SOURCE = (
        b"# Runbook\n\n"
        b"Intro with a [link](https://example.com) and **bold**, *em*, _under_ and `code_x`.\n"
        b"Wrapped line continues; snake_case_name stays.\n\n"
        b"## Restore\n\n"
        b"> Quoted advice.\n\n"
        b"- first step\n- second step\n\n"
        b"```bash\n# not a heading\nrestore --all\n```\n\n"
        b"### Verify\n\nCheck logs.\n"
    )

    def test_sections_title_and_blocks(self):
        parsed = parse(self.SOURCE, "runbook.md")
        assert parsed.kind == "markdown"
        assert parsed.title == "Runbook"
        assert parsed.page_count is None
        assert [(b.section, b.text) for b in parsed.blocks] == [
            (
                "Runbook",
                "Intro with a link and bold, em, under and code_x. "
                "Wrapped line continues; snake_case_name stays.",
            ),
            ("Restore", "Quoted advice."),
            ("Restore", "- first step\n- second step"),
            ("Restore", "# not a heading\nrestore --all"),
            ("Verify", "Check logs."),
        ]

    def test_a_nested_list_joins_the_item_it_belongs_to(self):
        source = (b"## Severity\n\nChoose the level using the criteria below.\n\n"
                  b"- **SEV1:** any one of the following:\n"
                  b"  - a complete outage;\n"
                  b"  - more than 500 customers\n    affected.\n"
                  b"- **SEV2:** degraded service.\n"
                  b"1. Numbered step\n   * with a detail\n")
        assert [b.text for b in parse(source, "policy.md").blocks] == [
            "Choose the level using the criteria below.",
            "- SEV1: any one of the following: a complete outage; more than 500 customers "
            "affected.\n- SEV2: degraded service.\n1. Numbered step with a detail",
        ]

    def test_text_before_first_heading_has_empty_section(self):
        parsed = parse(b"Preface.\n\n## Later\n\nBody.", "a.md")
        assert [b.section for b in parsed.blocks] == ["", "Later"]
        assert parsed.title is None

    def test_setext_headings(self):
        parsed = parse(b"Guide\n=====\n\nBody one.\n\nPart Two\n--------\n\nBody two.", "a.md")
        assert parsed.title == "Guide"
        assert [(b.section, b.text) for b in parsed.blocks] == [
            ("Guide", "Body one."),
            ("Part Two", "Body two."),
        ]


# -------------------------------------------------------------------------------- HTML


class TestHtml:
    def test_sections_title_and_dropped_content(self):
        data = make_html(
            "<h1>Policy</h1><p>Para &amp; one.</p>"
            "<script>var secret = 1;</script><style>p { color: red }</style>"
            "<noscript>Enable JS</noscript><template><p>Hidden</p></template>"
            "<h2>Details</h2><div>Div text</div><ul><li>Item one</li><li>Item two</li></ul>"
            "<table><tr><th>Key</th><th>Value</th></tr><tr><td>RTO</td><td>4h</td></tr></table>"
            "<pre>line 1\n  line 2</pre>",
            title="Page Title",
        )
        parsed = parse(data, "page.html")
        assert parsed.kind == "html"
        assert parsed.title == "Page Title"
        assert [(b.section, b.text) for b in parsed.blocks] == [
            ("Policy", "Para & one."),
            ("Details", "Div text"),
            ("Details", "- Item one"),
            ("Details", "- Item two"),
            ("Details", "Key | Value"),
            ("Details", "RTO | 4h"),
            ("Details", "line 1\n  line 2"),
        ]
        text = body(parsed.blocks)
        for dropped in ("secret", "color", "Enable JS", "Hidden"):
            assert dropped not in text

    def test_list_items_are_written_as_markdown_items_with_nested_lists_joined(self):
        data = make_html(
            "<h2>Notification</h2><p>The notification should describe:</p>"
            "<ol start='2'><li><p>the nature of the breach;</p></li>"
            "<li>the contact point:<ul><li>the DPO;</li><li>the privacy desk;</li></ul></li>"
            "<li>the measures taken.</li></ol><p>After the list.</p>"
            "<ul><li>Loose item</li></ul>"
        )
        assert [b.text for b in parse(data, "notice.html").blocks] == [
            "The notification should describe:",
            "2. the nature of the breach;",
            "3. the contact point: the DPO; the privacy desk;",
            "4. the measures taken.",
            "After the list.",
            "- Loose item",
        ]

    def test_items_left_open_are_closed_by_the_next_item_or_the_list_end(self):
        data = make_html("<p>Bring:</p><ul><li>the plan<li>the contact list<ul><li>staff"
                         "<li>vendors</ul><li>the keys</ul><p>Then leave.</p><li>stray</li>")
        assert [b.text for b in parse(data, "kit.html").blocks] == [
            "Bring:", "- the plan", "- the contact list staff vendors", "- the keys",
            "Then leave.", "- stray"]

    def test_title_falls_back_to_first_h1(self):
        parsed = parse(make_html("<p>Intro.</p><h1>Main Heading</h1><p>Body.</p>"), "a.html")
        assert parsed.title == "Main Heading"
        assert [b.section for b in parsed.blocks] == ["", "Main Heading"]


# -------------------------------------------------------------------------- plain text


class TestPlainText:
    def test_paragraphs_and_heading_like_lines(self):
        data = (
            b"Preface line one\nwrapped.\n\n"
            b"INTRODUCTION\nThe intro.\n\n"
            b"Scope\n=====\nScope body.\n- item a\n- item b\n"
        )
        parsed = parse(data, "notes.txt")
        assert parsed.kind == "text"
        assert parsed.title is None
        assert parsed.page_count is None
        assert [(b.section, b.text) for b in parsed.blocks] == [
            ("", "Preface line one wrapped."),
            ("INTRODUCTION", "The intro."),
            ("Scope", "Scope body.\n- item a\n- item b"),
        ]

    def test_lettered_items_keep_their_own_lines(self):
        data = (b"Approval\n\nRequests are approved as follows:\n(a) the custodian lists\n"
                b"the samples;\nb) the manager approves;\n(iv) the head signs.\n(2) Filed.\n")
        assert parse(data, "sop.txt").blocks[-1].text == (
            "Requests are approved as follows:\n(a) the custodian lists the samples;\n"
            "b) the manager approves;\n(iv) the head signs.\n(2) Filed.")

    def test_crlf_is_normalised(self):
        parsed = parse(b"One.\r\n\r\nTwo.\r\n", "a.txt")
        assert [b.text for b in parsed.blocks] == ["One.", "Two."]
