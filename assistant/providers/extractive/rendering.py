"""The Markdown of an answer: the lead sentence, per source and section a bold heading and its
quotes with their markers, and in advisory mode the "What to do" steps."""

from __future__ import annotations

from collections import Counter
from itertools import groupby

from assistant.providers.base import SourceText
from assistant.providers.extractive.units import _inline, _list_key, _Unit
from assistant.suggestions import document_name


def _cite(text: str, number: int) -> str:
    """The sentence with its marker before the final full stop: "... 30 days [2]."."""
    body = text.rstrip().rstrip(".;,:").rstrip()
    if body.endswith(("?", "!")):
        return f"{body} [{number}]"
    return f"{body} [{number}]."


def _standalone(unit: _Unit) -> str:
    """A list item that starts mid-sentence ("the objectives and ...") needs its intro."""
    if unit.intro and unit.text[:1].islower():
        return f"{unit.intro} {unit.text}"
    return unit.text


def _runs(units: list[_Unit]) -> list[tuple[str, list[str]]]:
    """Pieces to cite, as (sentence, list items): a list's items stay with their
    introduction."""
    pieces: list[tuple[str, list[str]]] = []
    index = 0
    while index < len(units):
        unit = units[index]
        key = _list_key(unit)
        if key is None:
            pieces.append((unit.text, []))
            index += 1
            continue
        index += 1 if unit.opens_list else 0
        items = []
        while index < len(units) and units[index].intro == key:
            items.append(units[index].text.rstrip(" .;,"))
            index += 1
        pieces.append((key, items))
    return pieces


def _heading(source: SourceText, heading: str = "", *, with_title: bool = True) -> str:
    """"Title — Section"; a further section of a document already named is just "Section"."""
    title = _inline(source.title) or "Untitled source"
    section = _inline(heading or source.section)
    if not section or section.lower() == title.lower():
        label = title
    else:
        label = f"{title} — {section}" if with_title else section
    if source.page is not None:
        label += f" (p. {source.page})"
    return f"**{label}**"


def _quote(sentence: str, items: list[str], number: int, mode: str) -> str:
    if not items:
        return _cite(sentence, number)
    if mode == "advisory":  # prose: "The report should include: a; b; c [1]."
        return _cite(f"{sentence} {'; '.join(items)}", number)
    lines = [sentence.rstrip()] + [f"  - {item};" for item in items[:-1]]
    return "\n".join([*lines, f"  - {_cite(items[-1], number)}"])


def _lead_order(sources: list[SourceText], chosen: list[_Unit], scores: dict[_Unit, float]
                ) -> list[int]:
    """Source indexes, those of the document whose quoted sentences score best first: the
    answer leads with the document that answers, not with the one retrieval ranked first."""
    weight: Counter[str] = Counter()
    for unit in chosen:
        weight[sources[unit.source].title] += scores.get(unit, 0.0)
    return sorted(range(len(sources)), key=lambda i: (-weight[sources[i].title], i))


def _source_blocks(sources: list[SourceText], chosen: list[_Unit], mode: str,
                   order: list[int] | None = None) -> list[str]:
    """Per source (in `order`), per heading inside it (a source widened to its neighbouring
    sections quotes each under its own heading), the chosen sentences in document order."""
    blocks = []
    titled: set[str] = set()  # documents already named in a heading
    for index in (range(len(sources)) if order is None else order):
        source = sources[index]
        units = sorted((u for u in chosen if u.source == index), key=lambda u: u.position)
        for heading, group in groupby(units, key=lambda u: u.heading):
            cited = [_quote(text, items, source.number, mode) for text, items in _runs(list(group))]
            if mode == "advisory":
                body = " ".join(cited)  # interpretive guidance reads as prose
            else:
                body = "\n".join(f"- {sentence}" for sentence in cited)  # each rule quoted
            label = _heading(source, heading, with_title=source.title not in titled)
            titled.add(source.title)
            blocks.append(f"{label}\n{body}")
    return blocks


def _lead(sources: list[SourceText], chosen: list[_Unit], mode: str, matched: bool) -> str:
    """One sentence before the quotes. It names the documents quoted, never a paraphrase of
    the question: a rephrased question reads badly as often as not ("what the guidance says
    about the regulator and to customers"), and a follow-up would repeat the earlier one."""
    if not matched:
        return ("None of the retrieved passages answers this directly; the closest source "
                "opens as follows.")
    cited = sorted({unit.source for unit in chosen})
    titles = list(dict.fromkeys(_inline(sources[i].title) for i in cited))
    count = len(cited)
    quoted = f"{count} source{'s' if count != 1 else ''}"
    if len(titles) == 1 and titles[0]:
        guidance = document_name(titles[0])
    else:
        guidance = "the cited guidance"
        quoted += f" in {len(titles)} documents" if len(titles) > 1 else ""
    if mode == "advisory":
        return (f"Here is how {guidance} bears on this, drawn from {quoted}, with practical "
                "steps at the end.")
    return f"Here is what {guidance} says on this, quoted from {quoted}."


NO_SOURCES_TEXT = (
    "No passage in the selected library covers this question, so there is nothing to quote "
    "or cite. Try rephrasing it, naming the specific rule or process, or widening the "
    "knowledge scope."
)
