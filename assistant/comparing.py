"""The comparison of a cross-category answer (API.md 12), as the extractive model writes it,
and the reading of a comparison table back (for the post-check figures of `compare_eval`).

The sources of every category arrive labelled `code:n` (n = the source's number in that
category's answer). Each quotable sentence is read for the figures a compliance reader
compares across jurisdictions: deadlines, frequencies, thresholds, retention periods, who
must be told and who approves. For every such point, the sentence of each category that is
closest to the question and states it is aligned with the others; a point two or more
categories state becomes a row of the table, each cell giving the figure in bold as the
source writes it, a few words of that sentence, and the source's label. Whether the
categories agree is decided on the figures brought to one scale (hours, times a year, the
role's name), not on the wording. Sentences are parsed and scored by the extractive
model's own functions (assistant/providers/extractive/), so a comparison weighs a sentence
as that category's answer does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from assistant.providers.base import GenerationRequest, SourceText
from assistant.providers.extractive.scoring import _idf, _meaning, _query_weights, _scores
from assistant.providers.extractive.units import _source_units
from knowledge.text import stem

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90, "hundred": 100,
}
NUM = r"(?:\d[\d,]*(?:\.\d+)?|" + "|".join(_NUMBER_WORDS) + r")"
UNIT = r"(?:minutes?|hours?|(?:business |working |calendar )?days?|weeks?|months?|years?)"
DURATION = rf"{NUM}[\s-]+{UNIT}"
# What a threshold counts ("more than 50,000 individuals", "more than 30 minutes").
COUNTED = (r"(?:business |working |calendar )?(?:minutes?|hours?|days?|weeks?|months?|years?)|"
           r"consumers?|residents?|individuals?|people|persons?|customers?|employees?|staff|"
           r"participants?|subjects?|patients?|sites?|batches|records?|requests?|deviations?|"
           r"transactions?|users?|children|households?|devices?")
_HOURS = {"minute": 1 / 60, "hour": 1, "day": 24, "week": 168, "month": 730, "year": 8760}

ROLES = sorted("""
board of directors|board|senior management|management body|chief executive officer|
chief executive|ceo|chief information security officer|ciso|chief risk officer|
data protection officer|dpo|lead supervisory authority|supervisory authority|sector regulator|
regulators|regulator|competent authority|authorities|authority|attorney general|
law enforcement|data subjects|data subject|individuals|consumers|consumer|customers|
parents|trial participants|participants|subjects|sponsors|sponsor|principal investigator|
investigators|investigator|ethics committee|institutional review board|irb|quality unit|
quality assurance|qualified person|head of quality|steering committee|risk committee|
audit committee|data monitoring committee|safety committee|committee|incident manager|
compliance function|compliance officer|compliance|controller|processors|processor|
service provider|vendors|vendor|crisis management team|business owner|process owner|
system owner|medical monitor|monitor|employees|staff
""".replace("\n", "").split("|"), key=len, reverse=True)
ROLE = r"\b(?:" + "|".join(re.escape(role) for role in ROLES if role) + r")\b"


@dataclass(frozen=True)
class Topic:
    key: str
    label: str  # the row's name
    asked: re.Pattern  # the question asks about this point
    context: re.Pattern | None  # the sentence must say this for the figure to count
    figure: re.Pattern  # the figure itself, as the source writes it
    after_context: bool = False  # the figure is looked for after the context match


def _re(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.I)


TOPICS = (
    Topic("retention", "Records kept for",
          _re(r"\b(?:retain|retention|keep|kept|archiv|delet|how long\b.*\b(?:stored|held|"
              r"records?|files?))"),
          _re(r"\b(?:retain(?:ed|s)?|keep|kept|stored?|preserved?|archived?)\b"),
          _re(rf"\b(?:(?:for )?(?:at least|a minimum of|up to|no more than|no longer than) )?"
              rf"{DURATION}\b")),
    Topic("frequency", "How often",
          _re(r"\b(?:how often|frequen|interval|annual|periodic|cycle|regularly|every)"),
          None,
          _re(rf"\b(?:(?:at least )?(?:annually|semi-annually|biannually|quarterly|monthly|"
              rf"weekly|daily|yearly)|(?:at least )?(?:once|twice|{NUM} times?) (?:a|per|each|"
              rf"every) (?:year|month|quarter|week|day)|(?:at least )?every (?:{NUM} )?"
              rf"(?:years?|months?|quarters?|weeks?|days?|hours?)|(?:at least )?{NUM}"
              rf"(?: [a-z-]+){{0,3}} (?:per|each) (?:year|month|quarter))\b")),
    Topic("deadline", "Deadline",
          _re(r"\b(?:how (?:quickly|soon|fast)|deadline|when|within|timeline|time limit|"
              r"how many (?:hours|days)|respond|how long (?:do|does|have))"),
          None,
          _re(rf"\b(?:(?:within|no later than|not later than|in under|inside) (?:the first )?"
              rf"{DURATION}|between {NUM} and {DURATION}(?: (?:after|of|from) [a-z]+)?|"
              rf"{DURATION} (?:after|of|from|following) (?:discovery|detection|becoming aware|"
              rf"identification|receipt|the [a-z]+)|without (?:undue|unreasonable) delay|"
              rf"immediately|as soon as (?:possible|practicable))\b")),
    Topic("threshold", "Threshold",
          _re(r"\b(?:threshold|what counts|trigger|how many|minimum|more than|at least|"
              r"criteria|qualif|size|apply|applies)"),
          None,
          _re(rf"(?:\b(?:no more than|more than|less than|fewer than|at least|over|above|below|"
              rf"exceeding|exceeds?|up to|at most|a minimum of|a maximum of) {NUM}"
              rf"(?: ?%| percent)?"
              rf"(?: (?:{COUNTED}))?\b|\b{NUM} ?(?:%|percent)\b|\b{NUM} (?:{COUNTED}) or "
              rf"(?:less|more|fewer|longer)\b)")),
    Topic("told", "Who must be told",
          _re(r"\b(?:who (?:must|should|do|does|is|are) (?:be )?(?:told|notified|informed)|"
              r"whom|notif|inform|tell|told|escalat|communicat|alert)"),
          _re(r"\b(?:notif(?:y|ies|ied|ying|ication to)|inform(?:s|ed|ing)?|tell|tells|"
              r"alert(?:s|ed)?|report(?:s|ed|ing)?(?: [a-z-]+){0,4} to|escalat(?:e|es|ed|ing)"
              r"(?: [a-z-]+){0,4} to|submit(?:s|ted)?(?: [a-z-]+){0,4} to|communicate with)\b"),
          _re(ROLE), after_context=True),
    Topic("approves", "Who approves",
          _re(r"\b(?:approv|sign[- ]?off|signs? off|who (?:decides|signs|authori)|authori[sz]|"
              r"endorse)"),
          _re(r"\b(?:approv(?:e|es|ed|al|ing)|sign(?:s|ed)?[- ]off|endorse(?:s|d)?|"
              r"authori[sz](?:e|es|ed|ation))\b"),
          _re(ROLE)),
)
MAX_ROWS = 5
RELEVANT_SHARE = 0.4
MAX_NOTES = 3
CELL_WORDS = 26
NOT_STATED = "Not stated"


@dataclass(frozen=True)
class Finding:
    """One category's figure for one point: where it is and how well it fits the question."""

    code: str
    number: int
    figure: str
    sentence: str
    score: float


