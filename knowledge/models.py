from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.utils import timezone


class Domain(models.Model):
    """A regulated industry the libraries cover (e.g. business continuity)."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Category(models.Model):
    """A jurisdiction or topic inside a domain (e.g. `us`, `sg`)."""

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="categories")
    code = models.SlugField()
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["domain", "code"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "code"], name="category_unique_code")
        ]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return f"{self.domain.slug}/{self.code}"


def document_upload_path(document: "Document", filename: str) -> str:
    owner = str(document.organization_id) if document.organization_id else "library"
    return f"documents/{owner}/{document.id}/{filename}"


class Document(models.Model):
    """A library document (organization empty: public) or one organization's private one."""

    class Status(models.TextChoices):
        PROCESSING = "processing"
        READY = "ready"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                     null=True, blank=True, related_name="documents")
    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, null=True, blank=True,
                               related_name="documents")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="documents")
    title = models.CharField(max_length=300)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    file = models.FileField(upload_to=document_upload_path, max_length=500)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PROCESSING)
    error = models.TextField(blank=True)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                    null=True, blank=True, related_name="+")
    uploaded_by_api_key = models.ForeignKey("organizations.ApiKey", on_delete=models.SET_NULL,
                                            null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"]),
                   models.Index(fields=["domain", "category", "status"])]
        constraints = [
            models.UniqueConstraint(fields=["organization", "sha256"],
                                    name="document_unique_file_per_org"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def download_url(self) -> str:
        return f"/v1/documents/{self.pk}/download/"


class Chunk(models.Model):
    """A passage of a document. Organization, domain and category are copied from the
    document so retrieval filters inside the search query, on one table."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                     null=True, blank=True, related_name="+")
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, null=True, blank=True,
                               related_name="+")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, null=True, blank=True,
                                 related_name="+")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    section = models.CharField(max_length=300, blank=True)
    # Where the passage sits: "Document title › Section › Subsection" (the innermost heading
    # is `section`). Indexed with the heading's weight; retrieval widens a hit along it.
    heading_path = models.CharField(max_length=1000, blank=True)
    page = models.PositiveIntegerField(null=True, blank=True)
    token_count = models.PositiveIntegerField(default=0)
    search_vector = SearchVectorField(null=True, blank=True)
    embedding = models.BinaryField(null=True, blank=True)

    class Meta:
        ordering = ["document", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["document", "ordinal"], name="chunk_unique_ordinal"),
        ]
        indexes = [models.Index(fields=["domain", "category"]),
                   models.Index(fields=["organization"])]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.ordinal}"
