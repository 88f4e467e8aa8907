from datetime import timezone as dt_timezone

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime
from django.utils import timezone

from organizations import services
from organizations.models import Organization


class Command(BaseCommand):
    help = "Create an API key for an organization. The raw key is the last line of the output " \
           "and is never shown again."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--expires-at", help="ISO-8601 datetime, e.g. 2027-01-31T00:00:00Z")

    def handle(self, *args, slug: str, name: str, expires_at: str | None, **opts) -> None:
        organization = Organization.objects.select_related("plan").filter(slug=slug).first()
        if organization is None:
            raise CommandError(f"Organization {slug!r} not found.")
        expiry = None
        if expires_at:
            expiry = parse_datetime(expires_at)
            if expiry is None:
                raise CommandError(f"--expires-at: {expires_at!r} is not an ISO-8601 datetime.")
            if timezone.is_naive(expiry):
                expiry = timezone.make_aware(expiry, dt_timezone.utc)
            if expiry <= timezone.now():
                raise CommandError("--expires-at must be in the future.")
        # Operators may issue keys beyond the plan's self-service limits.
        key, raw = services.api_key_create(organization, name=name, created_by=None,
                                           expires_at=expiry, enforce_plan=False)
        self.stdout.write(f"Created API key {key.id} ({key.key_prefix}…) for {organization.slug}.")
        self.stdout.write(raw)