def _label(source: SourceText) -> tuple[str, int]:
    code, _, number = source.label.rpartition(":")
    return code, int(number)


def _figure(topic: Topic, sentence: str, taken: list[tuple[int, int]]) -> re.Match | None:
    """The topic's figure in `sentence` that no earlier point claimed (spans in `taken`); one
    with a number ("within 72 hours") wins over one without ("without undue delay")."""
    start = 0
    if topic.context is not None:
        context = topic.context.search(sentence)
        if context is None:
            return None
        start = context.end() if topic.after_context else 0
    candidates = [m for m in topic.figure.finditer(sentence, start) if _free(m, taken)]
    if topic.after_context and not candidates:  # the role named before the verb
        candidates = [m for m in topic.figure.finditer(sentence, 0, start) if _free(m, taken)]
    numeric = [m for m in candidates if re.search(NUM, m.group(0), re.I)]
    return (numeric or candidates or [None])[0]


def _free(match: re.Match, taken: list[tuple[int, int]]) -> bool:
    return not any(a < match.end() and match.start() < b for a, b in taken)


def _findings(request: GenerationRequest, topics: list[Topic]
              ) -> dict[str, dict[str, Finding]]:
    """{topic key: {category code: its best finding}}. Sentences are scored as the
    category's own answer scores them (terms, meaning, quantities); only those within
    RELEVANT_SHARE of the category's best count, so a figure far from the question does not
    stand for it."""
    found: dict[str, dict[str, Finding]] = {}
    for code, _ in request.categories:
        sources = [s for s in request.sources if _label(s)[0] == code]
        if not sources:
            continue
        scored = _unit_scores(request, sources)
        best = max(scored.values(), default=0.0)
        for (unit, score) in scored.items():
            if score <= 0 or score < RELEVANT_SHARE * best:
                continue
            sentence = f"{unit.intro} {unit.text}" if unit.intro else unit.text
            number = _label(sources[unit.source])[1]
            taken: list[tuple[int, int]] = []
            for topic in TOPICS:
                match = _figure(topic, sentence, taken)
                if match is None:
                    continue
                taken.append(match.span())
                if topic not in topics:
                    continue
                kept = found.setdefault(topic.key, {}).get(code)
                if kept is None or score > kept.score:
                    found[topic.key][code] = Finding(code, number, match.group(0).strip(),
                                                     sentence, score)
    return found


