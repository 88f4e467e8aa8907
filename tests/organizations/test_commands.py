from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from core import keyformat
from core.models import User
from organizations.models import ApiKey, Membership, Organization, Role


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip().splitlines()


def test_org_create_makes_owner_without_password_and_prints_slug(db):
    lines = run("org_create", "--name", "Globex Corp", "--owner-email", "Boss@Globex.com",
                "--plan", "professional")
    assert lines == ["globex-corp"]
    org = Organization.objects.get(slug="globex-corp")
    assert org.plan.slug == "professional"
    owner = User.objects.get(email="boss@globex.com")
    assert not owner.has_usable_password()
    assert Membership.objects.get(organization=org, user=owner).role == Role.OWNER


def test_org_create_uses_existing_user_and_explicit_slug(make_user):
    user = make_user("exists@example.com")
    assert run("org_create", "--name", "X", "--owner-email", "exists@example.com",
               "--slug", "x-co") == ["x-co"]
    user.refresh_from_db()
    assert user.has_usable_password()
    assert Organization.objects.get(slug="x-co").plan.slug == "free"


def test_org_create_rejects_taken_slug_and_unknown_plan(org):
    with pytest.raises(CommandError, match="already exists"):
        run("org_create", "--name", "Y", "--owner-email", "y@example.com", "--slug", "acme")
    with pytest.raises(CommandError, match="Unknown plan"):
        run("org_create", "--name", "Y", "--owner-email", "y@example.com", "--plan", "gold")
    assert not User.objects.filter(email="y@example.com").exists()


def test_org_set_plan_moves_the_organization(org):
    assert run("org_set_plan", "acme", "enterprise") == [
        "acme is now on enterprise (balance 0 credits)."]
    org.refresh_from_db()
    assert org.plan.slug == "enterprise"
    with pytest.raises(CommandError, match="not found"):
        run("org_set_plan", "nope", "free")
    with pytest.raises(CommandError, match="Unknown plan"):
        run("org_set_plan", "acme", "gold")


def test_apikey_create_prints_a_working_raw_key_last(org, client):
    lines = run("apikey_create", "acme", "--name", "deploy", "--expires-at", "2099-01-01T00:00:00Z")
    raw = lines[-1]
    assert keyformat.is_well_formed(raw)
    key = ApiKey.objects.get(digest=keyformat.digest(raw))
    assert key.name == "deploy" and key.expires_at.year == 2099
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/auth/me/").json()["organization"]["slug"] == "acme"


def test_apikey_create_rejects_bad_expiry_and_unknown_org(org):
    with pytest.raises(CommandError, match="ISO-8601"):
        run("apikey_create", "acme", "--name", "x", "--expires-at", "tomorrow")
    with pytest.raises(CommandError, match="future"):
        run("apikey_create", "acme", "--name", "x", "--expires-at", "2001-01-01T00:00:00Z")
    with pytest.raises(CommandError, match="not found"):
        run("apikey_create", "nope", "--name", "x")
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("by", ["prefix", "id"])
def test_apikey_revoke_by_prefix_or_id_stops_the_key(org, make_key, client, by):
    key, raw = make_key(org)
    run("apikey_revoke", key.key_prefix if by == "prefix" else str(key.id))
    key.refresh_from_db()
    assert key.revoked_at is not None
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/auth/me/").status_code == 401


def test_apikey_revoke_unknown_key_fails(db):
    with pytest.raises(CommandError, match="No API key"):
        run("apikey_revoke", "egret_doesnotexist00")


def test_egret_demo_puts_the_demo_organization_on_professional(db, client):
    """Every feature answers in the demo: the plan has export, comparison, premium models."""
    lines = run("egret_demo", "--no-library")
    assert "Demo organization: demo (plan professional)" in lines
    org = Organization.objects.select_related("plan", "credit_account").get(slug="demo")
    assert org.plan.slug == "professional"
    assert org.plan.has_export and org.plan.has_cross_category_compare
    assert org.plan.has_custom_documents and org.plan.model_tier == "premium"
    assert org.credit_account.balance == org.plan.monthly_credits
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {lines[-1].split()[-1]}")
    body = client.get("/v1/billings/subscription/").json()
    assert body["plan"]["slug"] == "professional"


def test_egret_demo_moves_an_older_starter_demo_up_with_its_credits(db):
    from billing import services as billing_services
    from billing.models import Plan

    run("egret_demo", "--no-library")
    org = Organization.objects.get(slug="demo")
    billing_services.plan_change(org, Plan.objects.get(slug="starter"))  # an older demo
    org.credit_account.refresh_from_db()
    assert org.credit_account.balance == 5000
    run("egret_demo", "--no-library")
    org = Organization.objects.select_related("plan", "credit_account").get(slug="demo")
    assert org.plan.slug == "professional"
    assert org.credit_account.balance == 20000  # the upgrade grants the difference


def test_egret_demo_is_idempotent_and_prints_a_fresh_working_key(db, client):
    first = run("egret_demo")
    second = run("egret_demo")
    raw1, raw2 = first[-1].split()[-1], second[-1].split()[-1]
    assert raw1 != raw2 and keyformat.is_well_formed(raw2)
    assert Organization.objects.filter(slug="demo").count() == 1
    assert User.objects.filter(email="demo@egret.local").count() == 1
    org = Organization.objects.get(slug="demo")
    assert org.plan.slug == "professional"
    assert org.api_keys.filter(revoked_at__isnull=True).count() == 1
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw2}")
    assert client.get("/auth/me/").json()["organization"]["slug"] == "demo"
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw1}")
    assert client.get("/auth/me/").status_code == 401
    password = next(line for line in second if "password" in line).split()[-1]
    login = client.__class__().post("/auth/jwt/create/",
                                    {"email": "demo@egret.local", "password": password},
                                    format="json")
    assert login.status_code == 200
