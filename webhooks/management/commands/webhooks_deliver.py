from django.core.management.base import BaseCommand

from webhooks import delivery, events


class Command(BaseCommand):
    help = ("Record api_key.expiring events, fan out new events and send every webhook "
            "delivery that is due (first attempts and retries). Run it every minute (cron or "
            "a systemd timer, README); any number may run at once.")

    def handle(self, *args, **opts) -> None:
        expiring = events.api_keys_expiring()
        attempts = delivery.deliver_pending(max_batches=1000)
        self.stdout.write(f"{expiring} key(s) expiring within 7 days; "
                          f"{attempts} delivery attempt(s) made.")