def _unit_scores(request: GenerationRequest, sources: list[SourceText]) -> dict:
    """Each quotable unit of one category's sources with the score its answer gives it."""
    own = replace(request, sources=sources, task="answer")
    units = [unit for index, source in enumerate(sources)
             for unit in _source_units(index, source)]
    if not units:
        return {}
    return _scores(own, units, _query_weights(own), _idf(units), _meaning(own, units))


def _scale(topic: str, figure: str) -> str:
    """The figure on one scale, to tell agreement from difference."""
    text = figure.lower()
    number = re.search(NUM, text)
    value = None
    if number is not None:
        raw = number.group(0).replace(",", "")
        value = float(_NUMBER_WORDS.get(raw, raw)) if raw in _NUMBER_WORDS or \
            re.fullmatch(r"\d+(?:\.\d+)?", raw) else None
    if topic in ("deadline", "retention") and value is not None:
        unit = re.search(r"(minute|hour|day|week|month|year)", text)
        if unit:
            return f"{value * _HOURS[unit.group(1)]:g}h"
    if topic == "frequency":
        return f"{_per_year(text, value):g}/y"
    if topic in ("told", "approves"):
        return " ".join(stem(word) for word in text.split())
    return " ".join(text.split())


def _per_year(text: str, value: float | None) -> float:
    for word, times in (("daily", 365), ("weekly", 52), ("monthly", 12), ("quarterly", 4),
                        ("semi-annually", 2), ("biannually", 2), ("annually", 1),
                        ("yearly", 1), ("twice", 2), ("once", 1)):
        if word in text:
            unit = re.search(r"(year|month|quarter|week|day)", text)
            base = {"year": 1, "month": 12, "quarter": 4, "week": 52, "day": 365}
            return times if word not in ("twice", "once") or unit is None else \
                times * base[unit.group(1)]
    unit = re.search(r"(hour|day|week|month|quarter|year)", text)
    if unit is None:
        return 0
    per_year = {"hour": 8760, "day": 365, "week": 52, "month": 12, "quarter": 4, "year": 1}
    if text.startswith("every") or " every " in f" {text}":
        return per_year[unit.group(1)] / (value or 1)
    return per_year[unit.group(1)] * (value or 1)


