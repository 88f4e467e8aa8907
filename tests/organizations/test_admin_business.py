"""Admin that shows the business: the organization list (plan, balance, owner, members,
documents, last question; search and filters; one query however many organizations), an
organization's page (the period's figures, a usage chart, the latest ledger entries and a
link to all), allowed domains ticked as a list, the ledger filtered by organization with its
actor and times to the second."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assistant.models import ChatSession
from billing import charts
from billing import services as billing
from knowledge.models import Category, Document, Domain
from organizations.models import Membership, Organization

LIST = "/admin/organizations/organization/"
LEDGER = "/admin/billing/ledgerentry/"


@pytest.fixture
def privacy(db):
    domain = Domain.objects.create(slug="privacy", name="Privacy")
    return Category.objects.create(domain=domain, code="eu", name="European Union")


def add_document(org, category, n: int) -> Document:
    return Document.objects.create(
        organization=org, domain=category.domain, category=category, title=f"Policy {n}",
        filename=f"policy-{n}.md", content_type="text/markdown", size_bytes=100,
        sha256=f"{n:064d}", file=f"documents/policy-{n}.md")


def add_question(org, category, when: datetime) -> ChatSession:
    return ChatSession.objects.create(organization=org, domain=category.domain,
                                      category=category, title="Q", last_activity_at=when)


def busy_org(make_user, make_org, category, n: int) -> Organization:
    owner = make_user(f"owner{n}@corp{n}.example")
    org = make_org(owner, plan="professional", name=f"Corp {n}", slug=f"corp-{n}")
    for m in range(2):
        Membership.objects.create(organization=org, user=make_user(f"m{m}@corp{n}.example"))
    for d in range(3):
        add_document(org, category, n * 10 + d)
    add_question(org, category, datetime(2026, 3, n, 9, 30, tzinfo=timezone.utc))
    return org


def stamped(reservation, when: datetime | None = None):
    """On PostgreSQL a reservation's entries take the database clock (clock_timestamp()),
    which time_machine does not move: give them the travelled time."""
    from django.utils import timezone as dj_timezone

    from billing.models import LedgerEntry

    LedgerEntry.objects.filter(reservation=reservation).update(
        created_at=when or dj_timezone.now())
    return reservation


def rows(html: str) -> dict[str, str]:
    """Each result row's text, by organization slug."""
    found = {}
    for row in re.findall(r"<tr>.*?</tr>", html, flags=re.S):
        slug = re.search(r'<th class="field-slug"><a [^>]*>([^<]+)</a>', row)
        if slug:
            found[slug.group(1)] = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
    return found


def test_the_list_shows_plan_balance_owner_members_documents_and_last_question(
        staff, make_user, make_org, privacy):
    org = busy_org(make_user, make_org, privacy, 4)
    billing.credits_grant(org, -500, kind="adjustment", memo="test")
    text = rows(staff.get(LIST).content.decode())["corp-4"]
    # slug, name, plan, balance, owner, members, documents, last question (then is_active)
    assert text.startswith("corp-4 Corp 4 Professional 19500 owner4@corp4.example 3 3 "
                           "2026-03-04 09:30"), text


def test_the_list_costs_the_same_queries_for_2_or_6_organizations(
        staff, make_user, make_org, privacy):
    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff.get(LIST).status_code == 200
        return len(captured)

    for n in (1, 2):
        busy_org(make_user, make_org, privacy, n)
    two = count()
    for n in (3, 4, 5, 6):
        busy_org(make_user, make_org, privacy, n)
    assert count() == two
    assert len(rows(staff.get(LIST).content.decode())) == 6


def test_the_list_is_searchable_and_filterable(staff, make_user, make_org, privacy):
    busy = busy_org(make_user, make_org, privacy, 1)
    idle = make_org(make_user("solo@idle.example"), plan="starter", name="Idle", slug="idle")
    billing.credits_grant(idle, -5000, kind="adjustment", memo="used up")
    assert set(rows(staff.get(f"{LIST}?q=m1@corp1.example").content.decode())) == {"corp-1"}
    assert set(rows(staff.get(f"{LIST}?plan__id__exact={idle.plan_id}").content.decode())
               ) == {"idle"}
    assert set(rows(staff.get(f"{LIST}?credits=exhausted").content.decode())) == {"idle"}
    assert set(rows(staff.get(f"{LIST}?activity=never").content.decode())) == {"idle"}
    add_question(busy, privacy, datetime.now(timezone.utc) - timedelta(days=2))
    assert set(rows(staff.get(f"{LIST}?activity=7").content.decode())) == {"corp-1"}
    assert set(rows(staff.get(f"{LIST}?o=-5").content.decode())) == {"corp-1", "idle"}


