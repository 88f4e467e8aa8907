"""Every write of the knowledge base: documents in, chunks indexed, documents out."""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException

from core.exceptions import FieldError, Forbidden, NotFound

from knowledge import chunking, embeddings, parsing
from knowledge import vectors as pgvector
from knowledge.models import Category, Chunk, Document, Domain
from webhooks import events

logger = logging.getLogger("egret.knowledge")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def document_create(*, data: bytes, filename: str, title: str = "", organization=None,
                    domain: Domain | None = None, category: Category | None = None,
                    uploaded_by=None, uploaded_by_api_key=None) -> Document:
    """Store the file and the row in `processing`; ingestion is a separate step (a task)."""
    kind = parsing.screen(data, filename)
    document = Document(
        organization=organization, domain=domain, category=category,
        title=(title or filename)[:300], filename=filename[:255],
        content_type=parsing.KINDS[kind], size_bytes=len(data), sha256=sha256_of(data),
        uploaded_by=uploaded_by, uploaded_by_api_key=uploaded_by_api_key,
    )
    document.file.save(filename, ContentFile(data), save=False)
    try:
        document.save()
    except Exception:
        default_storage.delete(document.file.name)
        raise
    return document


def ingestion_enqueue(document: Document) -> None:
    """Queue ingestion once the row is committed (a worker must be able to see it)."""
    from knowledge.tasks import ingest_document

    if document.status != Document.Status.PROCESSING:
        Document.objects.filter(pk=document.pk).update(status=Document.Status.PROCESSING,
                                                       error="", updated_at=timezone.now())
        document.status, document.error = Document.Status.PROCESSING, ""
    transaction.on_commit(lambda: ingest_document.enqueue(str(document.pk)))


class IngestionFailed(Exception):
    """A re-ingestion that failed and left the document as it was."""


def document_ingest(document_id, *, keep_on_failure: bool = False) -> Document:
    """Parse, chunk and index one document. The old chunks are replaced in one transaction,
    so a search sees either the previous index or the new one, never half of it. A file we
    cannot read ends `failed` with a readable error; nothing else is left behind. With
    `keep_on_failure` (re-ingesting a ready document) a failure leaves it as it was and
    raises IngestionFailed."""
    document = Document.objects.get(pk=document_id)
    try:
        with document.file.open("rb") as handle:
            data = handle.read()
        parsed = parsing.parse(data, document.filename)
        drafts = chunking.chunk_blocks(parsed.blocks)
        if not drafts:
            raise parsing.ParseError("The file contains no readable text.")
        paths = [heading_path(document.title, draft.path or (draft.section,))
                 for draft in drafts]
        vectors = _embed([_embedding_text(path, d.text) for path, d in zip(paths, drafts)])
    except parsing.ParseError as exc:
        if keep_on_failure:
            raise IngestionFailed(str(exc)) from exc
        return _fail(document, str(exc))
    except Exception:  # a bug or an outage must not leave the document `processing` forever
        logger.exception("Ingestion of document %s failed", document.pk)
        if keep_on_failure:
            raise IngestionFailed("The document could not be processed.") from None
        return _fail(document, "The document could not be processed. Try uploading it again.")
    with transaction.atomic():
        Chunk.objects.filter(document=document).delete()
        Chunk.objects.bulk_create([
            Chunk(document=document, organization_id=document.organization_id,
                  domain_id=document.domain_id, category_id=document.category_id,
                  ordinal=draft.ordinal, text=draft.text, section=draft.section[:300],
                  heading_path=paths[i],
                  page=draft.page, token_count=draft.token_count,
                  embedding=embeddings.to_bytes(vectors[i]) if vectors is not None else None)
            for i, draft in enumerate(drafts)
        ], batch_size=500)
        index_chunks(document_id=document.pk)
        pgvector.sync(document_id=document.pk)
        Document.objects.filter(pk=document.pk).update(
            status=Document.Status.READY, error="", page_count=parsed.page_count,
            chunk_count=len(drafts), updated_at=timezone.now())
        events.document_finished(document, status=Document.Status.READY)
    document.refresh_from_db()
    return document


PATH_SEPARATOR = " › "


def heading_path(title: str, headings: tuple[str, ...]) -> str:
    """"Title › Section › Subsection": the document's title leads unless its first heading
    already is the title; empty headings are left out."""
    parts = [h for h in headings if h]
    if title and not (parts and parts[0].casefold() == title.casefold()):
        parts.insert(0, title)
    return PATH_SEPARATOR.join(parts)[:1000]


def _embedding_text(path: str, text: str) -> str:
    """What a chunk's embedding is computed from: its heading path gives the passage context."""
    return f"{path}\n{text}" if path else text


def _embed(texts: list[str]):
    if not embeddings.enabled():
        return None
    return embeddings.embed_texts(texts)


def _fail(document: Document, error: str) -> Document:
    with transaction.atomic():
        Chunk.objects.filter(document=document).delete()
        Document.objects.filter(pk=document.pk).update(
            status=Document.Status.FAILED, error=error, chunk_count=0,
            updated_at=timezone.now())
        events.document_finished(document, status=Document.Status.FAILED, error=error)
    document.refresh_from_db()
    return document


