from django.core.management.base import BaseCommand, CommandError

from billing import services
from organizations.models import Organization


class Command(BaseCommand):
    help = ("Give an organization credits (a `top_up`), or take some back with a negative "
            "AMOUNT (an `adjustment`, never below zero).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("amount", type=int)
        parser.add_argument("--memo", default="")

    def handle(self, *args, slug: str, amount: int, memo: str, **opts) -> None:
        organization = Organization.objects.select_related("plan").filter(slug=slug).first()
        if organization is None:
            raise CommandError(f"Organization {slug!r} not found.")
        if amount == 0:
            raise CommandError("AMOUNT must not be zero.")
        kind = services.Kind.TOP_UP if amount > 0 else services.Kind.ADJUSTMENT
        try:
            entry = services.credits_grant(organization, amount, kind=kind,
                                           memo=memo or "operator grant")
        except services.NegativeBalance as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{organization.slug}: {kind} {amount:+d}, balance {entry.balance_after}.")