@time_machine.travel(datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc), tick=False)
def test_the_organization_page_shows_the_period_chart_and_latest_ledger(
        staff, make_user, make_org, make_key):
    org = make_org(make_user("ada@acme.example"), plan="starter", slug="acme")
    key, _raw = make_key(org, name="ingest-bot")
    stamped(billing.credits_settle(billing.credits_reserve(org, 3, actor_api_key=key)))
    open_reservation = stamped(billing.credits_reserve(org, 2, actor_api_key=key))
    page = staff.get(f"{LIST}{org.pk}/change/").content.decode()
    overview = re.search(r'<table class="credits-overview">.*?</table>', page, re.S).group(0)
    figures = dict(re.findall(r"<th scope=\"row\">([^<]+)</th><td>(-?\d+)</td>", overview))
    assert figures == {"Monthly allowance": "5000", "Granted": "5000", "Used": "3",
                       "Reserved (answers in flight)": "2", "Remaining (balance)": "4995"}
    assert "2026-03-20 12:00 – 2026-04-20 12:00 (UTC)" in overview
    ledger = re.search(r'<table class="latest-ledger">.*?</table>', page, re.S).group(0)
    assert ledger.count("<tr>") == 4  # header, two charges, the grant
    assert "2026-03-20 12:00:00" in ledger
    assert f"key {key.key_prefix}… (ingest-bot)" in ledger
    assert f'href="{LEDGER}?organization__id__exact={org.pk}"' in page
    svg = re.search(r'<svg [^>]*class="usage-chart".*?</svg>', page, re.S).group(0)
    assert "<script" not in page.split('class="usage-chart"')[1].split("</svg>")[0]
    assert "<title>2026-03-20: 5 credits</title>" in svg
    # Days are UTC dates: Feb 20 – Mar 19, then Mar 20 – Apr 20 (the period ends at noon).
    assert svg.count('class="bar"') == 28 + 32
    billing.credits_refund(open_reservation)


def test_the_usage_series_counts_kept_credits_per_day_in_both_periods(make_user, make_org):
    with time_machine.travel(datetime(2026, 1, 10, 8, 0, tzinfo=timezone.utc), tick=False):
        org = make_org(make_user(), plan="starter", slug="acme")
    with time_machine.travel(datetime(2026, 2, 3, 9, 0, tzinfo=timezone.utc), tick=False):
        stamped(billing.credits_settle(billing.credits_reserve(org, 4)))
    with time_machine.travel(datetime(2026, 2, 12, 9, 0, tzinfo=timezone.utc), tick=False):
        stamped(billing.credits_settle(billing.credits_reserve(org, 2)))
        stamped(billing.credits_refund(billing.credits_reserve(org, 7)))  # refunded: not kept
        series = charts.usage_series(Organization.objects.get(pk=org.pk))
    assert (series.last_start.isoformat(), series.current_start.isoformat(),
            series.current_end.isoformat()) == ("2026-01-10", "2026-02-10", "2026-03-10")
    used = {d.day.isoformat(): (d.credits, d.current) for d in series.days if d.credits}
    assert used == {"2026-02-03": (4, False), "2026-02-12": (2, True)}
    assert (series.last_total, series.current_total) == (4, 2)
    assert len(series.days) == 31 + 28 + 1  # Jan 10 – Mar 10 (the period ends at 08:00)


def test_allowed_domains_are_ticked_from_the_existing_domains(staff, org, privacy):
    Domain.objects.create(slug="banking", name="Banking")
    page = staff.get(f"{LIST}{org.pk}/change/").content.decode()
    assert 'type="checkbox" name="allowed_domains" value="banking"' in page
    assert 'type="checkbox" name="allowed_domains" value="privacy"' in page
    form = {
        "slug": org.slug, "name": org.name, "allowed_domains": ["privacy"], "is_active": "on",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000",
    }
    response = staff.post(f"{LIST}{org.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    org.refresh_from_db()
    assert org.allowed_domains == ["privacy"]
    response = staff.post(f"{LIST}{org.pk}/change/", {**form, "allowed_domains": []})
    org.refresh_from_db()
    assert org.allowed_domains == []


def test_the_ledger_filters_by_organization_and_shows_actor_and_seconds(
        staff, make_user, make_org, make_key):
    acme = make_org(make_user("ada@acme.example"), plan="starter", slug="acme")
    globex = make_org(make_user("hank@globex.example"), plan="starter", slug="globex")
    key, _ = make_key(acme, name="bot")
    stamped(billing.credits_settle(billing.credits_reserve(acme, 1, actor_api_key=key)),
            datetime(2026, 3, 20, 12, 34, 56, tzinfo=timezone.utc))
    billing.credits_grant(globex, 10, memo="bonus", actor_user=globex.memberships.get().user)
    page = staff.get(f"{LEDGER}?organization__id__exact={acme.pk}").content.decode()
    table = re.search(r'<table id="result_list">.*?</table>', page, re.S).group(0)
    assert "acme" in table and "globex" not in table
    assert "2026-03-20 12:34:56" in page and f"key {key.key_prefix}… (bot)" in page
    everything = staff.get(LEDGER).content.decode()
    assert "hank@globex.example" in everything and "system" in everything
    assert "ledger entries" in everything and f"?organization__id__exact={acme.pk}" in everything
