from django.core.management.base import BaseCommand, CommandError

from billing.models import Plan
from organizations import services
from organizations.models import Organization


class Command(BaseCommand):
    help = "Move an organization to another plan."

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
        services.organization_set_plan(organization, target)
        self.stdout.write(f"{organization.slug} is now on {target.slug}.")
