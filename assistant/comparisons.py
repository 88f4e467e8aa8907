"""Cross-category comparison (API.md 12): one question answered for 2-4 categories of a
domain, each exactly as /v1/query/ answers it, plus a side-by-side comparison.

`compare_prepare` raises every 4xx in the order of API.md 1 before a credit moves. A
`Comparing` then reserves the whole cost once (the model's price × categories), retrieves
and answers every category through `pipeline.Answering`, writes the comparison from all the
answers' sources, and in one short transaction stores it and settles what the answered
categories cost (a category answered `insufficient_context` is refunded its share). Any
failure after the reservation refunds all of it.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterator

from django.db import transaction
from django.utils import timezone

from assistant import pipeline, prompting, selectors
from assistant.comparing import nothing_to_compare
from assistant.models import AIModel, Comparison
from assistant.pipeline import (DOMAIN_NOT_ALLOWED, NO_STREAMING, Answering, Query,
                                _knowledge_base_active, insufficient_answer, ms_since)
from assistant.providers import get_provider
from assistant.providers.base import (Finish, GenerationRequest, ProviderError, SourceText,
                                      Usage)
from billing import services as billing
from billing.models import Reservation
from core import metrics
from core.exceptions import FieldError, Forbidden
from core.tenancy import Acting
from knowledge.models import Category, Domain

logger = logging.getLogger("egret.query")

NO_COMPARE = "Your plan does not include cross-category comparison."


@dataclass
class CompareRequest:
    acting: Acting
    question: str
    domain: Domain
    categories: list[Category]
    mode: str
    model: AIModel
    stream: bool
    scope: str
    max_sources: int

    @property
    def cost(self) -> int:
        return self.model.credits_per_query * len(self.categories)


def compare_prepare(acting: Acting, data: dict) -> CompareRequest:
    """`data` has passed CompareRequestSerializer. Raises 400, then 404, then 403."""
    organization = acting.organization
    model = selectors.model_get(data.get("model"))
    if data["knowledge_scope"] == "private" and not _knowledge_base_active(organization):
        raise FieldError("knowledge_scope", "\"private\" needs at least one ready document "
                         "in the organization's knowledge base (kb_status \"active\").")
    categories = [selectors.domain_category_get(data["domain"], code)[1]
                  for code in data["categories"]]
    domain = categories[0].domain
    if organization.allowed_domains and domain.slug not in organization.allowed_domains:
        raise Forbidden(DOMAIN_NOT_ALLOWED)
    if not organization.plan.has_cross_category_compare:
        raise Forbidden(NO_COMPARE)
    if not model.available_to(organization.plan):
        raise Forbidden(f"Your plan does not include the {model.tier} model \"{model.id}\".")
    if data["stream"] and not organization.plan.has_streaming:
        raise Forbidden(NO_STREAMING)
    return CompareRequest(acting=acting, question=data["query"], domain=domain,
                          categories=categories, mode=data["mode"], model=model,
                          stream=data["stream"], scope=data["knowledge_scope"],
                          max_sources=data["max_sources"])


@dataclass
class Part:
    """One category's answer as it is sent: `sources` in the numbering its text cites."""

    answering: Answering
    text: str = ""
    sources: list[dict] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)

    @property
    def category(self) -> Category:
        return self.answering.query.category

    @property
    def insufficient(self) -> bool:
        return self.answering.grounding.insufficient

    def body(self, credits_per_query: int) -> dict:
        return {"category": self.category.code, "category_name": self.category.name,
                "response": self.text, "sources": self.sources,
                "insufficient_context": self.insufficient,
                "credits_used": 0 if self.insufficient else credits_per_query}

    def labelled_sources(self) -> list[SourceText]:
        """This answer's sources as the comparison cites them: `[code:n]`, n its number
        here; the text is the passage the answer was written from."""
        passages = {p.chunk.pk: p for p in self.answering.grounding.passages}
        labelled = []
        for number, source in enumerate(self.sources, start=1):
            passage = passages[source["id"]]
            labelled.append(SourceText(
                number=number, label=f"{self.category.code}:{number}",
                title=passage.document.title, text=passage.text, section=passage.chunk.section,
                page=passage.chunk.page, relevance=passage.relevance))
        return labelled


