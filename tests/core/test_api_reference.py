"""docs/api.md, the API reference in the repository, keeps in step with the OpenAPI document
the server generates: every operation has a `### METHOD /path/` section there, and every
section is an operation the server has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
SECTION = re.compile(r"^### (GET|POST|PUT|PATCH|DELETE) (/\S*)$", re.MULTILINE)


@pytest.fixture(scope="module")
def schema_operations(django_db_blocker) -> set[tuple[str, str]]:
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/v1/schema/", secure=True)
    assert response.status_code == 200
    return {(method.upper(), path) for path, item in response.json()["paths"].items()
            for method in item if method in HTTP_METHODS}


def reference_operations() -> list[tuple[str, str]]:
    return SECTION.findall(REFERENCE.read_text(encoding="utf-8"))


def test_every_operation_of_the_schema_has_a_section_in_docs_api_md(schema_operations):
    missing = sorted(schema_operations - set(reference_operations()))
    assert not missing, "add a `### METHOD /path/` section to docs/api.md for each of: " + \
        ", ".join(f"{method} {path}" for method, path in missing)


def test_every_section_of_docs_api_md_is_an_operation_of_the_schema(schema_operations):
    unknown = sorted(set(reference_operations()) - schema_operations)
    assert not unknown, f"docs/api.md documents operations the server does not have: {unknown}"


def test_each_operation_has_one_section():
    sections = reference_operations()
    assert len(sections) == len(set(sections))
    assert len(sections) >= 40
