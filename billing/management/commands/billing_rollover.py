from django.core.management.base import BaseCommand

from billing import services


class Command(BaseCommand):
    help = ("Start the new billing period of every organization whose period has ended: expire "
            "what is left, grant the allowance. Safe to run often and from several hosts.")

    def handle(self, *args, **opts) -> None:
        count = services.rollover_due()
        self.stdout.write(f"Rolled over {count} organization(s).")
