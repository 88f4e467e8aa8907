from __future__ import annotations

from django.db import models


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
