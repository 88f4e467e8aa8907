from django_tasks import task

from knowledge import services


@task()
def ingest_document(document_id: str) -> str:
    """Background ingestion of one document; returns its final status."""
    return services.document_ingest(document_id).status
