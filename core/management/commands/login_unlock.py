from django.core.management.base import BaseCommand

from core.models import normalize_email
from core.services import login_unlock


class Command(BaseCommand):
    help = ("Unlock accounts locked by repeated failed logins (admin and API): forgets their "
            "failed attempts. Emails are case-insensitive.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("emails", nargs="+", metavar="EMAIL")

    def handle(self, *args, emails: list[str], **options) -> None:
        for email in emails:
            email = normalize_email(email)
            count = login_unlock(email)
            self.stdout.write(f"{email}: {count} failed-attempt record(s) removed; unlocked.")
