"""Measures answers on the evaluation sets of knowledge/eval/ (the `answer_eval` command).

Each question runs through the real pipeline (retrieve → ground → generate → post-check),
without an organization's credits. A key-fact question lists the facts a complete answer
must state, each with alternative wordings; a fact counts as found when one of its wordings
appears in the text (case, emphasis, markers and spacing ignored). It is looked for twice:
in the answer, and in the context an LLM provider would have received (the passages of the
generation request), which bounds what any model could answer from.

Questions carry a `split` ("tune" or "held-out"); every figure is reported per split, so
the part set aside before tuning is never averaged into the part tuned on.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from django.core.files.storage import default_storage
from django.db import transaction

from assistant import selectors
from assistant.pipeline import Answering, Query
from knowledge.models import Category, Document

EVAL_DIR = Path(__file__).resolve().parents[1] / "knowledge" / "eval"
MARKER = re.compile(r"\[(\d+)\]")
_EMPHASIS = re.compile(r"\*\*|__|`|\[\d+(?:[,;]\s*\d+)*\]")
_FOLD = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


def normal(text: str) -> str:
    """Text as facts are compared: lower case, no emphasis or markers, single spaces."""
    return " ".join(_EMPHASIS.sub(" ", text.translate(_FOLD)).lower().split())


def found(fact: list[str], haystack: str) -> bool:
    """`haystack` must already be normal()."""
    return any(normal(wording) in haystack for wording in fact)


@dataclass
class Outcome:
    question: dict
    insufficient: bool = False
    top_right: bool = False
    markers_valid: bool = True
    cited: bool = False
    chars: int = 0
    facts_answer: int = 0
    facts_context: int = 0
    missing: list[str] = field(default_factory=list)

    @property
    def facts(self) -> int:
        return len(self.question.get("facts", []))


def ask(question: dict, *, model, category: Category, organization, mode: str) -> tuple[
        Answering, str, list[dict]]:
    """Retrieve and answer one question as the pipeline does; (answering, text, sources)."""
    acting = SimpleNamespace(organization=organization, user=None, api_key=None)
    answering = Answering(Query(acting=acting, question=question["question"],
                                domain=category.domain, category=category, mode=mode,
                                model=model, stream=False, session=None,
                                scope="all" if organization is not None else "public",
                                max_sources=5))
    answering.retrieve()
    if answering.grounding.insufficient:
        return answering, "", []
    text, sources, _, _ = answering.draft()
    return answering, text, sources


def measure(question: dict, answering: Answering, text: str, sources: list[dict]) -> Outcome:
    outcome = Outcome(question)
    if answering.grounding.insufficient:
        outcome.insufficient = True
        outcome.missing = [fact[0] for fact in question.get("facts", [])]
        return outcome
    numbers = {int(n) for n in MARKER.findall(text)}
    outcome.markers_valid = numbers <= set(range(1, len(sources) + 1))
    outcome.cited = bool(numbers)
    outcome.chars = len(text)
    expected = {Path(e).name for e in question["expected"]}
    outcome.top_right = bool(sources) and sources[0]["filename"] in expected
    answer = normal(text)
    context = normal(" ".join(s.text for s in answering.generation_request().sources))
    for fact in question.get("facts", []):
        in_answer = found(fact, answer)
        outcome.facts_answer += in_answer
        outcome.facts_context += found(fact, context)
        if not in_answer:
            outcome.missing.append(fact[0])
    return outcome


def summary(outcomes: list[Outcome]) -> dict:
    n = len(outcomes)
    answered = [o for o in outcomes if not o.insufficient]
    facts = sum(o.facts for o in outcomes)
    chars = [o.chars for o in answered]
    with_facts = [o for o in outcomes if o.facts]
    return {
        "questions": n,
        "answered": len(answered),
        "insufficient": [o.question.get("id") for o in outcomes if o.insufficient],
        "fact_recall_answer": _share(sum(o.facts_answer for o in outcomes), facts),
        "fact_recall_context": _share(sum(o.facts_context for o in outcomes), facts),
        "every_fact": _share(sum(o.facts_answer == o.facts for o in with_facts),
                             len(with_facts)),
        "top_source_right": _share(sum(o.top_right for o in outcomes), n),
        "markers_valid": _share(sum(o.markers_valid for o in answered), len(answered)),
        "cited": _share(sum(o.cited for o in answered), len(answered)),
        "answer_chars_median": int(statistics.median(chars)) if chars else 0,
        "answer_chars_max": max(chars, default=0),
        "wrong_top_source": [o.question.get("id") for o in outcomes
                             if not o.top_right and not o.insufficient],
        "missing_facts": {o.question.get("id"): o.missing for o in outcomes if o.missing},
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def evaluate(questions: list[dict], *, model_id: str | None = None, mode: str = "auto",
             organization=None, off_topic: list[dict] = ()) -> dict:
    """Figures over all questions and per split; off-topic questions must all come back
    `insufficient_context`."""
    model = selectors.model_get(model_id)
    categories = {(c.domain.slug, c.code): c for c in Category.objects.select_related("domain")}
    started = time.perf_counter()
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for question in questions:
        category = _category(categories, question)
        answering, text, sources = ask(question, model=model, category=category,
                                       organization=organization, mode=mode)
        outcome = measure(question, answering, text, sources)
        groups["all"].append(outcome)
        if question.get("split"):
            groups[question["split"]].append(outcome)
    answered_off_topic = []
    for question in off_topic:
        answering, _, _ = ask(question, model=model, category=_category(categories, question),
                              organization=organization, mode=mode)
        if not answering.grounding.insufficient:
            answered_off_topic.append(question["question"])
    count = len(questions) + len(off_topic)
    return {
        "model": model.id, "mode": mode,
        "ms_per_question": round((time.perf_counter() - started) * 1000 / max(count, 1), 1),
        **{name: summary(outcomes) for name, outcomes in groups.items()},
        "off_topic": {"questions": len(off_topic),
                      "insufficient": len(off_topic) - len(answered_off_topic),
                      "answered": answered_off_topic},
    }


def _category(categories: dict, question: dict) -> Category:
    category = categories.get((question["domain"], question["category"]))
    if category is None:
        raise LookupError(f"{question['domain']}/{question['category']} is not loaded; run "
                          "`manage.py egret_demo` first.")
    return category


class EvalOrganization:
    """A throwaway organization holding the private evaluation documents, for the span of a
    `with` block: everything it writes is rolled back and its files deleted afterwards."""

    SLUG = "egret-eval-private"

    def __init__(self, private: list[dict], root: Path = EVAL_DIR) -> None:
        self.private = private
        self.root = root
        self._atomic = transaction.atomic()
        self._files: list[str] = []

    def __enter__(self):
        self._atomic.__enter__()
        try:
            return self._load()
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def _load(self):
        from billing.models import Plan
        from knowledge import services
        from knowledge.models import Domain
        from organizations.models import Organization

        organization = Organization.objects.create(
            slug=self.SLUG, name="Evaluation", plan=Plan.objects.order_by("-monthly_credits")
            .first())
        for item in self.private:
            path = self.root / item["path"]
            document = services.document_create(
                data=path.read_bytes(), filename=path.name, title=item.get("title", ""),
                organization=organization, domain=Domain.objects.get(slug=item["domain"]))
            self._files.append(document.file.name)
            document = services.document_ingest(document.pk)
            if document.status != Document.Status.READY:
                raise RuntimeError(f"{item['path']} could not be ingested: {document.error}")
        return organization

    def __exit__(self, *exc) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(*exc)
        for name in self._files:
            default_storage.delete(name)
