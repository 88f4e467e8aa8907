"""A small library (two domains) and clients for the assistant tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing import services as billing
from billing.models import CreditAccount
from knowledge.library import library_document_add
from knowledge.models import Category, Domain

LIBRARY = {
    ("business-continuity", "us"): {
        "bia.md": """# Business Impact Analysis

> Sample content for tests.

## Review frequency

Review the business impact analysis at least once a year. Update it earlier after a
merger, a new critical vendor or a major system change.

## Recovery objectives

Assign each critical function a recovery time objective. Tier 1 functions must recover
within four hours.
""",
        "testing.md": """# Continuity Testing

## Test programme

Test the business continuity plan every year with a full-scale exercise. Record the
results in an after-action report and track remediation to closure.

## Retention

Keep test plans and after-action reports for five years.
""",
    },
    ("business-continuity", "sg"): {
        "board.md": """# Board Oversight

## Board responsibilities

The board approves the resilience framework and reviews it annually.
""",
    },
    ("privacy", "eu"): {
        "breach.md": """# Breach Notification

## Deadline

Notify the supervisory authority of a personal data breach within 72 hours of becoming
aware of it.
""",
    },
}


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def library(db, tmp_path):
    """{(domain slug, category code): Category} with ready public documents."""
    categories = {}
    for (slug, code), files in LIBRARY.items():
        domain, _ = Domain.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
        category, _ = Category.objects.get_or_create(domain=domain, code=code,
                                                     defaults={"name": code.upper()})
        categories[(slug, code)] = category
        for name, text in files.items():
            path = Path(tmp_path) / f"{slug}-{code}-{name}"
            path.write_text(text, encoding="utf-8")
            title = text.splitlines()[0].lstrip("# ").strip()
            library_document_add(path, domain=domain, category=category, title=title)
    return categories


def balance(org) -> int:
    return CreditAccount.objects.get(organization=org).balance


def set_balance(org, amount: int) -> None:
    current = balance(org)
    if amount != current:
        billing.credits_grant(org, amount - current, kind="adjustment", memo="test")


@pytest.fixture
def api(org, owner, jwt_client, library):
    return jwt_client(owner, org)


def ask(api, query="How often must we review the business impact analysis?", **fields):
    body = {"query": query, "domain": "business-continuity", "category": "us",
            "mode": "compliance", **fields}
    return api.post("/v1/query/", body, format="json")
