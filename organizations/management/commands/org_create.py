from django.core.management.base import BaseCommand, CommandError

from billing.models import Plan
from core.models import normalize_email
from organizations import services
from organizations.models import Organization


class Command(BaseCommand):
    help = "Create an organization owned by EMAIL (the user is created, without a password, if " \
           "missing, and emailed a link to set one). Prints the organization's slug."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--slug")
        parser.add_argument("--plan", default=services.DEFAULT_PLAN)

    def handle(self, *args, name: str, owner_email: str, slug: str | None, plan: str, **opts):
        if not Plan.objects.filter(slug=plan).exists():
            raise CommandError(f"Unknown plan {plan!r}; choose one of: "
                               + ", ".join(Plan.objects.values_list("slug", flat=True)))
        if slug and Organization.objects.filter(slug=slug).exists():
            raise CommandError(f"An organization with slug {slug!r} already exists.")
        organization, created = services.organization_create_by_operator(
            name=name, owner_email=owner_email, slug=slug, plan_slug=plan)
        if created:
            self.stderr.write(f"Created user {normalize_email(owner_email)} (no password yet: "
                              "emailed a link to set one).")
        self.stdout.write(organization.slug)
