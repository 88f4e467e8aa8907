"""/v1/documents/ (API.md 9): upload, processing -> ready, limits, isolation, downloads."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge import retrieval
from knowledge.models import Chunk, Document
from tests.knowledge.files import PNG_1PX, corrupt_pdf, make_pdf

TEXT = b"# Vendor audits\n\n## Frequency\n\nAudit every critical vendor once a year on site."


def upload(client, data=TEXT, name="vendors.md", **fields):
    return client.post("/v1/documents/", {"file": SimpleUploadedFile(name, data), **fields},
                       format="multipart")


@pytest.fixture
def api(org, owner, jwt_client):
    return jwt_client(owner, org)


def test_upload_is_accepted_processing_then_ready(api, org, domain, category,
                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(api, domain="biotech", category="gmp", title="Vendor audits")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "processing" and body["chunk_count"] == 0
    assert body["domain"] == "biotech" and body["category"] == "gmp"
    assert body["uploaded_by"] == "owner@example.com" and body["uploaded_by_key"] is None
    assert body["download_url"] == f"/v1/documents/{body['id']}/download/"
    for callback in callbacks:
        callback()
    detail = api.get(f"/v1/documents/{body['id']}/").json()
    assert detail["status"] == "ready" and detail["chunk_count"] >= 1
    hits = retrieval.search("vendor audit frequency", domain=domain, category=category,
                            organization=org)
    assert hits and str(hits[0].document.pk) == body["id"] and hits[0].scope == "private"


def test_upload_with_an_api_key_records_the_key(org, make_key, key_client, owner, jwt_client,
                                                django_capture_on_commit_callbacks,
                                                django_assert_max_num_queries):
    key, raw = make_key(org, name="ingest-bot")
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(key_client(raw))
    assert response.status_code == 202
    shown = {"id": str(key.pk), "key_prefix": key.key_prefix, "name": "ingest-bot"}
    assert response.json()["uploaded_by"] is None
    assert response.json()["uploaded_by_key"] == shown
    assert Document.objects.get().uploaded_by_api_key == key
    owner_api = jwt_client(owner, org)
    document_id = response.json()["id"]
    assert owner_api.get(f"/v1/documents/{document_id}/").json()["uploaded_by_key"] == shown
    with django_assert_max_num_queries(4):  # auth, membership, page: the key comes joined
        listed = owner_api.get("/v1/documents/").json()["results"]
    assert [d["uploaded_by_key"] for d in listed] == [shown]


def test_corrupt_pdf_ends_failed(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(api, corrupt_pdf(), "broken.pdf")
    assert response.status_code == 202
    detail = api.get(f"/v1/documents/{response.json()['id']}/").json()
    assert detail["status"] == "failed" and "damaged" in detail["error"]


def test_pdf_upload_reports_pages(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(api, make_pdf(["Page one text here.", "Page two text here."]),
                          "two.pdf")
    detail = api.get(f"/v1/documents/{response.json()['id']}/").json()
    assert detail["status"] == "ready" and detail["page_count"] == 2
    assert detail["content_type"] == "application/pdf"


def test_same_file_twice_returns_the_existing_document(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = upload(api)
        second = upload(api, name="copy.md")
    assert first.status_code == 202 and second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert Document.objects.count() == 1


@pytest.mark.parametrize("data,name,detail", [
    (PNG_1PX, "logo.md", "file: Unsupported file type: image/png"),
    (b"", "empty.md", "file"),
])
def test_bad_files_are_400_and_store_nothing(api, data, name, detail):
    response = upload(api, data, name)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)
    assert not Document.objects.exists()


def test_missing_file_is_400(api):
    response = api.post("/v1/documents/", {"title": "x"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["detail"] == "file field is required."


def test_too_large_is_413_and_says_the_limit(api, settings):
    settings.EGRET_MAX_UPLOAD_BYTES = 1024
    response = upload(api, b"word " * 400)
    assert response.status_code == 413
    assert "1024 bytes" in response.json()["detail"]
    assert not Document.objects.exists()


def test_unknown_domain_or_category_is_404(api, domain):
    assert upload(api, domain="nope").json()["detail"] == "Domain not found."
    assert upload(api, domain="biotech", category="zz").json()["detail"] == "Category not found."
    assert not Document.objects.exists()


def test_plan_without_custom_documents_is_403(owner, make_org, jwt_client):
    free = make_org(owner, plan="free", slug="freebie")
    response = upload(jwt_client(owner, free))
    assert response.status_code == 403
    assert response.json()["detail"] == "Your plan does not include custom documents."


def test_max_documents_is_403_naming_the_limit(api, org, django_capture_on_commit_callbacks):
    org.max_documents_override = 1
    org.save(update_fields=["max_documents_override"])
    with django_capture_on_commit_callbacks(execute=True):
        assert upload(api).status_code == 202
    response = upload(api, b"# Other\n\nA different file.", "other.md")
    assert response.status_code == 403
    assert "at most 1 documents" in response.json()["detail"]


def test_storage_limit_is_403(api, monkeypatch):
    from organizations.models import Organization

    # Storage limits are set in GB with 2 decimals; shrink it to 10 bytes for the test.
    monkeypatch.setattr(Organization, "max_storage_bytes", property(lambda self: 10))
    response = upload(api)
    assert response.status_code == 403 and "storage" in response.json()["detail"]
    assert not Document.objects.exists()


def test_list_is_cursor_paginated_and_filters_by_status(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(api)
        upload(api, corrupt_pdf(), "bad.pdf")
    body = api.get("/v1/documents/").json()
    assert set(body) == {"next", "previous", "results"} and len(body["results"]) == 2
    failed = api.get("/v1/documents/?status=failed").json()["results"]
    assert [d["filename"] for d in failed] == ["bad.pdf"]
    bad = api.get("/v1/documents/?status=done")
    assert bad.status_code == 400 and bad.json()["detail"].startswith("status:")


def test_other_organization_gets_404_and_never_retrieves_it(
        api, make_user, make_org, jwt_client, domain, category,
        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        document_id = upload(api).json()["id"]
    stranger = make_user("stranger@example.com")
    rival = make_org(stranger, slug="rival")
    other = jwt_client(stranger, rival)
    with django_capture_on_commit_callbacks(execute=True):
        upload(other, TEXT + b"\n", "theirs.md")
    for url in (f"/v1/documents/{document_id}/", f"/v1/documents/{document_id}/download/"):
        response = other.get(url)
        assert response.status_code == 404 and response.json()["detail"] == "Document not found."
    assert other.delete(f"/v1/documents/{document_id}/").status_code == 404
    hits = retrieval.search("vendor audit", domain=domain, category=category,
                            organization=rival, limit=20)
    assert hits and all(str(h.document.pk) != document_id for h in hits)


def test_download_private_and_library_documents(api, domain, category, make_user, make_org,
                                                jwt_client, django_capture_on_commit_callbacks):
    from knowledge import services

    with django_capture_on_commit_callbacks(execute=True):
        document_id = upload(api).json()["id"]
    response = api.get(f"/v1/documents/{document_id}/download/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == TEXT
    assert "attachment" in response["Content-Disposition"]
    library = services.document_create(data=b"# Lib\n\nPublic text.", filename="lib.md",
                                       domain=domain, category=category)
    stranger = make_user("s@example.com")
    other = jwt_client(stranger, make_org(stranger, slug="other"))
    assert other.get(f"/v1/documents/{library.pk}/download/").status_code == 200
    assert api.get("/v1/documents/not-a-uuid/").status_code == 404


def test_anonymous_is_401(client):
    assert client.get("/v1/documents/").status_code == 401
    assert client.post("/v1/documents/", {}, format="multipart").status_code == 401


def test_delete_removes_it_from_the_index(api, org, add_member, make_user, jwt_client,
                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        document_id = upload(api).json()["id"]
    member = make_user("m@example.com")
    add_member(org, member)
    assert jwt_client(member, org).delete(f"/v1/documents/{document_id}/").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/v1/documents/{document_id}/").status_code == 204
    assert not Chunk.objects.exists()
    assert api.get(f"/v1/documents/{document_id}/").status_code == 404


def test_organization_reports_documents_storage_and_kb_status(
        api, org, django_capture_on_commit_callbacks):
    def detail():
        return api.get(f"/v1/orgs/{org.slug}/").json()

    assert (detail()["document_count"], detail()["kb_status"]) == (0, "empty")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        upload(api)
    body = detail()
    assert body["document_count"] == 1 and body["kb_status"] == "processing"
    assert body["storage_used_bytes"] == len(TEXT)
    for callback in callbacks:
        callback()
    assert detail()["kb_status"] == "active"
    assert api.get("/v1/orgs/").json()[0]["kb_status"] == "active"
