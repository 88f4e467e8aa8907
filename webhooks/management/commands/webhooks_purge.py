from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from webhooks import events


class Command(BaseCommand):
    help = "Delete webhook events, their deliveries and attempts older than --days (30)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=30)

    def handle(self, *args, days: int, **opts) -> None:
        if days < 1:
            raise CommandError("--days must be at least 1.")
        count = events.events_purge(older_than=timedelta(days=days))
        self.stdout.write(f"Deleted {count} row(s) (events, deliveries and attempts).")
