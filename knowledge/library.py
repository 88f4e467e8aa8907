"""Operators' regulatory libraries: the catalogue (domains, categories) and public documents
loaded from files. The demo library under knowledge/fixtures/library is sample content
written for Egret."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from knowledge import services
from knowledge.models import Category, Document, Domain

DEMO_LIBRARY = Path(__file__).resolve().parent / "fixtures" / "library"


@dataclass
class LoadResult:
    documents: int = 0
    skipped: int = 0
    chunks: int = 0
    failed: int = 0


def catalogue_load(data: dict) -> None:
    with transaction.atomic():
        for item in data.get("domains", []):
            domain, _ = Domain.objects.update_or_create(slug=item["slug"], defaults={
                "name": item["name"], "description": item.get("description", "")})
            for cat in item.get("categories", []):
                Category.objects.update_or_create(domain=domain, code=cat["code"], defaults={
                    "name": cat["name"], "description": cat.get("description", "")})


def library_document_add(path: Path, *, domain: Domain, category: Category | None,
                         title: str = "") -> tuple[Document, bool]:
    """Add one public document and ingest it now; (document, created). The same file already
    in the library for that domain and category is not added twice."""
    data = path.read_bytes()
    existing = Document.objects.filter(organization__isnull=True, domain=domain,
                                       category=category,
                                       sha256=services.sha256_of(data)).first()
    if existing is not None:
        return existing, False
    document = services.document_create(data=data, filename=path.name, title=title,
                                        domain=domain, category=category)
    return services.document_ingest(document.pk), True


def demo_library_load(root: Path = DEMO_LIBRARY, progress=None) -> LoadResult:
    catalogue = json.loads((root / "catalogue.json").read_text(encoding="utf-8"))
    catalogue_load(catalogue)
    result = LoadResult()
    for item in catalogue.get("documents", []):
        domain = Domain.objects.get(slug=item["domain"])
        category = Category.objects.get(domain=domain, code=item["category"])
        document, created = library_document_add(root / item["path"], domain=domain,
                                                 category=category, title=item.get("title", ""))
        if not created:
            result.skipped += 1
        elif document.status == Document.Status.READY:
            result.documents += 1
            result.chunks += document.chunk_count
        else:
            result.failed += 1
        if progress:
            progress(document)
    return result
