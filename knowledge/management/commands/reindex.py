from django.core.management.base import BaseCommand

from knowledge import embeddings, services, vectors
from knowledge.models import Document


class Command(BaseCommand):
    help = ("Rebuild the full-text vectors (PostgreSQL) and, when enabled, the embeddings; "
            "with --no-embeddings the pgvector column is refilled from the stored embeddings; "
            "with --reingest every ready document is parsed and chunked again first (heading "
            "paths and boilerplate filtering of a newer version).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-embeddings", action="store_true")
        parser.add_argument("--reingest", action="store_true",
                            help="parse and chunk every ready document again (embeds too)")

    def handle(self, *args, **opts) -> None:
        if opts["reingest"]:
            ready = Document.objects.filter(status=Document.Status.READY).order_by("created_at")
            done = kept = 0
            for pk, title in list(ready.values_list("pk", "title")):
                try:
                    services.document_ingest(pk, keep_on_failure=True)
                    done += 1
                except services.IngestionFailed as exc:  # its chunks stay as they were
                    kept += 1
                    self.stderr.write(f"{title}: {exc} Left as it was.")
            self.stdout.write(f"documents ingested again: {done} ready, {kept} left as they were")
            return
        count = services.index_chunks()
        self.stdout.write(f"full-text vectors rebuilt: {count} chunks")
        if embeddings.enabled() and not opts["no_embeddings"]:
            self.stdout.write(f"embeddings rebuilt: {services.embeddings_rebuild()} chunks")
        elif vectors.column() is not None:
            self.stdout.write(f"pgvector column refilled: {vectors.sync()} chunks")
