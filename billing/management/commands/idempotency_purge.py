from django.core.management.base import BaseCommand

from billing.idempotency import idempotency_purge


class Command(BaseCommand):
    help = "Delete stored Idempotency-Key outcomes older than 24 hours."

    def handle(self, *args, **opts) -> None:
        self.stdout.write(f"Purged {idempotency_purge()} idempotency record(s).")
