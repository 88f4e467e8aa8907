import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge.models import Chunk, Document
from tests.knowledge.files import PNG_1PX

TEXT = b"# Deviations\n\n## Closure\n\nClose every deviation within thirty days of its discovery."


@pytest.mark.parametrize("url", ["/admin/knowledge/document/", "/admin/knowledge/document/add/",
                                 "/admin/knowledge/domain/"])
def test_admin_pages_render(staff, url):
    assert staff.get(url).status_code == 200


def test_upload_in_admin_starts_ingestion(staff, domain, category,
                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post("/admin/knowledge/document/add/", {
            "title": "Deviation handling", "domain": domain.pk, "category": category.pk,
            "upload": SimpleUploadedFile("deviations.md", TEXT)})
    assert response.status_code == 302, response.content[:2000]
    document = Document.objects.get()
    assert document.organization is None and document.title == "Deviation handling"
    assert document.status == Document.Status.READY and document.chunk_count == 1
    page = staff.get(f"/admin/knowledge/document/{document.pk}/change/")
    assert b"Ready" in page.content


def test_admin_refuses_an_unsupported_file_and_creates_nothing(staff, domain):
    response = staff.post("/admin/knowledge/document/add/", {
        "domain": domain.pk, "upload": SimpleUploadedFile("logo.md", PNG_1PX)})
    assert response.status_code == 200
    assert b"Unsupported file type: image/png" in response.content
    assert not Document.objects.exists()


def test_reingest_action_rebuilds_chunks(staff, domain, category,
                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        staff.post("/admin/knowledge/document/add/", {
            "domain": domain.pk, "category": category.pk,
            "upload": SimpleUploadedFile("deviations.md", TEXT)})
    document = Document.objects.get()
    before = set(Chunk.objects.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post("/admin/knowledge/document/", {
            "action": "reingest", "_selected_action": [str(document.pk)]})
    assert response.status_code == 302
    document.refresh_from_db()
    assert document.status == Document.Status.READY
    after = set(Chunk.objects.values_list("pk", flat=True))
    assert after and not before & after
