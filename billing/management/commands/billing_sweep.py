from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from billing import services


class Command(BaseCommand):
    help = ("Refund reservations whose request never finished (worker killed, connection lost) "
            "once they are older than --older-than seconds.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--older-than", type=int, default=600, metavar="SECONDS")

    def handle(self, *args, older_than: int, **opts) -> None:
        if older_than < 0:
            raise CommandError("--older-than must be zero or more seconds.")
        count = services.reservations_sweep(older_than=timedelta(seconds=older_than))
        self.stdout.write(f"Refunded {count} stale reservation(s).")
