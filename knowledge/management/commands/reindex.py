from django.core.management.base import BaseCommand

from knowledge import embeddings, services, vectors


class Command(BaseCommand):
    help = ("Rebuild the full-text vectors (PostgreSQL) and, when enabled, the embeddings; "
            "with --no-embeddings the pgvector column is refilled from the stored embeddings.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-embeddings", action="store_true")

    def handle(self, *args, **opts) -> None:
        count = services.index_chunks()
        self.stdout.write(f"full-text vectors rebuilt: {count} chunks")
        if embeddings.enabled() and not opts["no_embeddings"]:
            self.stdout.write(f"embeddings rebuilt: {services.embeddings_rebuild()} chunks")
        elif vectors.column() is not None:
            self.stdout.write(f"pgvector column refilled: {vectors.sync()} chunks")
