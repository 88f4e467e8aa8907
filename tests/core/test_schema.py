"""The OpenAPI document at /v1/schema/ and the offline interactive reference at /docs/
(API.md 10)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.drainage import GENERATOR_STATS
from rest_framework.views import APIView

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
PUBLIC_OPERATIONS = [
    ("/v1/billings/plans/", "get"), ("/v1/domains/", "get"), ("/v1/domains/{slug}/", "get"),
    ("/v1/domains/{slug}/categories/", "get"), ("/health/", "get"),
    ("/auth/register/", "post"), ("/auth/jwt/create/", "post"),
]
ERROR_SCHEMA = "#/components/schemas/Error"


@pytest.fixture(scope="module")
def document(django_db_blocker) -> dict:
    from rest_framework.test import APIClient

    # Module-scoped (generated once), so outside the autouse plain-HTTP settings: HTTPS.
    with django_db_blocker.unblock():
        response = APIClient().get("/v1/schema/", secure=True)
    assert response.status_code == 200, response.content[:500]
    return response.json()


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def openapi_path(route: str) -> str:
    """`v1/orgs/<str:slug>/` -> `/v1/orgs/{slug}/`."""
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def api_routes(patterns=None, prefix: str = ""):
    """Every DRF view routed in egret/urls.py, as (OpenAPI path, view name)."""
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue
            yield from api_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            view = getattr(pattern.callback, "cls", None)
            # The catch-all 404 and plain Django views (not API operations) are not documented.
            if view is None or not issubclass(view, APIView) or pattern.name == "docs":
                continue
            yield openapi_path(route), pattern.name


# --- The document ----------------------------------------------------------------------------
def test_spectacular_validates_without_warnings_or_errors(tmp_path):
    GENERATOR_STATS.reset()  # warnings of earlier generations in this process do not count
    call_command("spectacular", "--validate", "--fail-on-warn", "--file",
                 str(tmp_path / "schema.yaml"))
    assert not GENERATOR_STATS, "drf-spectacular emitted warnings or errors (see stderr)"
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3.")


def test_schema_is_a_public_openapi_3_document(client, db):
    response = client.get("/v1/schema/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    body = response.json()
    assert body["openapi"].startswith("3.")
    assert body["info"]["title"] == "Egret API"


def test_schema_is_served_as_yaml_on_request(client, db):
    response = client.get("/v1/schema/", HTTP_ACCEPT="application/yaml")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    assert response.content.startswith(b"openapi: 3.")


def test_schema_errors_are_json(client, db):
    response = client.get("/v1/schema/", HTTP_ACCEPT="text/html")
    assert response.status_code == 406
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()


def test_every_api_path_is_documented(document):
    routes = dict(api_routes())
    assert "/v1/query/" in routes and "/v1/orgs/{slug}/members/{user_id}/" in routes
    missing = sorted(set(routes) - set(document["paths"]))
    assert missing == []


def test_the_three_security_schemes(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["jwtAuth"] == {**schemes["jwtAuth"], "type": "http", "scheme": "bearer",
                                  "bearerFormat": "JWT"}
    assert schemes["apiKeyBearer"]["type"] == "http"
    assert schemes["apiKeyBearer"]["scheme"] == "bearer"
    assert {k: schemes["apiKeyHeader"][k] for k in ("type", "in", "name")} == {
        "type": "apiKey", "in": "header", "name": "X-API-Key"}


def test_protected_operations_accept_all_three_schemes(document):
    operation = document["paths"]["/v1/query/"]["post"]
    assert operation["security"] == [{"apiKeyBearer": []}, {"apiKeyHeader": []},
                                     {"jwtAuth": []}]


@pytest.mark.parametrize("path, method", PUBLIC_OPERATIONS)
def test_public_operations_have_no_security_requirement(document, path, method):
    operation = document["paths"][path][method]
    assert not operation.get("security")
    assert "credentials were not provided" not in json.dumps(operation["responses"])


def test_every_operation_has_an_id_a_tag_and_a_summary(document):
    ids = []
    for path, method, operation in operations(document):
        assert operation.get("tags") and operation.get("summary"), (method, path)
        ids.append(operation["operationId"])
    assert len(ids) == len(set(ids))


def test_every_operation_documents_its_success_and_500(document):
    for path, method, operation in operations(document):
        codes = set(operation["responses"])
        assert any(code.startswith("2") for code in codes), (method, path)
        assert "500" in codes, (method, path)


def test_every_success_body_has_a_schema_and_json_ones_an_example(document):
    for path, method, operation in operations(document):
        for code, response in operation["responses"].items():
            if not code.startswith("2") or path == "/v1/schema/":
                continue
            for media_type, content in response.get("content", {}).items():
                assert content.get("schema"), (method, path, code, media_type)
                if "json" in media_type or media_type == "application/x-ndjson":
                    assert content.get("examples"), (method, path, code, media_type)


def test_every_error_response_uses_the_error_schema_with_examples(document):
    for path, method, operation in operations(document):
        for code, response in operation["responses"].items():
            if int(code) < 400 or path == "/health/" and code == "503":
                continue
            content = response["content"]
            assert list(content) == ["application/json"], (method, path, code)
            assert content["application/json"]["schema"] == {"$ref": ERROR_SCHEMA}
            for example in content["application/json"]["examples"].values():
                assert isinstance(example["value"]["detail"], str), (method, path, code)


def test_operations_that_need_credentials_document_401_with_www_authenticate(document):
    for path, method, operation in operations(document):
        if operation.get("security"):
            response = operation["responses"].get("401")
            assert response is not None, (method, path)
            assert "WWW-Authenticate" in response["headers"], (method, path)


def test_throttled_operations_document_429_with_retry_after(document):
    for path, method, operation in operations(document):
        if path != "/health/":
            assert "Retry-After" in operation["responses"]["429"]["headers"], (method, path)
    assert "429" not in document["paths"]["/health/"]["get"]["responses"]


def test_error_schema_has_detail(document):
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["detail"]
    assert set(error["properties"]) >= {"detail", "code", "field", "request_id"}


def test_query_documents_the_json_answer_and_the_stream_beside_it(document):
    operation = document["paths"]["/v1/query/"]["post"]
    # One media type for the 200: typed clients parse it; the stream is described apart.
    answers = operation["responses"]["200"]["content"]
    assert list(answers) == ["application/json"]
    assert answers["application/json"]["schema"] == {"$ref": "#/components/schemas/QueryAnswer"}
    stream = operation["x-egret-stream"]
    assert stream["contentType"] == "application/x-ndjson"
    assert stream["event"] == {"$ref": "#/components/schemas/QueryStreamEvent"}
    assert set(stream["examples"]) == {"sources", "text_delta", "done", "error"}
    event = document["components"]["schemas"]["QueryStreamEvent"]
    assert event["discriminator"]["propertyName"] == "type"
    assert set(event["discriminator"]["mapping"]) == {"sources", "text_delta", "done", "error"}
    done = document["components"]["schemas"]["DoneEvent"]
    assert {"retrieval_ms", "generation_ms", "retrieval_latency_ms",
            "generation_latency_ms"} <= set(done["required"])
    assert {"400", "401", "402", "403", "404", "409", "429", "500"} <= set(operation["responses"])
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["Idempotency-Key"]["in"] == "header"
    assert "Idempotent-Replayed" in operation["responses"]["200"]["headers"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/QueryRequest"}


def test_document_upload_is_multipart_and_documents_413(document):
    operation = document["paths"]["/v1/documents/"]["post"]
    body = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    upload = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert upload["properties"]["file"]["format"] == "binary"
    assert {"202", "200", "400", "403", "404", "413"} <= set(operation["responses"])


def test_downloads_and_exports_document_their_media_types(document):
    download = document["paths"]["/v1/documents/{document_id}/download/"]["get"]
    # Bytes whatever the stored type, so generated clients do not decode the body as text.
    assert download["responses"]["200"]["content"] == {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    export = document["paths"]["/v1/sessions/{session_id}/export/"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"text/markdown", "application/json"}
    assert "format" in {p["name"] for p in export["parameters"]}


def test_organization_scoped_operations_take_x_organization(document):
    names = {p["name"] for p in document["paths"]["/v1/sessions/recent/"]["get"]["parameters"]}
    assert "X-Organization" in names
    org_list = document["paths"]["/v1/orgs/"]["get"]
    assert "X-Organization" not in {p["name"] for p in org_list.get("parameters", [])}


# --- The interactive reference ----------------------------------------------------------------
class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def _asset_urls(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.urls


@pytest.fixture
def finders_static(settings):
    """Static files straight from the apps (what WHITENOISE_USE_FINDERS does under DEBUG), so
    the test needs no collectstatic. The next test covers the collected (production) path."""
    settings.WHITENOISE_USE_FINDERS = True


def test_docs_page_uses_only_local_assets(client, db, finders_static):
    response = client.get("/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert not re.search(r"https?://|//cdn", html)
    urls = _asset_urls(html)
    assert any(url.endswith("swagger-ui-bundle.js") for url in urls)
    for url in urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url


def test_docs_assets_are_served(client, db, finders_static):
    html = client.get("/docs/").content.decode()
    for url in _asset_urls(html):
        response = client.get(url)
        assert response.status_code == 200, url
        if url.startswith("/static/"):
            assert b"".join(response.streaming_content), url


def test_docs_start_script_points_at_the_local_schema(client, db):
    response = client.get("/docs/?script=")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    script = response.content.decode()
    assert '"/v1/schema/"' in script
    assert not re.search(r"https?://", script)


def test_collected_sidecar_assets_are_served_without_finders(client, db, settings, tmp_path):
    """Production: `collectstatic` (README, Deploy), then whitenoise serves STATIC_ROOT."""
    settings.STATIC_ROOT = tmp_path / "static"
    settings.WHITENOISE_USE_FINDERS = False
    call_command("collectstatic", "--noinput", verbosity=0)
    response = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith(("text/javascript", "application/javascript"))


def test_docs_errors_are_json(client, db):
    response = client.post("/docs/")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"] == 'Method "POST" not allowed.'


# --- What code generators and strict validators need (tests/openapi_responses.py checks the
# bodies themselves) -------------------------------------------------------------------------
# Keys a response body may leave out: the error body's extras (a ledger actor's person-only or
# key-only keys are inline in LedgerEntry).
OPTIONAL_IN_RESPONSES = {"Error": {"code", "field", "request_id", "messages"}}


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _request_components(document) -> set[str]:
    names = set()
    for _, _, operation in operations(document):
        for node in _walk(operation.get("requestBody", {})):
            if "$ref" in node:
                names.add(node["$ref"].rsplit("/", 1)[1])
    return names


def test_response_components_require_every_field_they_always_carry(document):
    requests = _request_components(document)
    for name, schema in document["components"]["schemas"].items():
        if name in requests or "properties" not in schema:
            continue
        optional = set(schema["properties"]) - set(schema.get("required", []))
        assert optional == OPTIONAL_IN_RESPONSES.get(name, set()), name


def test_request_bodies_state_defaults_in_descriptions_not_as_defaults(document):
    schemas = document["components"]["schemas"]
    for name in _request_components(document):
        for field, schema in schemas[name].get("properties", {}).items():
            assert "default" not in schema, (name, field)
    query = schemas["QueryRequest"]["properties"]
    assert "Default: `false`" in query["stream"]["description"]
    assert 'Default: `"all"`' in query["knowledge_scope"]["description"]
    assert "Default: `5`" in query["max_sources"]["description"]
    assert set(schemas["QueryRequest"]["required"]) == {"query", "domain", "category", "mode"}
    assert schemas["RegisterRequest"]["required"] == ["email", "password"]
    assert schemas["MemberAddRequest"]["required"] == ["email"]


def test_nullable_is_always_written_beside_a_type(document):
    """OpenAPI 3.0: `nullable` widens the `type` beside it; without one, strict validators
    never accept null."""
    for node in _walk(document):
        if node.get("nullable") is True:
            assert "type" in node, node


def test_fields_that_can_be_null_say_so(document):
    schemas = document["components"]["schemas"]
    for component, field in [("Source", "page"), ("Document", "uploaded_by"),
                             ("Document", "domain"), ("Document", "category"),
                             ("PaginatedDocumentList", "next"),
                             ("PaginatedLedgerEntryList", "previous"),
                             ("LedgerEntry", "reservation_id"), ("LedgerEntry", "actor"),
                             ("Me", "user"), ("Me", "api_key"), ("ApiKey", "created_by")]:
        assert schemas[component]["properties"][field]["nullable"] is True, (component, field)
