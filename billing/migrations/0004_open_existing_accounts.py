import calendar

from django.db import migrations
from django.utils import timezone


def _add_month(moment):
    index = moment.month
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month,
                          day=min(moment.day, calendar.monthrange(year, month)[1]))


def open_accounts(apps, schema_editor):
    """Organizations created before credits existed get an account, a subscription starting
    now and their plan's allowance."""
    Organization = apps.get_model("organizations", "Organization")
    Subscription = apps.get_model("billing", "Subscription")
    CreditAccount = apps.get_model("billing", "CreditAccount")
    LedgerEntry = apps.get_model("billing", "LedgerEntry")
    now = timezone.now()
    for org in Organization.objects.filter(credit_account__isnull=True).select_related("plan"):
        Subscription.objects.create(organization=org, anchor=now, current_period_start=now,
                                    current_period_end=_add_month(now))
        allowance = org.plan.monthly_credits
        CreditAccount.objects.create(organization=org, balance=allowance, period_start=now)
        if allowance:
            LedgerEntry.objects.create(organization=org, kind="monthly_grant", amount=allowance,
                                       balance_after=allowance, period_start=now,
                                       memo=f"{org.plan.slug} plan allowance")


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_credits"), ("organizations", "0001_initial")]
    operations = [migrations.RunPython(open_accounts, migrations.RunPython.noop)]
