"""Members (API.md 3): list, add, change role, remove."""

from __future__ import annotations


import pytest

from organizations.models import Membership, Role

pytestmark = pytest.mark.django_db

UNKNOWN_ID = "0b9e4c1e-5d6a-4f3b-9c1d-2e7f8a9b0c1d"  # a well-formed id nobody has

URL = "/v1/orgs/acme/members/"


def member_url(user) -> str:
    return f"{URL}{user.pk}/"


def role_of(org, user) -> str | None:
    return Membership.objects.filter(organization=org, user=user).values_list(
        "role", flat=True
    ).first()


# --- List ----------------------------------------------------------------------------------
def test_list_returns_members_in_joining_order(jwt_client, owner, org, admin_user, member_user):
    response = jwt_client(member_user).get(URL)

    assert response.status_code == 200
    body = response.json()
    assert [(m["email"], m["role"]) for m in body] == [
        ("owner@example.com", "owner"),
        ("admin@example.com", "admin"),
        ("member@example.com", "member"),
    ]
    assert set(body[0]) == {"user_id", "email", "name", "role", "joined_at"}
    assert body[0]["user_id"] == str(owner.pk)
    assert body[0]["name"] == "Olivia Owner"


def test_api_key_cannot_list_members(key_client, org, make_key):
    _, raw = make_key(org)

    response = key_client(raw).get(URL)

    assert response.status_code == 403
    assert "API keys cannot" in response.json()["detail"]


