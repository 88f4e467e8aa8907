"""HTML: visible text by block element (html.parser); h1-h6 give the sections, nested by
level; scripts, styles and embedded objects are skipped.
"""

from __future__ import annotations

from html.parser import HTMLParser

from knowledge.parsing.common import Block, Outline, ParseError, Parsed, clean

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
        self.outline = Outline()
        self.title: str | None = None
        self.first_h1: str | None = None
        self._skip_stack: list[str] = []
        self._in_title = False
        self._title_parts: list[str] = []
        self._heading: str | None = None
        self._heading_parts: list[str] = []
        self._pre_depth = 0
        self._buffer: list[str] = []
        # Open lists, innermost last, each [next number (None for <ul>), whether an item of
        # it is open]. An item is written as Markdown writes it ("- ...", "3. ..."), so an
        # introduction keeps its list; a nested list's items join their outer item's text.
        self._lists: list[list] = []

    def _flush(self) -> None:
        raw = "".join(self._buffer)
        self._buffer = []
        if self._pre_depth:
            text = "\n".join(line.rstrip() for line in raw.strip("\n").split("\n"))
        else:
            text = " | ".join(part for part in (clean(p) for p in raw.split("\x1f")) if part)
        if text.strip():
            self.blocks.append(self.outline.block(text))

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
        elif tag in ("ul", "ol"):
            if not self._open_items():
                self._flush()
            self._lists.append([_ordered_start(attrs) if tag == "ol" else None, False])
        elif tag == "li":
            if not self._lists:  # an item outside any list
                self._lists.append([None, False])
            if self._lists[-1][1]:  # "<li>a<li>b": the next item closes the one before
                self._close_item()
            self._lists[-1][1] = True
            if self._open_items() > 1:
                self._buffer.append(" ")
            else:
                self._flush()
                self._buffer.append(self._marker())
        elif tag in _HTML_BLOCKS:
            self._end_block()
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
                self.title = clean("".join(self._title_parts)) or None
            self._in_title = False
            return
        if tag in _HTML_HEADINGS and self._heading is not None:
            heading = clean("".join(self._heading_parts))
            if heading:
                self.outline.enter(int(self._heading[1]), heading)
                if self._heading == "h1" and self.first_h1 is None:
                    self.first_h1 = heading
            self._heading = None
        elif tag == "pre":
            self._flush()
            self._pre_depth = max(0, self._pre_depth - 1)
        elif tag in ("ul", "ol"):
            if self._lists:
                if self._lists[-1][1]:
                    self._close_item()
                self._lists.pop()
            if not self._open_items():
                self._flush()
        elif tag == "li":
            if self._lists and self._lists[-1][1]:
                self._close_item()
        elif tag in _HTML_BLOCKS:
            self._end_block()

    def _open_items(self) -> int:
        return sum(1 for _, open_item in self._lists if open_item)

    def _end_block(self) -> None:
        """A block ends: its own paragraph, or, inside a list item, just a space (a paragraph
        inside an item is still the item)."""
        if self._open_items():
            self._buffer.append(" ")
        else:
            self._flush()

    def _close_item(self) -> None:
        self._lists[-1][1] = False
        self._end_block()

    def _marker(self) -> str:
        number = self._lists[-1][0]
        if number is None:
            return "- "
        self._lists[-1][0] = number + 1
        return f"{number}. "

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


def _ordered_start(attrs: list[tuple[str, str | None]]) -> int:
    start = dict(attrs).get("start") or "1"
    return int(start) if start.strip().isdigit() else 1


def parse_html(text: str) -> Parsed:
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
