"""Invitations (API.md 14) through a real SMTP server: adding an email with no account
invites it; the emailed token creates the account (or, with that account's JWT, joins);
invitations expire, are single-use, count against max_members, are listed and revoked.
Owners that operators create get the set-password email."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.core.management import call_command

from core.models import User
from organizations.models import Invitation, Membership
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

MEMBERS = "/v1/orgs/acme/members/"
INVITATIONS = "/v1/orgs/acme/invitations/"
ACCEPT = "/auth/invitations/accept/"
NEW_PASSWORD = "a-brand-new-passphrase-77"
INVALID_TOKEN = {"detail": "token: invalid or expired.", "code": "invalid", "field": "token"}


def link_of(message) -> str:
    return re.search(r"https?://\S+", message.get_body(("plain",)).get_content()).group(0)


def query_of(message) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(link_of(message)).query).items()}


@pytest.fixture
def invite(jwt_client, owner, org, smtp, sends):
    """Invites an email as the owner; returns (response, emailed token or None)."""

    def send(email: str = "linus@example.com", role: str = "member"):
        before = len(smtp.messages)
        with sends():
            response = jwt_client(owner).post(MEMBERS, {"email": email, "role": role},
                                              format="json")
        token = query_of(smtp.messages[-1])["token"] if len(smtp.messages) > before else None
        return response, token

    return send


def login(client, email: str, password: str):
    return client.post("/auth/jwt/create/", {"email": email, "password": password},
                       format="json")


def test_invitation_email_then_accept_creates_the_account_and_the_membership(
        invite, client, org, smtp, settings):
    settings.EGRET_PUBLIC_APP_URL = "https://app.example.com"
    response, token = invite("Linus@Example.com", "admin")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"invitation_id", "email", "role", "expires_at"}
    assert body["email"] == "linus@example.com" and body["role"] == "admin"
    (message,) = smtp.messages
    assert message["To"] == "linus@example.com"
    assert message["Subject"] == "Olivia Owner invited you to Acme on Egret"
    assert link_of(message).startswith("https://app.example.com/invitations/accept?token=")
    assert "Accept the invitation" in message.get_body(("html",)).get_content()
    assert not User.objects.filter(email="linus@example.com").exists()

    accepted = client.post(ACCEPT, {"token": token, "password": NEW_PASSWORD, "name": "Linus"},
                           format="json")

    assert accepted.status_code == 200
    assert accepted.json()["organization"] == "acme"
    assert accepted.json()["email"] == "linus@example.com"
    assert accepted.json()["role"] == "admin" and accepted.json()["name"] == "Linus"
    assert Membership.objects.get(organization=org, user__email="linus@example.com").role == \
        "admin"
    assert login(client, "linus@example.com", NEW_PASSWORD).status_code == 200


def test_an_invitation_is_single_use(invite, client):
    _, token = invite()
    assert client.post(ACCEPT, {"token": token, "password": NEW_PASSWORD},
                       format="json").status_code == 200

    again = client.post(ACCEPT, {"token": token, "password": NEW_PASSWORD}, format="json")

    assert again.status_code == 400 and again.json() == INVALID_TOKEN


def test_an_invitation_expires_after_7_days(invite, client):
    _, token = invite()
    later = datetime.now(timezone.utc) + timedelta(days=7, minutes=1)

    with time_machine.travel(later, tick=False):
        response = client.post(ACCEPT, {"token": token, "password": NEW_PASSWORD},
                               format="json")

    assert response.status_code == 400 and response.json() == INVALID_TOKEN


def test_a_made_up_token_is_400(client, db):
    response = client.post(ACCEPT, {"token": "nope", "password": NEW_PASSWORD}, format="json")
    assert response.status_code == 400 and response.json() == INVALID_TOKEN


def accept(client, token: str):
    return client.post(ACCEPT, {"token": token, "password": NEW_PASSWORD}, format="json")


def test_the_token_is_stored_nowhere_only_its_digest(invite):
    _, token = invite()

    invitation = Invitation.objects.get()
    assert token not in (invitation.digest, invitation.nonce)
    assert invitation.digest == hashlib.sha256(token.encode()).hexdigest()


@pytest.mark.parametrize("fallback, status", [(True, 200), (False, 400)])
def test_a_new_secret_key_keeps_pending_invitations_only_through_its_fallbacks(
        invite, client, settings, fallback, status):
    _, token = invite()
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 40
    settings.SECRET_KEY_FALLBACKS = [old_key] if fallback else []

    assert accept(client, token).status_code == status


def test_an_invitation_made_before_tokens_were_derived_is_accepted_by_its_emailed_token(
        client, org):
    raw = "q8Zr1xV0bLkN3mT6yW2eH5aJ9cF4gD7s_uP-oI8nE1A"  # random then, emailed, kept nowhere
    Invitation.objects.create(organization=org, email="old@example.com",
                              digest=hashlib.sha256(raw.encode()).hexdigest(),
                              expires_at=datetime.now(timezone.utc) + timedelta(days=1))

    assert accept(client, raw).status_code == 200


def test_a_new_account_needs_a_valid_password(invite, client):
    _, token = invite()

    missing = client.post(ACCEPT, {"token": token}, format="json")
    weak = client.post(ACCEPT, {"token": token, "password": "password"}, format="json")

    assert missing.status_code == 400
    assert missing.json()["detail"] == "password field is required."
    assert weak.status_code == 400 and weak.json()["field"] == "password"
    assert not User.objects.filter(email="linus@example.com").exists()


def test_the_invited_account_joins_with_its_own_access_token(invite, client, jwt_client,
                                                             make_user, org):
    _, token = invite()
    linus = make_user("linus@example.com")  # signed up after the invitation was sent

    anonymous = client.post(ACCEPT, {"token": token, "password": NEW_PASSWORD}, format="json")
    joined = jwt_client(linus).post(ACCEPT, {"token": token}, format="json")

    assert anonymous.status_code == 400
    assert anonymous.json() == {
        "detail": "token: the invited email already has an account; log in and accept the "
                  "invitation with your access token.",
        "code": "account_exists", "field": "token"}
    assert joined.status_code == 200 and joined.json()["user_id"] == str(linus.pk)
    assert org.memberships.filter(user=linus).exists()


def test_another_account_cannot_accept(invite, jwt_client, make_user):
    _, token = invite()

    response = jwt_client(make_user("mallory@example.com")).post(ACCEPT, {"token": token},
                                                                 format="json")

    assert response.status_code == 403
    assert response.json() == {"detail": "This invitation was sent to another email address."}


def test_pending_invitations_count_against_max_members(invite, client):
    # starter: 3 members; the owner and two pending invitations fill it.
    assert invite("a@example.com")[0].status_code == 201
    assert invite("b@example.com")[0].status_code == 201

    response, token = invite("c@example.com")

    assert response.status_code == 403
    assert response.json() == {
        "detail": "Your plan allows at most 3 members; upgrade your plan to add more."}
    assert token is None


def test_a_second_pending_invitation_to_one_email_is_400(invite):
    invite()
    response, _ = invite("LINUS@example.com")
    assert response.status_code == 400 and response.json()["field"] == "email"


def test_an_admin_inviting_a_pending_email_as_owner_is_400_before_the_role_403(
        invite, jwt_client, org, make_user, add_member):
    invite()
    admin = make_user("admin@example.com")
    add_member(org, admin, "admin")

    response = jwt_client(admin).post(MEMBERS, {"email": "linus@example.com", "role": "owner"},
                                      format="json")

    assert response.status_code == 400
    assert response.json()["field"] == "email"
    assert response.json()["detail"].startswith("email: an invitation to this email is already "
                                                "pending")


def test_adding_an_invited_email_directly_closes_its_invitation(invite, jwt_client, owner,
                                                                make_user, org):
    invite()  # owner + linus's invitation: 2 of starter's 3 places
    linus = make_user("linus@example.com")  # signs up instead of accepting
    api = jwt_client(owner)

    added = api.post(MEMBERS, {"email": "linus@example.com"}, format="json")

    assert added.status_code == 201 and added.json()["user_id"] == str(linus.pk)
    assert api.get(INVITATIONS).json() == []
    # owner + linus: the third place is free, and the fourth is not.
    assert invite("c@example.com")[0].status_code == 201
    assert invite("d@example.com")[0].status_code == 403


def test_adding_an_invited_email_directly_fits_when_its_invitation_filled_the_plan(
        invite, jwt_client, owner, make_user):
    invite()
    invite("b@example.com")  # owner + 2 invitations: full
    make_user("linus@example.com")

    added = jwt_client(owner).post(MEMBERS, {"email": "linus@example.com"}, format="json")

    assert added.status_code == 201  # linus takes the place his invitation held


def test_accepting_an_invitation_closes_the_other_invitations_of_that_email(invite, client,
                                                                           org):
    _, token = invite()
    Invitation.objects.create(  # a second one, say sent before the first had a pending twin
        organization=org, email="linus@example.com", digest="0" * 64,
        expires_at=Invitation.objects.get().expires_at)

    accepted = client.post(ACCEPT, {"token": token, "password": NEW_PASSWORD}, format="json")

    assert accepted.status_code == 200
    assert not Invitation.objects.filter(accepted_at__isnull=True,
                                         revoked_at__isnull=True).exists()


def test_revoking_an_accepted_invitation_is_404(invite, jwt_client, owner, client, org):
    response, token = invite()
    assert client.post(ACCEPT, {"token": token, "password": NEW_PASSWORD},
                       format="json").status_code == 200

    revoked = jwt_client(owner).delete(f"{INVITATIONS}{response.json()['invitation_id']}/")

    assert revoked.status_code == 404
    assert revoked.json() == {"detail": "Invitation not found."}
    assert org.memberships.filter(user__email="linus@example.com").exists()
    assert Invitation.objects.get().revoked_at is None


def test_invitations_are_listed_and_revoked(invite, jwt_client, owner, client):
    response, token = invite()
    invitation_id = response.json()["invitation_id"]
    api = jwt_client(owner)

    listed = api.get(INVITATIONS)
    assert listed.status_code == 200
    (row,) = listed.json()
    assert row["invitation_id"] == invitation_id and row["status"] == "pending"
    assert row["invited_by"] == "owner@example.com"

    assert api.delete(f"{INVITATIONS}{invitation_id}/").status_code == 204
    assert api.delete(f"{INVITATIONS}{invitation_id}/").status_code == 204  # idempotent
    assert api.get(INVITATIONS).json() == []
    refused = client.post(ACCEPT, {"token": token, "password": NEW_PASSWORD}, format="json")
    assert refused.status_code == 400 and refused.json() == INVALID_TOKEN
    # The place it held is free again.
    assert invite("d@example.com")[0].status_code == 201


def test_members_and_api_keys_cannot_manage_invitations(invite, jwt_client, key_client,
                                                        make_user, add_member, org, make_key):
    response, _ = invite()
    invitation_id = response.json()["invitation_id"]
    member = make_user("member@example.com")
    add_member(org, member)
    _key, raw = make_key(org)

    assert jwt_client(member).get(INVITATIONS).status_code == 403
    assert jwt_client(member).delete(f"{INVITATIONS}{invitation_id}/").status_code == 403
    assert key_client(raw).get(INVITATIONS).json() == {
        "detail": "API keys cannot manage invitations; use a user's access token."}
    assert Invitation.objects.get().revoked_at is None


def test_another_organizations_invitation_is_404(invite, jwt_client, make_user, make_org):
    response, _ = invite()
    stranger = make_user("stranger@example.com")
    make_org(stranger, name="Other", slug="other")

    api = jwt_client(stranger)
    assert api.get(INVITATIONS).status_code == 404
    assert api.delete(f"/v1/orgs/other/invitations/{response.json()['invitation_id']}/"
                      ).json() == {"detail": "Invitation not found."}


def test_listing_invitations_needs_credentials(client, org):
    response = client.get(INVITATIONS)
    assert response.status_code == 401


# --- Owners created by operators ----------------------------------------------------------
def set_password_and_log_in(client, message) -> int:
    params = query_of(message)
    confirmed = client.post("/auth/password/reset/confirm/",
                            {"uid": params["uid"], "token": params["token"],
                             "new_password": NEW_PASSWORD}, format="json")
    assert confirmed.status_code == 200
    return login(client, message["To"], NEW_PASSWORD).status_code


def test_org_create_emails_the_new_owner_a_set_password_link(client, smtp, sends, capsys):
    with sends():
        call_command("org_create", "--name", "Globex", "--owner-email", "Hank@Globex.example")

    (message,) = smtp.messages
    assert message["To"] == "hank@globex.example"
    assert message["Subject"] == "Your Egret account for Globex is ready: set your password"
    assert link_of(message).split("?")[0].endswith("/reset")
    assert set_password_and_log_in(client, message) == 200


def test_admin_emails_the_new_owner_a_set_password_link(staff, client, smtp, sends):
    with sends():
        response = staff.post("/admin/organizations/organization/add/", {
            "name": "Initech", "slug": "initech", "owner_email": "peter@initech.example",
            "plan_choice": "starter"})
    assert response.status_code == 302

    (message,) = smtp.messages
    assert message["To"] == "peter@initech.example"
    assert set_password_and_log_in(client, message) == 200


def test_an_owner_who_already_has_a_password_gets_no_mail(owner, smtp, sends):
    with sends():
        call_command("org_create", "--name", "Second", "--owner-email", "owner@example.com")
    assert smtp.messages == []
    assert owner.check_password(PASSWORD)