# --- Add -----------------------------------------------------------------------------------
def test_owner_adds_an_existing_user_by_email_in_any_case(jwt_client, owner, org, make_user):
    newcomer = make_user("new@example.com", name="Nina New")

    response = jwt_client(owner).post(URL, {"email": "NEW@Example.com", "role": "admin"},
                                      format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["user_id"] == str(newcomer.pk)
    assert body["email"] == "new@example.com"
    assert body["name"] == "Nina New"
    assert body["role"] == "admin"
    assert role_of(org, newcomer) == "admin"


def test_role_defaults_to_member(jwt_client, owner, org, make_user):
    newcomer = make_user("new@example.com")

    response = jwt_client(owner).post(URL, {"email": "new@example.com"}, format="json")

    assert response.status_code == 201
    assert response.json()["role"] == "member"
    assert role_of(org, newcomer) == "member"


def test_adding_an_email_without_account_invites_it_instead(jwt_client, owner, org):
    response = jwt_client(owner).post(URL, {"email": "Ghost@example.com", "role": "member"},
                                      format="json")

    assert response.status_code == 201
    assert set(response.json()) == {"invitation_id", "email", "role", "expires_at"}
    assert response.json()["email"] == "ghost@example.com"
    assert org.memberships.count() == 1  # joins only when the invitation is accepted


def test_an_invalid_role_is_400_naming_role(jwt_client, owner, org, make_user):
    newcomer = make_user("new@example.com")

    response = jwt_client(owner).post(URL, {"email": "new@example.com", "role": "boss"},
                                      format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == 'role: "boss" is not a valid choice.'
    assert role_of(org, newcomer) is None


def test_a_missing_email_is_400(jwt_client, owner, org):
    response = jwt_client(owner).post(URL, {"role": "member"}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == "email field is required."


def test_adding_an_existing_member_is_400_naming_email(jwt_client, owner, org, member_user):
    response = jwt_client(owner).post(URL, {"email": "member@example.com", "role": "admin"},
                                      format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("email: ")
    assert role_of(org, member_user) == "member"


def test_adding_beyond_the_plans_max_members_is_403_naming_the_limit(
    jwt_client, owner, org, admin_user, member_user, make_user
):
    extra = make_user("fourth@example.com")
    assert org.memberships.count() == 3  # starter allows 3

    response = jwt_client(owner).post(URL, {"email": "fourth@example.com", "role": "member"},
                                      format="json")

    assert response.status_code == 403
    assert "at most 3 members" in response.json()["detail"]
    assert role_of(org, extra) is None


def test_free_plan_allows_only_its_owner(jwt_client, owner, make_org, make_user):
    make_org(owner, plan="free", name="Tiny", slug="tiny")
    other = make_user("other@example.com")

    response = jwt_client(owner).post("/v1/orgs/tiny/members/",
                                      {"email": "other@example.com", "role": "member"},
                                      format="json")

    assert response.status_code == 403
    assert "at most 1 member;" in response.json()["detail"]
    assert not Membership.objects.filter(user=other).exists()


def test_an_organization_override_raises_the_member_limit(jwt_client, owner, org, admin_user,
                                                         member_user, make_user):
    type(org).objects.filter(pk=org.pk).update(max_members_override=4)
    make_user("fourth@example.com")

    response = jwt_client(owner).post(URL, {"email": "fourth@example.com"}, format="json")

    assert response.status_code == 201


def test_admin_can_add_members_and_admins(jwt_client, org, admin_user, make_user):
    newcomer = make_user("new@example.com")

    response = jwt_client(admin_user).post(URL, {"email": "new@example.com", "role": "admin"},
                                           format="json")

    assert response.status_code == 201
    assert role_of(org, newcomer) == "admin"


def test_admin_cannot_grant_the_owner_role(jwt_client, org, admin_user, make_user):
    newcomer = make_user("new@example.com")

    response = jwt_client(admin_user).post(URL, {"email": "new@example.com", "role": "owner"},
                                           format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == "Only owners can grant the owner role."
    assert role_of(org, newcomer) is None


def test_an_admin_granting_owner_to_an_existing_member_is_400_before_the_role_403(
        jwt_client, org, admin_user, member_user):
    # API.md 1: the 400 about the body comes before the 403 about the role.
    response = jwt_client(admin_user).post(URL, {"email": "member@example.com",
                                                 "role": "owner"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "email: this user is already a member of the organization.",
        "code": "unique", "field": "email"}
    assert role_of(org, member_user) == "member"


def test_owner_can_add_another_owner(jwt_client, owner, org, make_user):
    newcomer = make_user("new@example.com")

    response = jwt_client(owner).post(URL, {"email": "new@example.com", "role": "owner"},
                                      format="json")

    assert response.status_code == 201
    assert role_of(org, newcomer) == "owner"


def test_member_cannot_add_members(jwt_client, org, member_user, make_user):
    newcomer = make_user("new@example.com")

    response = jwt_client(member_user).post(URL, {"email": "new@example.com"}, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == "Only owners and admins can add members."
    assert role_of(org, newcomer) is None


def test_api_key_cannot_add_members(key_client, org, make_key, make_user):
    newcomer = make_user("new@example.com")
    _, raw = make_key(org)

    response = key_client(raw).post(URL, {"email": "new@example.com"}, format="json")

    assert response.status_code == 403
    assert role_of(org, newcomer) is None


# --- Change role ---------------------------------------------------------------------------
def test_owner_changes_a_members_role(jwt_client, owner, org, member_user):
    response = jwt_client(owner).patch(member_url(member_user), {"role": "admin"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == str(member_user.pk)
    assert body["email"] == "member@example.com"
    assert body["role"] == "admin"
    assert role_of(org, member_user) == "admin"


def test_owner_can_promote_to_owner(jwt_client, owner, org, admin_user):
    response = jwt_client(owner).patch(member_url(admin_user), {"role": "owner"}, format="json")

    assert response.status_code == 200
    assert role_of(org, admin_user) == "owner"


def test_admin_cannot_change_roles(jwt_client, org, admin_user, member_user):
    response = jwt_client(admin_user).patch(member_url(member_user), {"role": "admin"},
                                            format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == "Only owners can change member roles."
    assert role_of(org, member_user) == "member"


def test_member_cannot_promote_themself(jwt_client, org, member_user):
    response = jwt_client(member_user).patch(member_url(member_user), {"role": "owner"},
                                             format="json")

    assert response.status_code == 403
    assert role_of(org, member_user) == "member"


def test_changing_role_to_an_invalid_value_is_400(jwt_client, owner, org, member_user):
    response = jwt_client(owner).patch(member_url(member_user), {"role": "king"}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == 'role: "king" is not a valid choice.'
    assert role_of(org, member_user) == "member"


def test_changing_role_without_role_is_400(jwt_client, owner, org, member_user):
    response = jwt_client(owner).patch(member_url(member_user), {}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == "role field is required."


@pytest.mark.parametrize("user_id", [UNKNOWN_ID, "not-a-uuid"])
def test_changing_role_of_a_non_member_is_404(jwt_client, owner, org, user_id):
    response = jwt_client(owner).patch(f"{URL}{user_id}/", {"role": "admin"}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "Member not found."}


def test_changing_role_of_a_user_who_is_not_in_this_org_is_404(jwt_client, owner, org, make_user):
    stranger = make_user("stranger@example.com")

    response = jwt_client(owner).patch(member_url(stranger), {"role": "admin"}, format="json")

    assert response.status_code == 404
    assert not Membership.objects.filter(user=stranger).exists()


def test_the_last_owner_cannot_be_demoted(jwt_client, owner, org):
    response = jwt_client(owner).patch(member_url(owner), {"role": "admin"}, format="json")

    assert response.status_code == 400
    assert "last owner" in response.json()["detail"]
    assert role_of(org, owner) == "owner"


def test_an_owner_can_be_demoted_when_another_owner_remains(jwt_client, owner, org, make_user,
                                                            add_member):
    second = make_user("second@example.com")
    add_member(org, second, Role.OWNER)

    response = jwt_client(owner).patch(member_url(owner), {"role": "member"}, format="json")

    assert response.status_code == 200
    assert role_of(org, owner) == "member"
    assert role_of(org, second) == "owner"


# --- Remove --------------------------------------------------------------------------------
def test_owner_removes_a_member_with_204(jwt_client, owner, org, member_user):
    response = jwt_client(owner).delete(member_url(member_user))

    assert response.status_code == 204
    assert not response.content
    assert role_of(org, member_user) is None
    assert type(member_user).objects.filter(pk=member_user.pk).exists()  # only the membership


def test_admin_removes_a_member(jwt_client, org, admin_user, member_user):
    response = jwt_client(admin_user).delete(member_url(member_user))

    assert response.status_code == 204
    assert role_of(org, member_user) is None


def test_admin_cannot_remove_an_owner(jwt_client, owner, org, admin_user, make_user, add_member):
    add_member(org, make_user("second@example.com"), Role.OWNER)  # not the last owner

    response = jwt_client(admin_user).delete(member_url(owner))

    assert response.status_code == 403
    assert response.json()["detail"] == "Only owners can remove an owner."
    assert role_of(org, owner) == "owner"


def test_member_cannot_remove_another_member(jwt_client, org, admin_user, member_user):
    response = jwt_client(member_user).delete(member_url(admin_user))

    assert response.status_code == 403
    assert response.json()["detail"] == "Only owners and admins can remove members."
    assert role_of(org, admin_user) == "admin"


def test_a_member_may_remove_themself(jwt_client, org, member_user):
    response = jwt_client(member_user).delete(member_url(member_user))

    assert response.status_code == 204
    assert role_of(org, member_user) is None


def test_the_last_owner_cannot_be_removed(jwt_client, owner, org, member_user):
    response = jwt_client(owner).delete(member_url(owner))

    assert response.status_code == 400
    assert "last owner" in response.json()["detail"]
    assert role_of(org, owner) == "owner"


def test_an_owner_can_leave_when_another_owner_remains(jwt_client, owner, org, make_user,
                                                       add_member):
    add_member(org, make_user("second@example.com"), Role.OWNER)

    response = jwt_client(owner).delete(member_url(owner))

    assert response.status_code == 204
    assert role_of(org, owner) is None


@pytest.mark.parametrize("user_id", [UNKNOWN_ID, "not-a-uuid"])
def test_removing_a_non_member_is_404(jwt_client, owner, org, user_id):
    response = jwt_client(owner).delete(f"{URL}{user_id}/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Member not found."}


def test_api_key_cannot_remove_members(key_client, org, member_user, make_key):
    _, raw = make_key(org)

    response = key_client(raw).delete(member_url(member_user))

    assert response.status_code == 403
    assert role_of(org, member_user) == "member"


def test_a_removed_member_loses_access_to_the_organization(jwt_client, owner, org, member_user):
    jwt_client(owner).delete(member_url(member_user))

    response = jwt_client(member_user).get("/v1/orgs/acme/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Organization not found."}