class Comparing:
    """One comparison in flight, from the reservation to the settlement or refund."""

    def __init__(self, request: CompareRequest) -> None:
        self.request = request
        self.id = uuid.uuid4()
        self.started = time.monotonic()
        self.reservation: Reservation | None = None
        self.parts = [Part(Answering(Query(
            acting=request.acting, question=request.question, domain=request.domain,
            category=category, mode=request.mode, model=request.model, stream=request.stream,
            session=None, scope=request.scope, max_sources=request.max_sources)))
            for category in request.categories]
        self.comparison = ""
        self.comparison_usage = Usage()

    # --- before generation --------------------------------------------------------------
    def reserve(self) -> None:
        request = self.request
        self.reservation = billing.credits_reserve(
            request.acting.organization, request.cost, actor_user=request.acting.user,
            actor_api_key=request.acting.api_key, comparison_id=self.id,
            model=request.model.id, domain=request.domain.slug)

    def retrieve(self) -> None:
        for part in self.parts:
            part.answering.retrieve()

    @property
    def mode(self) -> str:
        return self.parts[0].answering.mode

    # --- the comparison ---------------------------------------------------------------------
    def answered(self) -> list[Part]:
        return [part for part in self.parts if not part.insufficient]

    def comparison_request(self) -> GenerationRequest:
        model = self.request.model
        return GenerationRequest(
            question=self.request.question, mode=self.mode,
            sources=[s for part in self.answered() for s in part.labelled_sources()],
            model_name=model.provider_model, options=dict(model.options), task="compare",
            categories=tuple((p.category.code, p.category.name) for p in self.answered()))

    def label_counts(self) -> dict[str, int]:
        return {part.category.code: len(part.sources) for part in self.answered()}

    def without_comparison(self) -> str | None:
        """The text when fewer than two categories have a grounded answer (no generation)."""
        answered = self.answered()
        if len(answered) >= 2:
            return None
        return nothing_to_compare([p.category.name for p in answered],
                                  [p.category.name for p in self.parts])

    def compare(self) -> None:
        text = self.without_comparison()
        if text is None:
            generation = get_provider(self.request.model.provider).generate(
                self.comparison_request())
            text = prompting.remove_unknown_labels(generation.text, self.label_counts())
            self.comparison_usage = generation.usage
        self.comparison = text

    # --- after generation ---------------------------------------------------------------
    def body(self) -> dict:
        request, model = self.request, self.request.model
        usages = [part.usage for part in self.parts] + [self.comparison_usage]
        input_tokens = sum(u.input_tokens for u in usages)
        output_tokens = sum(u.output_tokens for u in usages)
        return {
            "comparison_id": str(self.id), "query": request.question,
            "domain": request.domain.slug, "mode": self.mode, "model": model.id,
            "answers": [part.body(model.credits_per_query) for part in self.parts],
            "comparison": self.comparison,
            "credits_used": model.credits_per_query * len(self.answered()),
            "input_tokens": input_tokens, "output_tokens": output_tokens,
            "cost_usd": model.cost_usd(input_tokens, output_tokens),
            "total_latency_ms": ms_since(self.started),
        }

    def complete(self) -> dict:
        """Store the comparison and settle its cost in one short transaction: the categories
        answered `insufficient_context` are refunded their share."""
        request, body = self.request, self.body()
        missing = [p.category.code for p in self.parts if p.insufficient]
        with transaction.atomic():
            Comparison.objects.create(
                id=self.id, organization=request.acting.organization, domain=request.domain,
                categories=[c.code for c in request.categories], query=request.question,
                mode=self.mode, model=request.model.id, response=body,
                credits_used=body["credits_used"], created_by=request.acting.user,
                api_key=request.acting.api_key, created_at=timezone.now())
            if not body["credits_used"]:
                billing.credits_refund(self.reservation, memo="insufficient context in every "
                                                              "category compared")
            elif missing:
                billing.credits_settle(self.reservation, final_cost=body["credits_used"],
                                       memo=f"insufficient context: {', '.join(missing)}")
            else:
                billing.credits_settle(self.reservation)
        self._observe(body)
        return body

    def _observe(self, body: dict) -> None:
        request = self.request
        logger.info("comparison answered", extra={
            "event": "comparison", "organization": request.acting.organization.slug,
            "model": request.model.id, "stream": request.stream, "mode": self.mode,
            "categories": len(self.parts), "credits": body["credits_used"],
            "total_ms": body["total_latency_ms"]})
        metrics.observe_query(model=request.model.id, stream=request.stream,
                              insufficient_context=not body["credits_used"],
                              credits=body["credits_used"],
                              seconds=body["total_latency_ms"] / 1000)

    def abandon(self, memo: str) -> None:
        """Give all the credits back unless the comparison was already settled."""
        reservation = self.reservation
        if reservation is None or reservation.status != Reservation.Status.RESERVED:
            return
        try:
            billing.credits_refund(reservation, memo=memo)
            logger.warning("comparison failed", extra={
                "event": "comparison_failed",
                "organization": self.request.acting.organization.slug,
                "model": self.request.model.id, "reason": memo,
                "total_ms": ms_since(self.started)})
            metrics.observe_query_failed(model=self.request.model.id)
        except billing.ReservationFinished:
            pass  # the sweeper got there first

    # --- the two ways to answer -----------------------------------------------------------
    def draft(self) -> None:
        """Every category's answer as /v1/query/ writes it whole, then the comparison."""
        for part in self.parts:
            if part.insufficient:
                part.text = insufficient_answer(part.answering.query)
            else:
                part.text, part.sources, part.usage, _ = part.answering.draft()
        self.compare()

    def answer(self) -> dict:
        self.draft()
        return self.complete()

    def events(self) -> Iterator[dict]:
        """Per category: `sources`, then its text deltas; then the comparison's deltas
        (`category` null); then one `done` with the whole response. Sources keep their
        retrieval numbering: it was sent before the text existed."""
        body = yield from pipeline.guarded(
            self, self._generated(),
            abandoned="stream closed before the comparison was complete",
            failure="generation failed during a comparison stream")
        if body is not None:
            yield {"type": "done", **body}

    def _generated(self) -> Iterator[dict]:
        """Every category's events, then the comparison's; returns the response body."""
        for part in self.parts:
            yield from self._part_events(part)
        yield from self._comparison_events()
        return self.complete()

    def _part_events(self, part: Part) -> Iterator[dict]:
        answering, code = part.answering, part.category.code
        part.sources = [] if part.insufficient else answering.sources
        yield {"type": "sources", "category": code, "sources": part.sources,
               "retrieval_ms": answering.retrieval_ms,
               "chunks_retrieved": answering.chunks_retrieved,
               "insufficient_context": part.insufficient, "mode": answering.mode,
               "comparison_id": str(self.id)}
        if part.insufficient:
            part.text = insufficient_answer(answering.query)
            yield {"type": "text_delta", "category": code, "text": part.text}
            return
        chunks: list[str] = []
        stream = get_provider(self.request.model.provider).stream(answering.generation_request())
        for text, usage in _filtered(stream, prompting.MarkerFilter(len(part.sources))):
            if usage is not None:
                part.usage = usage
            elif text:
                chunks.append(text)
                yield {"type": "text_delta", "category": code, "text": text}
        part.text = "".join(chunks)

    def _comparison_events(self) -> Iterator[dict]:
        text = self.without_comparison()
        if text is not None:
            self.comparison = text
            yield {"type": "text_delta", "category": None, "text": text}
            return
        chunks: list[str] = []
        stream = get_provider(self.request.model.provider).stream(self.comparison_request())
        for text, usage in _filtered(stream, prompting.LabelFilter(self.label_counts())):
            if usage is not None:
                self.comparison_usage = usage
            elif text:
                chunks.append(text)
                yield {"type": "text_delta", "category": None, "text": text}
        self.comparison = "".join(chunks)


def _filtered(stream, markers) -> Iterator[tuple[str, Usage | None]]:
    """A provider's stream through a marker post-check: (text, None) pieces, then ("", usage)
    once it finished; a stream that ends without finishing is a failure."""
    finished = False
    for item in stream:
        if isinstance(item, Finish):
            finished = True
            tail = markers.flush()
            if tail:
                yield tail, None
            yield "", item.usage
            continue
        yield markers.feed(item.text), None
    if not finished:
        raise ProviderError("the provider's stream ended without finishing")


def compare_answer(request: CompareRequest) -> dict:
    return pipeline.answered(pipeline.retrieved(Comparing(request)))


def compare_stream(request: CompareRequest) -> pipeline.EventStream:
    """Reserve and retrieve now (their errors are ordinary JSON errors); generation happens
    while the response is sent."""
    return pipeline.EventStream(pipeline.retrieved(Comparing(request)),
                                "stream closed before the comparison was complete")
