"""The request examples of the OpenAPI document (what /docs/ offers to "Try it out") work on
the demo data: each one, sent as the demo user to a server loaded by `manage.py egret_demo`,
gets the success status its operation documents.

Path parameters come from the demo (its organization, its API key) or from what an earlier
example created (the session of the first question, the account the sign-up example makes),
so the examples run in the order a newcomer would try them."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from core.models import User
from organizations.management.commands.egret_demo import DEMO_EMAIL, DEMO_SLUG
from organizations.models import ApiKey
from tests.conftest import access_token

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# Operations whose examples need a secret that only an email carries.
NEEDS_AN_EMAILED_TOKEN = {"auth_password_reset_confirm", "auth_invitations_accept"}
# Examples that create what later ones use run first; the rest keep the document's order.
ORDER = ["auth_register", "auth_jwt_create", "query_create", "sessions_rename",
         "orgs_members_create", "orgs_members_partial_update", "api_keys_partial_update",
         "api_keys_create"]


def request_examples(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            for media_type, content in operation.get("requestBody", {}).get("content",
                                                                             {}).items():
                for name, example in content.get("examples", {}).items():
                    yield path, method, operation, media_type, name, example["value"]


def rank(example) -> int:
    operation_id = example[2]["operationId"]
    return ORDER.index(operation_id) if operation_id in ORDER else len(ORDER)


def test_request_examples_get_their_documented_status_on_the_demo_data(db):
    call_command("egret_demo", stdout=io.StringIO())
    anonymous = APIClient()
    document = anonymous.get("/v1/schema/").json()
    demo = APIClient()
    token = access_token(User.objects.get(email=DEMO_EMAIL))
    demo.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_ORGANIZATION=DEMO_SLUG)
    known = {"slug": DEMO_SLUG,
             "key_id": str(ApiKey.objects.get(organization__slug=DEMO_SLUG,
                                              revoked_at__isnull=True).pk)}

    examples = sorted(request_examples(document), key=rank)
    operation_ids = {example[2]["operationId"] for example in examples}
    assert NEEDS_AN_EMAILED_TOKEN <= operation_ids  # the exceptions are still real
    assert {"query_create", "orgs_partial_update", "auth_register"} <= operation_ids

    failures, sent = [], 0
    for path, method, operation, media_type, name, value in examples:
        operation_id = operation["operationId"]
        if operation_id in NEEDS_AN_EMAILED_TOKEN:
            continue
        if operation_id == "api_keys_create":  # the plan's one key is the demo's: free it
            for key in ApiKey.objects.filter(organization__slug=DEMO_SLUG,
                                             revoked_at__isnull=True):
                assert demo.delete(f"/v1/billings/api-keys/{key.pk}/").status_code == 204
        missing = [name for name in _parameters(path) if name not in known]
        assert not missing, f"{method.upper()} {path}: add a demo value for {missing} here"
        url = path.format(**known)
        client = demo if operation.get("security") else anonymous
        fmt = "multipart" if media_type == "multipart/form-data" else "json"
        response = getattr(client, method)(url, value, format=fmt)
        sent += 1
        documented = {int(code) for code in operation["responses"] if code.startswith("2")}
        if response.status_code not in documented:
            failures.append(f"{method.upper()} {path} example {name!r}: "
                            f"{response.status_code} {response.content[:300]!r}, documented "
                            f"{sorted(documented)}")
            continue
        body = response.json() if response.get("Content-Type", "").startswith(
            "application/json") else {}
        if operation_id == "query_create":
            known.setdefault("session_id", body["session_id"])
            if body["insufficient_context"] or not body["sources"]:
                failures.append(f"POST {path} example {name!r}: the demo library does not "
                                f"answer it")
        if operation_id == "auth_register":
            known["user_id"] = body["id"]
    assert not failures, "\n".join(failures)
    assert sent >= 12


def _parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
