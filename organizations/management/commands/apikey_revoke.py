import uuid

from django.core.management.base import BaseCommand, CommandError

from organizations import services
from organizations.models import ApiKey


class Command(BaseCommand):
    help = "Revoke an API key (permanent), named by its id or its key prefix."

    def add_arguments(self, parser) -> None:
        parser.add_argument("key", metavar="KEY_PREFIX_OR_ID")

    def handle(self, *args, key: str, **opts) -> None:
        try:
            matches = ApiKey.objects.filter(pk=uuid.UUID(key))
        except ValueError:
            if len(key) < 8:
                raise CommandError("Give the key id or at least 8 characters of its prefix.")
            matches = ApiKey.objects.filter(key_prefix__startswith=key[:20])
        found = list(matches[:2])
        if not found:
            raise CommandError(f"No API key matches {key!r}.")
        if len(found) > 1:
            raise CommandError(f"{key!r} matches several keys; use the key id.")
        api_key = services.api_key_revoke(found[0])
        self.stdout.write(f"Revoked {api_key.key_prefix}… ({api_key.id}) of "
                          f"{api_key.organization.slug}.")
