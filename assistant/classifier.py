"""The `auto` mode classifier: decides whether a question is `compliance` or `advisory`.

The rule is deliberately transparent so an operator can read why a question was routed:

* Each mode has a table of weighted cue patterns (regular expressions over the lowercased
  question). A question's score for a mode is the sum of the weights of the cues that match;
  each cue counts once however often it occurs.
* `compliance` cues ask what the rule says: obligation words (must, required, mandatory,
  obliged), limits and deadlines (how long, how often, within how many, maximum), "what does
  the guidance say", and yes/no questions about a duty ("Is ...", "Are we ...", "Does ...").
* `advisory` cues ask how to act: "how should we", "best way", "recommend", "approach",
  "prioritise", "worth", "better", tips, and context-setting openers ("We are launching ...").
* The higher score wins. A tie (including no cue at all) goes to `compliance`: it is the
  conservative mode, staying closest to the sources with the most citations.

`explain()` returns the scores and the matched cues; `evaluate()` measures the rule on
labelled examples (knowledge/eval/modes.json) for tests and the `mode_eval` command.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

COMPLIANCE = "compliance"
ADVISORY = "advisory"
LABELS = (COMPLIANCE, ADVISORY)

MODES_FILE = Path(__file__).resolve().parents[1] / "knowledge" / "eval" / "modes.json"


@dataclass(frozen=True)
class Cue:
    name: str  # shown by explain(); a readable label rather than the regex
    pattern: re.Pattern[str]
    weight: float


def _cue(name: str, pattern: str, weight: float) -> Cue:
    return Cue(name, re.compile(pattern), weight)


# Weights: 2+ for phrases that nearly always decide the mode on their own, ~1-1.5 for
# words that lean one way, <1 for weak hints that only break otherwise close calls.
COMPLIANCE_CUES: tuple[Cue, ...] = (
    _cue("must", r"\bmust\b", 1.5),
    _cue("required / requires", r"\brequir(?:e|ed|es|ement|ements)\b", 1.5),
    _cue("mandatory", r"\bmandatory\b", 2.0),
    _cue("obliged / obligation", r"\b(?:obliged|obligat\w+)\b", 1.5),
    _cue("have to / has to / need to", r"\b(?:have|has|need|needs) to\b", 1.5),
    _cue("deadline / timeline", r"\b(?:deadline|timeline|time limit|by when)\b", 2.0),
    _cue("how long", r"\bhow long\b", 2.0),
    _cue("how often", r"\bhow often\b", 1.5),
    _cue("how many <unit>", r"\bhow many (?:hours|days|weeks|months|years|times)\b", 2.0),
    _cue("within", r"\bwithin\b", 1.0),
    _cue("what does ... say", r"\bwhat does (?:the |this |our )?[\w -]{0,40}\bsay\b", 2.0),
    _cue("does the <rulebook>", r"\bdoes (?:the|this) (?:guidance|regulation|rule|law|standard|"
         r"policy|framework|act|directive|guideline)", 2.0),
    _cue("retention / retained", r"\b(?:retention|retained|kept|archived)\b", 1.0),
    _cue("permitted / allowed / acceptable", r"\b(?:permitted|allowed|acceptable|prohibited|"
         r"forbidden|lawful)\b", 1.5),
    _cue("maximum / minimum", r"\b(?:maximum|minimum|at least|at most)\b", 1.0),
    _cue("contain / include (contents of a document)",
         r"\b(?:contain|include|included|cover)\b\W*$", 1.0),
    _cue("count as", r"\bcounts? as\b", 1.0),
    _cue("when do / when must", r"\bwhen (?:do|does|must|is|are)\b", 1.0),
    _cue("yes/no question opener", r"^(?:is|are|does|do|must|can|may|shall)\b", 1.0),
)

ADVISORY_CUES: tuple[Cue, ...] = (
    _cue("how should we", r"\bhow (?:should|shall) (?:we|i)\b", 2.5),
    _cue("how can / could we", r"\bhow (?:can|could|might) (?:we|i)\b", 2.0),
    _cue("how would you", r"\bhow would you\b", 2.0),
    _cue("how do we <act>", r"\bhow do (?:we|i) (?!have to|need to)\b", 1.5),
    _cue("how can <someone> <act>", r"\bhow (?:can|could) (?:a|an|our|the|small|new)\b", 1.0),
    _cue("what can we do", r"\bwhat (?:can|could) (?:we|i) do\b", 2.0),
    _cue("where to start", r"\bwhere (?:should|do|can) (?:we|i) (?:start|begin)\b|"
         r"\bwhere to (?:start|begin)\b", 2.0),
    _cue("convince / get buy-in", r"\b(?:convince|persuade|buy-in|engage)\b", 1.5),
    _cue("what should we do", r"\bwhat should (?:we|i) do\b", 2.5),
    _cue("should we <choose>", r"^should (?:we|i)\b", 2.0),
    _cue("best / sensible way or approach", r"\b(?:best|good|better|sensible|practical|"
         r"efficient|smartest|right|effective) (?:way|approach|practice)", 2.5),
    _cue("recommend / advise", r"\b(?:recommend\w*|advise|advice|suggest\w*)\b", 2.5),
    _cue("what / where / which would you", r"\b(?:what|where|which|how much) would you\b", 2.0),
    _cue("ways to", r"\bways? to (?!be\b)", 1.0),
    _cue("lessons", r"\blessons?\b", 1.5),
    _cue("look like", r"\blooks? like\b", 1.0),
    _cue("budget / cost", r"\b(?:budget|cheaply|cost-effective|affordabl\w*)\b", 1.0),
    _cue("approach", r"\bapproach(?:es)?\b", 1.5),
    _cue("prioritise", r"\bprioriti[sz]\w*", 1.5),
    _cue("strategy / roadmap", r"\b(?:strategy|roadmap)\b", 1.0),
    _cue("improve / better", r"\b(?:improve\w*|better|easier|more realistic|more effective)\b",
         1.5),
    _cue("worth", r"\bworth\b", 2.0),
    _cue("good enough", r"\bgood enough\b", 1.0),
    _cue("tips", r"\btips?\b", 2.0),
    _cue("practical steps", r"\b(?:practical|first) steps?\b|\bsteps can we\b", 1.5),
    _cue("sensible / realistic / efficient",
         r"\b(?:sensible|realistic|efficient|smartest|pragmatic)\b", 1.0),
    _cue("design / structure / organise", r"\b(?:design|structure|organi[sz]e|streamline|"
         r"speed up|handle|implement|roll out|rollout|simplify)\b", 1.0),
    _cue("tend to work", r"\btends? to\b|\bworks? (?:better|well)\b", 1.0),
    _cue("context opener (we are / we plan / we have)", r"^we (?:are|plan|have|want|need)\b",
         1.5),
    _cue("given our situation", r"\bgiven our\b|\bour (?:situation|case|context)\b", 1.5),
)


def _matches(question: str, cues: tuple[Cue, ...]) -> list[Cue]:
    text = question.strip().lower()
    return [cue for cue in cues if cue.pattern.search(text)]


def explain(question: str) -> dict:
    """The mode with its scores and the cues that produced them."""
    compliance = _matches(question, COMPLIANCE_CUES)
    advisory = _matches(question, ADVISORY_CUES)
    scores = {
        COMPLIANCE: round(sum((cue.weight for cue in compliance), 0.0), 2),
        ADVISORY: round(sum((cue.weight for cue in advisory), 0.0), 2),
    }
    # Ties go to compliance: when unsure, quote the sources rather than interpret them.
    mode = ADVISORY if scores[ADVISORY] > scores[COMPLIANCE] else COMPLIANCE
    return {
        "mode": mode,
        "scores": scores,
        "cues": {
            COMPLIANCE: [cue.name for cue in compliance],
            ADVISORY: [cue.name for cue in advisory],
        },
        "tie_break": scores[ADVISORY] == scores[COMPLIANCE],
    }


def classify(question: str) -> str:
    """"compliance" or "advisory" for a question (the `auto` mode)."""
    return explain(question)["mode"]


def load_examples(path: Path | str = MODES_FILE) -> list[dict]:
    """Labelled examples: a JSON array of {"question": ..., "mode": ...}."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def evaluate(examples: list[dict]) -> dict:
    """Accuracy, per-label precision/recall/support and the misclassified examples."""
    predicted = [(example, classify(example["question"])) for example in examples]
    correct = sum(1 for example, mode in predicted if mode == example["mode"])
    per_label = {}
    for label in LABELS:
        true_positive = sum(1 for e, mode in predicted if mode == label and e["mode"] == label)
        predicted_count = sum(1 for _, mode in predicted if mode == label)
        support = sum(1 for e, _ in predicted if e["mode"] == label)
        per_label[label] = {
            "precision": true_positive / predicted_count if predicted_count else 0.0,
            "recall": true_positive / support if support else 0.0,
            "support": support,
        }
    return {
        "examples": len(examples),
        "accuracy": correct / len(examples) if examples else 0.0,
        "labels": per_label,
        "errors": [
            {"question": e["question"], "expected": e["mode"], "predicted": mode}
            for e, mode in predicted
            if mode != e["mode"]
        ],
    }
