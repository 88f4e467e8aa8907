"""Measures comparisons on knowledge/eval/compare.json (the `compare_eval` command).

Each question runs through the real comparison path (retrieve every category, answer each as
/v1/query/ does, write the comparison, post-check its markers) without an organization's
credits. Three shares are reported, over the comparison text a client receives:
- valid markers: `[code:n]` markers whose category was compared and answered and whose n is
  one of that answer's sources (a bare `[n]` in the comparison counts as invalid), together
  with the `[n]` markers of every answer against its own sources;
- rows fully cited: table rows in which every category's cell cites a source of its own
  category;
- figures found: cells whose bold figure (number, duration, role) appears in the text of the
  source the cell cites (case, emphasis and spacing ignored).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

from assistant import selectors
from assistant.comparing import BOLD, LABELLED, table_rows
from assistant.comparisons import Comparing, CompareRequest
from assistant.evaluation import EVAL_DIR, normal

QUESTIONS = EVAL_DIR / "compare.json"
BARE_MARKER = re.compile(r"(?<![\w:])\[(\d+(?:\s*,\s*\d+)*)\]")
TARGETS = {"markers_valid": 1.0, "rows_cited": 0.9, "figures_found": 0.9}


def run(question: dict, *, model_id: str | None = None, mode: str = "compliance") -> Comparing:
    """One comparison drafted whole (answers and comparison), nothing stored or charged."""
    categories = [selectors.domain_category_get(question["domain"], code)[1]
                  for code in question["categories"]]
    acting = SimpleNamespace(organization=None, user=None, api_key=None)
    comparing = Comparing(CompareRequest(
        acting=acting, question=question["question"], domain=categories[0].domain,
        categories=categories, mode=question.get("mode", mode),
        model=selectors.model_get(model_id), stream=False, scope="public", max_sources=5))
    comparing.retrieve()
    comparing.draft()
    return comparing


def measure(comparing: Comparing) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    texts = {}  # (code, n) -> the text of the passage the answer cites as n
    for part in comparing.answered():
        for number, source in enumerate(part.labelled_sources(), start=1):
            texts[(part.category.code, number)] = normal(source.text)
        for match in re.finditer(r"\[(\d+)\]", part.text):
            counts["markers"] += 1
            counts["markers_valid"] += 1 <= int(match[1]) <= len(part.sources)
    text = comparing.comparison
    for code, number in LABELLED.findall(text):
        counts["markers"] += 1
        counts["markers_valid"] += (code, int(number)) in texts
    counts["markers"] += len(BARE_MARKER.findall(text))  # a bare [n] points nowhere here
    codes = [p.category.code for p in comparing.parts]
    for row in table_rows(text, codes):
        counts["rows"] += 1
        cited = [[(c, int(n)) for c, n in LABELLED.findall(cell) if c == code]
                 for code, cell in row.items()]
        counts["rows_cited"] += all(cites and all(k in texts for k in cites) for cites in cited)
        for cites, cell in zip(cited, row.values()):
            figure = BOLD.search(cell)
            if figure is None or not cites:
                continue
            counts["figures"] += 1
            counts["figures_found"] += any(normal(figure[1]) in texts.get(k, "") for k in cites)
    counts["comparisons_with_table"] += bool(table_rows(text, codes))
    counts["comparisons_with_figures"] += any(BOLD.search(cell) for row in table_rows(
        text, codes) for cell in row.values())
    counts["categories_insufficient"] += len(comparing.parts) - len(comparing.answered())
    return counts


def evaluate(questions: list[dict], *, model_id: str | None = None) -> dict:
    """{"all": figures, <domain>: figures} with each share and its counts."""
    by_domain: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for question in questions:
        counts = measure(run(question, model_id=model_id))
        for key in ("all", question["domain"]):
            by_domain[key]["questions"] += 1
            for name, value in counts.items():
                by_domain[key][name] += value
    return {key: _shares(counts) for key, counts in by_domain.items()}


def _shares(counts: dict[str, int]) -> dict:
    result = dict(counts)
    for name, whole in (("markers_valid", "markers"), ("rows_cited", "rows"),
                        ("figures_found", "figures")):
        result[f"{name}_share"] = counts[name] / counts[whole] if counts[whole] else None
    return result


def load(path: Path | str = QUESTIONS) -> list[dict]:
    import json

    return json.loads(Path(path).read_text(encoding="utf-8"))
