from django.core.management.base import BaseCommand, CommandError

from billing import selectors


class Command(BaseCommand):
    help = ("Recompute every organization's balance and current-period figures (granted, used, "
            "reserved) from the ledger and reservations; print each difference and exit "
            "non-zero when there is one.")

    def handle(self, *args, **opts) -> None:
        differences = 0
        for difference in selectors.account_differences():
            differences += 1
            self.stdout.write(f"{difference.organization} {difference.field} "
                              f"stored={difference.stored} computed={difference.computed}")
        if differences:
            raise CommandError(f"{differences} difference(s) between the accounts and the ledger.")
        self.stdout.write("Every account matches its ledger.")
