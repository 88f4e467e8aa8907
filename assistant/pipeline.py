"""The path of one query (DESIGN.md): validate → look up → check → reserve → retrieve →
generate (no transaction open) → persist + settle, or refund.

`query_prepare` raises every 4xx in the order of API.md 1 before a credit moves. An
`Answering` then holds one query in flight: it reserves, retrieves, and either answers whole
(`answer`) or as NDJSON events (`events`). Any failure after the reservation refunds it; a
request that dies without running any Python at all is refunded by `billing_sweep`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterator

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from assistant import classifier, prompting, selectors
from assistant.models import AIModel, ChatSession, Message
from assistant.providers import get_provider
from assistant.providers.base import (Finish, GenerationRequest, ProviderError, SourceText,
                                      Turn, Usage)
from assistant.grounding import Grounding, content_terms, ground
from billing import services as billing
from billing.models import Reservation
from core import metrics
from core.errors import SERVER_ERROR_DETAIL
from core.exceptions import FieldError, Forbidden
from core.logging import request_id_var
from core.tenancy import Acting
from knowledge import retrieval
from knowledge.models import Category, Document, Domain

logger = logging.getLogger("egret.query")

DOMAIN_NOT_ALLOWED = "Your organization does not have access to this domain."
NO_STREAMING = "Your plan does not include streaming."
TITLE_CHARS = 120
EXCERPT_CHARS = 320
FOLLOW_UP_TERMS = 3  # a question with fewer content terms is searched with the previous one


@dataclass
class Query:
    acting: Acting
    question: str
    domain: Domain
    category: Category
    mode: str  # as requested: compliance | advisory | auto
    model: AIModel
    stream: bool
    session: ChatSession | None
    scope: str
    max_sources: int


def query_prepare(acting: Acting, data: dict) -> Query:
    """`data` has passed QueryRequestSerializer. Raises 400, then 404, then 403."""
    organization = acting.organization
    model = selectors.model_get(data.get("model"))
    if data["knowledge_scope"] == "private" and not _knowledge_base_active(organization):
        raise FieldError("knowledge_scope", "\"private\" needs at least one ready document "
                         "in the organization's knowledge base (kb_status \"active\").")
    domain, category = selectors.domain_category_get(data["domain"], data["category"])
    session = None
    if data.get("session_id"):
        session = selectors.session_get(organization, data["session_id"])
        if session.domain_id != domain.pk or session.category_id != category.pk:
            raise FieldError("session_id", f"the session belongs to "
                             f"{session.domain.slug}/{session.category.code}, not "
                             f"{domain.slug}/{category.code}; start a new session.")
    if organization.allowed_domains and domain.slug not in organization.allowed_domains:
        raise Forbidden(DOMAIN_NOT_ALLOWED)
    if not model.available_to(organization.plan):
        raise Forbidden(f"Your plan does not include the {model.tier} model \"{model.id}\".")
    if data["stream"] and not organization.plan.has_streaming:
        raise Forbidden(NO_STREAMING)
    return Query(acting=acting, question=data["query"], domain=domain, category=category,
                 mode=data["mode"], model=model, stream=data["stream"], session=session,
                 scope=data["knowledge_scope"], max_sources=data["max_sources"])


def _knowledge_base_active(organization) -> bool:
    return Document.objects.filter(organization=organization,
                                    status=Document.Status.READY).exists()


def source_dict(passage: retrieval.Passage) -> dict:
    chunk, document = passage.chunk, passage.document
    return {
        "id": chunk.pk,
        "document_id": str(document.pk),
        "uri": f"egret://documents/{document.pk}#chunk-{chunk.ordinal}",
        "filename": document.filename,
        "title": document.title,
        "section": chunk.section,
        "page": chunk.page,
        "excerpt": excerpt(chunk.text),
        "score": passage.score,
        "download_url": document.download_url,
        "scope": passage.scope,
    }


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


def insufficient_answer(query: Query) -> str:
    return (
        f"The {query.domain.name} library ({query.category.name}) does not cover this "
        "question, so there is no grounded answer to give and no credits were charged. "
        "Try rephrasing it with the terms your policies or regulators use, name the process "
        "or control you mean, or choose another category."
    )


def release_database(provider) -> None:
    """Give this thread's database connection back (to the pool; closed without one) before
    waiting seconds on a remote model, so open answers hold no connection; the statements
    after generation take one again. Kept inside a transaction (tests run in one)."""
    if getattr(provider, "remote", True) and not connection.in_atomic_block:
        connection.close()


def ms_since(start: float) -> int:
    return int((time.monotonic() - start) * 1000)


@dataclass
class Answering:
    """One query in flight, from the reservation to the settlement or refund."""

    query: Query
    started: float = field(default_factory=time.monotonic)
    reservation: Reservation | None = None
    mode: str = ""
    grounding: Grounding | None = None
    sources: list[dict] = field(default_factory=list)
    history: list[Message] = field(default_factory=list)
    retrieval_ms: int = 0
    chunks_retrieved: int = 0

    def __post_init__(self) -> None:
        self.session_id = self.query.session.pk if self.query.session else uuid.uuid4()
        self.message_id = uuid.uuid4()

    # --- before generation --------------------------------------------------------------
    def reserve(self) -> None:
        query = self.query
        self.reservation = billing.credits_reserve(
            query.acting.organization, query.model.credits_per_query,
            actor_user=query.acting.user, actor_api_key=query.acting.api_key,
            session_id=self.session_id, message_id=self.message_id, model=query.model.id,
            domain=query.domain.slug)

    def retrieve(self) -> None:
        query = self.query
        self.mode = classifier.classify(query.question) if query.mode == "auto" else query.mode
        self.history = selectors.history_of(query.session)
        search_text = self._search_text()
        start = time.monotonic()
        passages = retrieval.passages_for(
            search_text, domain=query.domain, category=query.category,
            organization=query.acting.organization, scope=query.scope, limit=query.max_sources)
        self.retrieval_ms = ms_since(start)
        self.chunks_retrieved = len(passages)
        self.grounding = ground(search_text, passages)
        self.sources = [source_dict(p) for p in self.grounding.passages]

    def _search_text(self) -> str:
        """A short follow-up ("and how often?") is searched together with the previous
        question of the session, which names the subject."""
        question = self.query.question
        if len(content_terms(question)) >= FOLLOW_UP_TERMS:
            return question
        earlier = [m.content for m in self.history if m.sender == Message.Sender.USER]
        return f"{earlier[-1]} {question}" if earlier else question

    def generation_request(self) -> GenerationRequest:
        passages = self.grounding.passages
        return GenerationRequest(
            question=self.query.question, mode=self.mode,
            sources=[SourceText(number=i, title=p.document.title, text=p.text,
                                section=p.chunk.section, page=p.chunk.page,
                                relevance=p.relevance)
                     for i, p in enumerate(passages, start=1)],
            history=[Turn(sender=m.sender, content=m.content) for m in self.history],
            model_name=self.query.model.provider_model, options=dict(self.query.model.options))

    # --- after generation ---------------------------------------------------------------
    def complete(self, text: str, usage: Usage, suggestions: list[str], sources: list[dict],
                 generation_ms: int) -> dict:
        """Persist both messages and settle (or refund an ungrounded answer) in one short
        transaction: the answer and its charge are committed together or not at all."""
        query, insufficient = self.query, self.grounding.insufficient
        credits = 0 if insufficient else query.model.credits_per_query
        now = timezone.now()
        with transaction.atomic():
            if query.session is None:
                ChatSession.objects.create(
                    id=self.session_id, organization=query.acting.organization,
                    domain=query.domain, category=query.category,
                    title=query.question[:TITLE_CHARS], created_by=query.acting.user,
                    api_key=query.acting.api_key, message_count=2, created_at=now,
                    last_activity_at=now)
            else:
                ChatSession.objects.filter(pk=self.session_id).update(
                    message_count=F("message_count") + 2, last_activity_at=now)
            Message.objects.bulk_create([
                Message(session_id=self.session_id, sender=Message.Sender.USER,
                        content=query.question, mode=self.mode, created_at=now),
                Message(id=self.message_id, session_id=self.session_id,
                        sender=Message.Sender.ASSISTANT, content=text, mode=self.mode,
                        model=query.model.id, sources=sources, suggestions=suggestions,
                        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                        credits_used=credits, context_quality=self.grounding.quality,
                        created_at=now),
            ])
            if insufficient:
                billing.credits_refund(self.reservation, memo="insufficient context",
                                       message_id=self.message_id)
            else:
                billing.credits_settle(self.reservation, message_id=self.message_id,
                                       session_id=self.session_id)
        total_ms = ms_since(self.started)
        logger.info("query answered", extra={
            "event": "query", "organization": query.acting.organization.slug,
            "model": query.model.id, "stream": query.stream, "mode": self.mode,
            "insufficient_context": insufficient, "credits": credits,
            "retrieval_ms": self.retrieval_ms, "generation_ms": generation_ms,
            "total_ms": total_ms})
        metrics.observe_query(model=query.model.id, stream=query.stream,
                              insufficient_context=insufficient, credits=credits,
                              seconds=total_ms / 1000)
        return {
            "session_id": str(self.session_id), "message_id": str(self.message_id),
            "response": text, "sources": sources, "suggestions": suggestions,
            "mode": self.mode, "model": query.model.id, "insufficient_context": insufficient,
            "credits_used": credits, "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cost_usd": query.model.cost_usd(usage.input_tokens, usage.output_tokens),
            "retrieval_ms": self.retrieval_ms, "generation_ms": generation_ms,
            "total_latency_ms": total_ms,
        }

    def abandon(self, memo: str) -> None:
        """Give the credits back unless the answer was already settled."""
        reservation = self.reservation
        if reservation is None or reservation.status != Reservation.Status.RESERVED:
            return
        try:
            billing.credits_refund(reservation, memo=memo)
            logger.warning("query failed", extra={
                "event": "query_failed", "organization": self.query.acting.organization.slug,
                "model": self.query.model.id, "stream": self.query.stream, "mode": self.mode,
                "reason": memo, "credits": 0, "total_ms": ms_since(self.started)})
            metrics.observe_query_failed(model=self.query.model.id)
        except billing.ReservationFinished:
            pass  # the sweeper got there first

    # --- the two ways to answer -----------------------------------------------------------
    def draft(self) -> tuple[str, list[dict], Usage, list[str]]:
        """Generate whole, then post-check: markers that point to no source are dropped,
        cited sources come first and the markers are renumbered to match."""
        provider = get_provider(self.query.model.provider)
        request = self.generation_request()
        release_database(provider)
        generation = provider.generate(request)
        count = len(self.sources)
        text = prompting.remove_unknown_markers(generation.text, count)
        order = prompting.cited_order(text, count)
        text = prompting.renumber(text, order)
        return text, [self.sources[n - 1] for n in order], generation.usage, generation.suggestions

    def answer(self) -> dict:
        start = time.monotonic()
        if self.grounding.insufficient:
            return self.complete(insufficient_answer(self.query), Usage(), [], [], 0)
        text, sources, usage, suggestions = self.draft()
        return self.complete(text, usage, suggestions, sources, ms_since(start))

    def events(self) -> Iterator[dict]:
        """Streaming: `sources` first, then text deltas, then `done` (or `error`). The numbering
        of the `sources` event is kept: it was sent before the text existed."""
        yield {"type": "sources", "sources": self.sources, "retrieval_ms": self.retrieval_ms,
               "chunks_retrieved": self.chunks_retrieved,
               "insufficient_context": self.grounding.insufficient, "mode": self.mode,
               "session_id": str(self.session_id)}
        outcome = yield from guarded(
            self, self._generated(), abandoned="stream closed before the answer was complete",
            failure="generation failed during a stream")
        if outcome is None:
            return
        result, full_text = outcome
        yield {"type": "done", "message_id": result["message_id"],
               "input_tokens": result["input_tokens"], "output_tokens": result["output_tokens"],
               "cost_usd": result["cost_usd"], "credits_used": result["credits_used"],
               "model": result["model"], "total_latency_ms": result["total_latency_ms"],
               "retrieval_ms": result["retrieval_ms"], "generation_ms": result["generation_ms"],
               # The names the public Egret API gives these two in this event (API.md 7).
               "retrieval_latency_ms": result["retrieval_ms"],
               "generation_latency_ms": result["generation_ms"], "full_text": full_text,
               "sources": result["sources"], "suggestions": result["suggestions"]}

    def _generated(self) -> Iterator[dict]:
        """The text deltas of the answer; returns (the settled result, the whole text)."""
        start = time.monotonic()
        parts: list[str] = []
        if self.grounding.insufficient:
            parts.append(insufficient_answer(self.query))
            yield {"type": "text_delta", "text": parts[0]}
            finish = Finish(Usage(), [])
        else:
            finish = None
            markers = prompting.MarkerFilter(len(self.sources))
            provider = get_provider(self.query.model.provider)
            request = self.generation_request()
            release_database(provider)
            # Deltas are coalesced: one line at most every COALESCE seconds (the first
            # at once); text that arrives sooner waits for the next delta or the end.
            interval, held, last_sent = settings.EGRET_STREAM_COALESCE_SECONDS, [], 0.0
            for item in provider.stream(request):
                if isinstance(item, Finish):
                    finish = item
                    continue
                text = markers.feed(item.text)
                if text:
                    parts.append(text)
                    held.append(text)
                    now = time.monotonic()
                    if now - last_sent >= interval:
                        last_sent = now
                        yield {"type": "text_delta", "text": "".join(held)}
                        held.clear()
            tail = markers.flush()
            if tail:
                parts.append(tail)
                held.append(tail)
            if held:
                yield {"type": "text_delta", "text": "".join(held)}
            if finish is None:
                raise ProviderError("the provider's stream ended without finishing")
        full_text = "".join(parts)
        result = self.complete(full_text, finish.usage, finish.suggestions, self.sources,
                               ms_since(start))
        return result, full_text


def guarded(work, body: Iterator[dict], *, abandoned: str, failure: str):
    """The events of `body`, a generator that returns what the `done` event is made of, and
    that value (None after a failure). A client that goes away refunds `work` (`abandoned`);
    a failure is logged (`failure`), refunded and ends the stream with an `error` event.
    `work` is an `Answering` or a comparison's `Comparing`."""
    try:
        return (yield from body)
    except GeneratorExit:
        work.abandon(abandoned)
        raise
    except Exception:
        logger.exception(failure)
        work.abandon("generation failed")
        yield {"type": "error", "detail": SERVER_ERROR_DETAIL,
               "request_id": request_id_var.get()}
        return None


