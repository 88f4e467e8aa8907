from axes.utils import reset
from django.core.management.base import BaseCommand

from core.models import normalize_email


class Command(BaseCommand):
    help = ("Unlock accounts locked by repeated failed logins (admin and API): forgets their "
            "failed attempts. Emails are case-insensitive.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("emails", nargs="+", metavar="EMAIL")

    def handle(self, *args, emails: list[str], **options) -> None:
        for email in emails:
            email = normalize_email(email)
            count = reset(username=email)
            self.stdout.write(f"{email}: {count} failed-attempt record(s) removed; unlocked.")
