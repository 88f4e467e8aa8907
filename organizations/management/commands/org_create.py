from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from billing.models import Plan
from core.models import User, normalize_email
from organizations import services
from organizations.models import Organization


class Command(BaseCommand):
    help = "Create an organization owned by EMAIL (the user is created, without a password, if " \
           "missing). Prints the organization's slug."

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
        email = normalize_email(owner_email)
        with transaction.atomic():
            owner = User.objects.filter(email=email).first()
            if owner is None:
                owner = User.objects.create_user(email)  # unusable password until a reset
                self.stderr.write(f"Created user {email} (no password set).")
            organization = services.organization_create(owner=owner, name=name, slug=slug,
                                                        plan_slug=plan)
        self.stdout.write(organization.slug)
