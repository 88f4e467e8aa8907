from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.contrib.sessions.models import Session

from core import keyformat
from organizations.models import ApiKey

KEY_RE = re.compile(r"egret_[0-9A-Za-z]{40}")


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize("url", [
    "/admin/", "/admin/core/user/", "/admin/core/user/add/", "/admin/organizations/organization/",
    "/admin/organizations/apikey/", "/admin/organizations/apikey/add/", "/admin/billing/plan/",
    "/admin/knowledge/domain/",
])
def test_admin_pages_render_for_operators(staff, org, url):
    assert staff.get(url).status_code == 200


def test_admin_organization_change_page_shows_members_inline(staff, org, owner):
    page = staff.get(f"/admin/organizations/organization/{org.pk}/change/")
    assert page.status_code == 200
    assert owner.email in page.content.decode()


def _stored_anywhere(response, raw: str) -> bool:
    """The raw key in a cookie set by the response, in a message, or in a stored session."""
    cookies = response.cookies.output() + response.client.cookies.output()
    sessions = " ".join(str(s.get_decoded()) for s in Session.objects.all())
    return raw in cookies or raw in sessions or any(
        raw in m for m in _messages(response))


def test_admin_creating_a_key_shows_the_raw_key_on_the_response_page_only(staff, org):
    response = staff.post("/admin/organizations/apikey/add/",
                          {"organization": str(org.pk), "name": "ops"})
    assert response.status_code == 200  # the page itself, not a redirect
    assert "no-store" in response["Cache-Control"]
    shown = KEY_RE.findall(response.content.decode())
    assert len(shown) == 1
    raw = shown[0]
    key = ApiKey.objects.get()
    assert key.digest == keyformat.digest(raw) and key.name == "ops"
    assert not _stored_anywhere(response, raw)
    change = staff.get(f"/admin/organizations/apikey/{key.pk}/change/").content.decode()
    assert key.digest not in change and raw not in change
    assert key.key_prefix in change
    assert raw not in staff.get("/admin/organizations/apikey/").content.decode()


def test_admin_revoke_action_revokes(staff, org, make_key):
    key, _ = make_key(org)
    staff.post("/admin/organizations/apikey/",
               {"action": "revoke_keys", "_selected_action": [str(key.pk)]})
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_admin_rotate_action_shows_new_key_on_the_response_page_and_old_one_stops(
        staff, org, make_key, key_client):
    key, old = make_key(org)
    response = staff.post("/admin/organizations/apikey/",
                          {"action": "rotate_keys", "_selected_action": [str(key.pk)]})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    new = only(KEY_RE.findall(response.content.decode()))
    assert new != old
    assert not _stored_anywhere(response, new)
    assert key_client(old).get("/auth/me/").status_code == 401
    assert key_client(new).get("/auth/me/").status_code == 200


def only(items: list):
    assert len(items) == 1, items
    return items[0]


def test_admin_rejects_unknown_allowed_domain(staff, org):
    page = staff.get(f"/admin/organizations/organization/{org.pk}/change/")
    assert page.status_code == 200
    form = {
        "slug": org.slug, "name": org.name, "plan": org.plan_id,
        "allowed_domains": ["no-such-domain"], "is_active": "on",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000",
    }
    response = staff.post(f"/admin/organizations/organization/{org.pk}/change/", form)
    assert response.status_code == 200
    assert ("Select a valid choice. no-such-domain is not one of the available choices."
            in response.content.decode())
    org.refresh_from_db()
    assert org.allowed_domains == []


def test_admin_has_no_delete_for_keys_or_plans(staff, org, make_key):
    key, _ = make_key(org)
    assert staff.get(f"/admin/organizations/apikey/{key.pk}/delete/").status_code == 403


def test_admin_creates_an_organization_with_owner_plan_and_credits(staff, db):
    from billing.models import CreditAccount, LedgerEntry
    from organizations.models import Membership, Organization

    assert staff.get("/admin/organizations/organization/add/").status_code == 200
    response = staff.post("/admin/organizations/organization/add/", {
        "name": "Globex", "slug": "globex", "owner_email": "Hank@Globex.example",
        "plan_choice": "professional"}, follow=True)
    assert response.status_code == 200
    organization = Organization.objects.get(slug="globex")
    assert organization.plan.slug == "professional"
    owner = Membership.objects.get(organization=organization)
    assert owner.role == "owner" and owner.user.email == "hank@globex.example"
    assert CreditAccount.objects.get(organization=organization).balance == 20000
    assert LedgerEntry.objects.get(organization=organization).kind == "monthly_grant"


def test_admin_refuses_a_taken_slug(staff, org):
    from organizations.models import Organization

    response = staff.post("/admin/organizations/organization/add/", {
        "name": "Acme again", "slug": "acme", "owner_email": "x@example.com",
        "plan_choice": "starter"})
    assert response.status_code == 200 and "already exists" in response.content.decode()
    assert Organization.objects.count() == 1