def _clip(sentence: str, figure: str) -> str:
    """A few words of the sentence around its figure."""
    words = sentence.split()
    if len(words) <= CELL_WORDS:
        return sentence
    at = len(sentence[:max(0, sentence.find(figure))].split())
    start = max(0, min(at - CELL_WORDS // 3, len(words) - CELL_WORDS))
    clipped = " ".join(words[start:start + CELL_WORDS])
    return ("…" if start else "") + clipped + ("…" if start + CELL_WORDS < len(words) else "")


def _cell(finding: Finding | None) -> str:
    if finding is None:
        return NOT_STATED
    text = _clip(finding.sentence, finding.figure).replace("|", "/")
    return f"**{finding.figure}**: {text} [{finding.code}:{finding.number}]"


def compose_comparison(request: GenerationRequest) -> str:
    """The comparison's Markdown (pure function of the request)."""
    codes = [code for code, _ in request.categories]
    names = dict(request.categories)
    covered = [code for code in codes
               if any(_label(s)[0] == code for s in request.sources)]
    if len(covered) < 2:
        return nothing_to_compare([names[c] for c in covered], list(names.values()))
    asked = [topic for topic in TOPICS if topic.asked.search(request.question)]
    topics = asked or list(TOPICS)
    found = _findings(request, topics)
    rows = [(topic, found.get(topic.key, {})) for topic in topics]
    shared = [(t, f) for t, f in rows if sum(1 for c in covered if c in f) >= 2]
    shared.sort(key=lambda row: -sum(f.score for f in row[1].values()))
    shared = shared[:MAX_ROWS]
    if not shared:
        return "\n".join([_without_figures(request, covered, names),
                          *_one_sided(rows, covered, names)])
    header = ["Point", *(names[c] for c in codes), "Agree or differ"]
    lines = [_row(header), _row(["---"] * len(header))]
    differ: list[str] = []
    for topic, findings in shared:
        scales = {_scale(topic.key, findings[c].figure) for c in codes if c in findings}
        verdict = "Agree" if len(scales) == 1 and all(c in findings for c in codes) else "Differ"
        if verdict == "Differ":
            differ.append(topic.label.lower())
        lines.append(_row([topic.label, *(_cell(findings.get(c)) for c in codes), verdict]))
    lead = (f"{_joined([names[c] for c in codes])} side by side, each figure as its own "
            "sources state it:")
    points = f"{len(shared)} point{'s' if len(shared) > 1 else ''}"
    summary = (f"They differ on {len(differ)} of {points} ({', '.join(differ)})."
               if differ else f"They agree on the {points} compared.")
    return "\n".join([lead, "", *lines, "", summary, *_one_sided(rows, covered, names)])


def _one_sided(rows, covered: list[str], names: dict[str, str]) -> list[str]:
    """Points the question asks about that only one category's sources state."""
    notes = []
    for topic, findings in rows:
        present = [c for c in covered if c in findings]
        if len(present) == 1:
            finding = findings[present[0]]
            notes.append(f"- {topic.label}: stated only for {names[present[0]]}, "
                         f"**{finding.figure}** [{finding.code}:{finding.number}].")
    return ["", *notes[:MAX_NOTES]] if notes else []


def _without_figures(request: GenerationRequest, covered: list[str],
                     names: dict[str, str]) -> str:
    """No point with a figure in two categories: each one's closest sentence, side by side."""
    best: dict[str, tuple[str, int]] = {}
    for code in covered:
        sources = [s for s in request.sources if _label(s)[0] == code]
        scored = _unit_scores(request, sources)
        if scored:
            unit = max(scored, key=scored.get)
            best[code] = (unit.text, _label(sources[unit.source])[1])
    codes = [code for code, _ in request.categories]
    header = ["Point", *(names[c] for c in codes), "Agree or differ"]
    cells = [f"{_clip(best[c][0], '')} [{c}:{best[c][1]}]".replace("|", "/") if c in best
             else NOT_STATED for c in codes]
    return "\n".join([
        "The sources state no deadline, frequency, threshold or role that can be set side by "
        "side; what each says closest to the question:", "",
        _row(header), _row(["---"] * len(header)),
        _row(["What the sources say", *cells, "No figure to compare"])])


def _joined(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def nothing_to_compare(covered: list[str], names: list[str]) -> str:
    if not covered:
        return (f"None of the libraries compared ({', '.join(names)}) covers this question, "
                "so there is nothing to compare and no credits were charged.")
    return (f"Only the {covered[0]} library covers this question; the others have no grounded "
            "answer (and were not charged), so there is nothing to compare it with. See each "
            "category's answer.")


# --- Reading a comparison back --------------------------------------------------------------
LABELLED = re.compile(r"\[([A-Za-z0-9_-]+)\s*:\s*(\d+)\]")
BOLD = re.compile(r"\*\*(.+?)\*\*")


def table_rows(text: str, codes: list[str]) -> list[dict[str, str]]:
    """The table's rows as {category code: cell}, header and separator left out. Columns are
    taken in order: Point, one per category, then the verdict."""
    rows = []
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) >= len(codes) + 1:
            rows.append(dict(zip(codes, cells[1:1 + len(codes)])))
    return rows
