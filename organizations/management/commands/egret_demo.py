import os

from django.core.management.base import BaseCommand
from django.db import transaction

from billing import services as billing_services
from billing.models import Plan
from core.models import User
from organizations import services
from organizations.models import Organization, Role

DEMO_EMAIL = "demo@egret.local"
DEMO_SLUG = "demo"
DEMO_KEY_NAME = "demo"
DEMO_PLAN = "professional"


class Command(BaseCommand):
    help = "Create (or refresh) the demo user, the demo organization on `professional` (every " \
           "feature answers: streaming, private documents, export, comparison), and a fresh " \
           "demo API key; prints all three. Safe to run any number of times."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-library", action="store_true",
                            help="do not load the demo library (sample documents)")

    def handle(self, *args, **opts) -> None:
        password = os.environ.get("EGRET_DEMO_PASSWORD", "egret-demo-password")
        with transaction.atomic():
            user = User.objects.filter(email=DEMO_EMAIL).first()
            if user is None:
                user = User.objects.create_user(DEMO_EMAIL, password, name="Demo User")
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            organization = Organization.objects.filter(slug=DEMO_SLUG).first()
            if organization is None:
                organization = services.organization_create(
                    owner=user, name="Demo Organization", slug=DEMO_SLUG, plan_slug=DEMO_PLAN)
            organization.memberships.update_or_create(user=user, defaults={"role": Role.OWNER})
            plan = Plan.objects.get(slug=DEMO_PLAN)
            if organization.plan_id != plan.pk:
                billing_services.plan_change(organization, plan)
            # One active demo key at a time: the plan allows one.
            for old in organization.api_keys.filter(revoked_at__isnull=True):
                services.api_key_revoke(old)
            key, raw = services.api_key_create(organization, name=DEMO_KEY_NAME,
                                               created_by=user)
        if not opts["no_library"]:
            from knowledge.library import demo_library_load

            loaded = demo_library_load()
            self.stdout.write(f"Demo library:      {loaded.documents} documents added "
                              f"({loaded.chunks} chunks), {loaded.skipped} already present")
        self.stdout.write(f"Demo user:         {DEMO_EMAIL}")
        self.stdout.write(f"Demo password:     {password}")
        self.stdout.write(f"Demo organization: {organization.slug} (plan {plan.slug})")
        self.stdout.write(f"Demo API key:      {raw}")
