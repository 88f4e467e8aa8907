from django.core.management.base import BaseCommand, CommandError

from billing.models import Plan
from billing import services as billing_services
from organizations.models import Organization


class Command(BaseCommand):
    help = ("Move an organization to another plan. Mid-period, an upgrade grants the difference "
            "between the allowances at once; a downgrade caps the balance at the new allowance.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("plan")

    def handle(self, *args, slug: str, plan: str, **opts) -> None:
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            raise CommandError(f"Organization {slug!r} not found.")
        target = Plan.objects.filter(slug=plan).first()
        if target is None:
            raise CommandError(f"Unknown plan {plan!r}; choose one of: "
                               + ", ".join(Plan.objects.values_list("slug", flat=True)))
        billing_services.plan_change(organization, target)
        balance = organization.credit_account.balance
        self.stdout.write(f"{organization.slug} is now on {target.slug} (balance {balance} credits).")