def index_chunks(*, document_id=None) -> int:
    """Fill the stored tsvector (PostgreSQL): the heading path weighs more (A) than the
    body (B). On SQLite the FTS5 triggers keep the index current; nothing to do."""
    if connection.vendor != "postgresql":
        return 0
    config = settings.EGRET_SEARCH_CONFIG
    where, params = ("WHERE document_id = %s", [document_id]) if document_id else ("", [])
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE knowledge_chunk SET search_vector = "
            "setweight(to_tsvector(%s::regconfig, coalesce(heading_path, '')), 'A') || "
            f"setweight(to_tsvector(%s::regconfig, text), 'B') {where}",
            [config, config, *params])
        return cursor.rowcount


def embeddings_rebuild(*, batch_size: int = 256) -> int:
    """Recompute every chunk's embedding with the configured backend (after a model change).
    Where the pgvector column exists it is retyped to the model's width first (emptied) and
    each batch is mirrored into it."""
    if pgvector.column() is not None:
        pgvector.retype(embeddings.dimensions())
    done = 0
    queryset = Chunk.objects.order_by("pk").values_list("pk", "heading_path", "text")
    batch: list[tuple] = []
    for row in queryset.iterator(chunk_size=batch_size):
        batch.append(row)
        if len(batch) >= batch_size:
            done += _embed_batch(batch)
            batch = []
    if batch:
        done += _embed_batch(batch)
    # Processes keeping a scope's vectors (knowledge/retrieval.py) read them again.
    Document.objects.update(updated_at=timezone.now())
    return done


def _embed_batch(rows: list[tuple]) -> int:
    vectors = embeddings.embed_texts([_embedding_text(s, t) for _, s, t in rows])
    for (pk, _, _), vector in zip(rows, vectors):
        Chunk.objects.filter(pk=pk).update(embedding=embeddings.to_bytes(vector))
    pgvector.sync(ids=[pk for pk, _, _ in rows])
    return len(rows)


def document_delete(document: Document) -> None:
    """Chunks leave the index in the same transaction; the file goes after the commit."""
    name = document.file.name
    with transaction.atomic():
        document.delete()
        transaction.on_commit(lambda: default_storage.delete(name) if name else None)


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


def upload_limit_error() -> PayloadTooLarge:
    limit = settings.EGRET_MAX_UPLOAD_BYTES
    return PayloadTooLarge(f"The file is larger than the {limit // (1024 * 1024)} MB limit "
                           f"({limit} bytes).")


def document_upload(organization, *, data: bytes, filename: str, title: str = "",
                    domain_slug: str = "", category_code: str = "", uploaded_by=None,
                    uploaded_by_api_key=None) -> tuple[Document, bool]:
    """An organization's upload (API.md 9): (document, created). Checks in the contract's
    order: shape of the file (400/413), plan feature and limits (403); the same file again
    returns the existing document. Ingestion is queued after the commit."""
    if not data:
        raise FieldError("file", "the file is empty.")
    if len(data) > settings.EGRET_MAX_UPLOAD_BYTES:
        raise upload_limit_error()
    try:
        parsing.screen(data, filename)
    except parsing.ParseError as exc:
        raise FieldError("file", str(exc)) from exc
    domain = category = None
    if category_code and not domain_slug:
        raise FieldError("category", "a category needs its domain.")
    if domain_slug:
        domain = Domain.objects.filter(slug=domain_slug, is_active=True).first()
        if domain is None:
            raise NotFound("Domain")
    if category_code:
        category = Category.objects.filter(domain=domain, code=category_code).first()
        if category is None:
            raise NotFound("Category")
    plan = organization.plan
    if not plan.has_custom_documents:
        raise Forbidden("Your plan does not include custom documents.")
    digest = sha256_of(data)
    with transaction.atomic():
        # The organization row serializes concurrent uploads so limits cannot be overshot.
        type(organization).objects.select_for_update().filter(pk=organization.pk).first()
        existing = Document.objects.filter(organization=organization, sha256=digest).first()
        if existing is not None:
            return existing, False
        used = Document.objects.filter(organization=organization).aggregate(
            count=Count("pk"), size=Sum("size_bytes"))
        limit = organization.max_documents
        if limit and used["count"] >= limit:
            raise Forbidden(f"Your plan allows at most {limit} documents; delete one or "
                            "upgrade your plan.")
        storage = organization.max_storage_bytes
        if storage and (used["size"] or 0) + len(data) > storage:
            raise Forbidden(f"This upload would exceed your plan's storage of "
                            f"{storage / 1024**3:.2f} GB.")
        document = document_create(data=data, filename=filename, title=title,
                                   organization=organization, domain=domain,
                                   category=category, uploaded_by=uploaded_by,
                                   uploaded_by_api_key=uploaded_by_api_key)
        ingestion_enqueue(document)
    return document, True
