"""Production ingestion: the upload is queued in the database and a db_worker runs it."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from knowledge.models import Document

TEXT = b"# Continuity\n\n## Testing\n\nRun a full failover exercise twice a year."


@pytest.fixture
def database_queue(settings):
    # django-tasks resets its backends when the TASKS setting changes (and back after).
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def test_upload_waits_in_the_queue_until_a_worker_runs_it(
        database_queue, monkeypatch, org, owner, jwt_client, django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    api = jwt_client(owner, org)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/v1/documents/", {"file": SimpleUploadedFile("c.md", TEXT)},
                            format="multipart")
    assert response.status_code == 202
    document = Document.objects.get()
    assert document.status == Document.Status.PROCESSING
    assert DBTaskResult.objects.count() == 1
    # The worker recycles its connections between tasks; inside the test's transaction that
    # would close the connection holding the uncommitted test data.
    monkeypatch.setattr("django_tasks_db.management.commands.db_worker.close_old_connections",
                        lambda: None)
    call_command("db_worker", "--batch", "--no-startup-delay")
    document.refresh_from_db()
    assert document.status == Document.Status.READY and document.chunk_count == 1