def ndjson(events: Iterator[dict]) -> Iterator[bytes]:
    """One JSON object per line. Closing this closes `events` at once (not whenever the
    garbage collector gets to it), so an abandoned stream is refunded immediately."""
    try:
        for event in events:
            yield (json.dumps(event, ensure_ascii=False, default=str) + "\n").encode()
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def retrieved(work):
    """Reserve, then retrieve; a failure of the retrieval gives the credits back. `work` is
    an `Answering` or a comparison's `Comparing` (the same reserve/retrieve/abandon steps)."""
    work.reserve()
    try:
        work.retrieve()
    except BaseException:
        work.abandon("request failed")
        raise
    return work


def answered(work) -> dict:
    """The whole answer of retrieved `work`; a failure gives the credits back."""
    try:
        return work.answer()
    except BaseException:
        work.abandon("request failed")
        raise


def query_answer(query: Query) -> dict:
    return answered(retrieved(Answering(query)))


class EventStream:
    """The events of a streaming answer or comparison (`work`: an `Answering` or a
    `Comparing`). Closing it early (the client went away, or the server never started
    sending) refunds the reservation unless the work was settled."""

    def __init__(self, work, abandoned: str = "stream closed before the answer was complete"
                 ) -> None:
        self.work = work
        self.abandoned = abandoned
        self._events = work.events()

    def __iter__(self) -> "EventStream":
        return self

    def __next__(self) -> dict:
        return next(self._events)

    def close(self) -> None:
        self._events.close()
        self.work.abandon(self.abandoned)


def query_stream(query: Query) -> EventStream:
    """Reserve and retrieve now (their errors are ordinary JSON errors); generation happens
    while the response is sent."""
    return EventStream(retrieved(Answering(query)))
