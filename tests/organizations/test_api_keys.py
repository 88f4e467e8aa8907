"""API keys (API.md 2.2 and 4): create, list, update, rotate, revoke; who may manage them;
last_used_at throttling."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core import keyformat
from core.authentication import INVALID_API_KEY
from organizations.models import ApiKey, Organization

pytestmark = pytest.mark.django_db

UNKNOWN_ID = "0b9e4c1e-5d6a-4f3b-9c1d-2e7f8a9b0c1d"  # a well-formed id nobody has

URL = "/v1/billings/api-keys/"
KEY_FIELDS = {"id", "name", "key_prefix", "is_active", "created_at", "last_used_at",
              "expires_at", "created_by"}
KEY_RE = re.compile(r"^egret_[0-9A-Za-z]{40}$")
NOT_FOUND = {"detail": "API key not found."}


def iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def works(client, raw: str) -> bool:
    response = client.get("/auth/me/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    if response.status_code == 401:
        assert response.json()["detail"] == INVALID_API_KEY
        return False
    assert response.status_code == 200
    return True


# --- Create --------------------------------------------------------------------------------
def test_create_returns_201_with_the_raw_key_once(jwt_client, client, owner, org):
    response = jwt_client(owner).post(URL, {"name": "ci"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == KEY_FIELDS | {"key"}
    raw = body["key"]
    assert KEY_RE.match(raw)
    assert keyformat.is_well_formed(raw)
    assert body["key_prefix"] == raw[:20]
    assert body["name"] == "ci"
    assert body["is_active"] is True
    assert body["created_by"] == "owner@example.com"
    assert body["expires_at"] is None
    assert body["last_used_at"] is None
    key = ApiKey.objects.get(pk=body["id"])
    assert key.organization_id == org.pk
    assert key.created_by_id == owner.pk
    assert key.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {key.name, key.key_prefix, key.digest}
    assert works(client, raw)


def test_create_with_a_future_expiry_stores_it(jwt_client, owner, org):
    expires = (timezone.now() + timedelta(days=30)).replace(microsecond=0)

    response = jwt_client(owner).post(URL, {"name": "temp", "expires_at": iso(expires)},
                                      format="json")

    assert response.status_code == 201
    assert parse_datetime(response.json()["expires_at"]) == expires
    assert ApiKey.objects.get().expires_at == expires


def test_create_with_an_expiry_in_the_past_is_400_naming_expires_at(jwt_client, owner, org):
    past = timezone.now() - timedelta(minutes=1)

    response = jwt_client(owner).post(URL, {"name": "old", "expires_at": iso(past)},
                                      format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith("expires_at: ")
    assert body["field"] == "expires_at"
    assert not ApiKey.objects.exists()


def test_create_with_a_malformed_expiry_is_400_naming_expires_at(jwt_client, owner, org):
    response = jwt_client(owner).post(URL, {"name": "x", "expires_at": "tomorrow"}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("expires_at: ")


def test_create_without_name_is_400(jwt_client, owner, org):
    response = jwt_client(owner).post(URL, {}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == "name field is required."


def test_create_on_a_plan_without_api_access_is_403(jwt_client, owner, make_org):
    make_org(owner, plan="free", name="Tiny", slug="tiny")

    response = jwt_client(owner).post(URL, {"name": "ci"}, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == "Your plan does not include API access."
    assert not ApiKey.objects.exists()


def test_create_beyond_max_api_keys_is_403_naming_the_limit(jwt_client, owner, org):
    api = jwt_client(owner)
    assert api.post(URL, {"name": "first"}, format="json").status_code == 201

    response = api.post(URL, {"name": "second"}, format="json")

    assert response.status_code == 403
    assert "at most 1 active API key" in response.json()["detail"]
    assert list(ApiKey.objects.values_list("name", flat=True)) == ["first"]


def test_revoked_and_expired_keys_do_not_count_against_the_limit(jwt_client, owner, org, make_key):
    revoked, _ = make_key(org, name="revoked")
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    expired, _ = make_key(org, name="expired")
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))

    response = jwt_client(owner).post(URL, {"name": "fresh"}, format="json")

    assert response.status_code == 201


# --- List ----------------------------------------------------------------------------------
def test_list_is_newest_first_includes_revoked_keys_and_never_the_raw_key(jwt_client, owner, org,
                                                                          make_key):
    now = timezone.now()
    created = []
    for age_days, name in [(3, "oldest"), (1, "newest"), (2, "middle")]:
        key, raw = make_key(org, name=name)
        ApiKey.objects.filter(pk=key.pk).update(created_at=now - timedelta(days=age_days))
        created.append(raw)
    ApiKey.objects.filter(name="middle").update(revoked_at=now)

    response = jwt_client(owner).get(URL)

    assert response.status_code == 200
    body = response.json()
    assert [(k["name"], k["is_active"]) for k in body] == [
        ("newest", True), ("middle", False), ("oldest", True)
    ]
    assert all(set(k) == KEY_FIELDS for k in body)
    text = response.content.decode()
    assert not any(raw in text for raw in created)


def test_list_marks_expired_keys_inactive(jwt_client, owner, org, make_key):
    key, _ = make_key(org)
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    body = jwt_client(owner).get(URL).json()

    assert [k["is_active"] for k in body] == [False]


def test_list_only_shows_the_acting_organizations_keys(jwt_client, owner, org, make_org, make_key):
    other = make_org(owner, name="Globex", slug="globex")
    make_key(org, name="acme key")
    make_key(other, name="globex key")

    default = jwt_client(owner).get(URL).json()
    globex = jwt_client(owner, other).get(URL).json()

    assert [k["name"] for k in default] == ["acme key"]
    assert [k["name"] for k in globex] == ["globex key"]


# --- Update --------------------------------------------------------------------------------
def test_update_sets_expiry_and_name(jwt_client, owner, org, make_key):
    key, _ = make_key(org, name="before")
    expires = (timezone.now() + timedelta(days=7)).replace(microsecond=0)

    response = jwt_client(owner).patch(f"{URL}{key.pk}/update/",
                                       {"expires_at": iso(expires), "name": "after"},
                                       format="json")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == KEY_FIELDS
    assert body["name"] == "after"
    assert parse_datetime(body["expires_at"]) == expires
    key.refresh_from_db()
    assert key.name == "after"
    assert key.expires_at == expires


def test_update_with_null_expiry_clears_it(jwt_client, owner, org, make_key):
    key, _ = make_key(org, name="temp", expires_at=timezone.now() + timedelta(days=1))

    response = jwt_client(owner).patch(f"{URL}{key.pk}/update/", {"expires_at": None},
                                       format="json")

    assert response.status_code == 200
    assert response.json()["expires_at"] is None
    assert response.json()["name"] == "temp"
    key.refresh_from_db()
    assert key.expires_at is None
    assert key.name == "temp"


def test_update_with_only_a_name_keeps_the_expiry(jwt_client, owner, org, make_key):
    expires = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    key, _ = make_key(org, expires_at=expires)

    response = jwt_client(owner).patch(f"{URL}{key.pk}/update/", {"name": "renamed"},
                                       format="json")

    assert response.status_code == 200
    key.refresh_from_db()
    assert key.expires_at == expires
    assert key.name == "renamed"


def test_update_with_an_expiry_in_the_past_is_400(jwt_client, owner, org, make_key):
    key, _ = make_key(org)

    response = jwt_client(owner).patch(
        f"{URL}{key.pk}/update/",
        {"expires_at": iso(timezone.now() - timedelta(hours=1))}, format="json",
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("expires_at: ")
    key.refresh_from_db()
    assert key.expires_at is None


# --- Rotate --------------------------------------------------------------------------------
def test_rotate_issues_a_new_secret_and_the_old_one_stops_working(jwt_client, client, owner, org,
                                                                  make_key):
    expires = (timezone.now() + timedelta(days=5)).replace(microsecond=0)
    key, old_raw = make_key(org, name="ci", expires_at=expires)
    assert works(client, old_raw)

    response = jwt_client(owner).post(f"{URL}{key.pk}/rotate/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == KEY_FIELDS | {"key"}
    new_raw = body["key"]
    assert new_raw != old_raw
    assert keyformat.is_well_formed(new_raw)
    assert body["id"] == str(key.pk)
    assert body["name"] == "ci"
    assert parse_datetime(body["expires_at"]) == expires
    assert body["key_prefix"] == new_raw[:20]
    assert not works(client, old_raw)
    assert works(client, new_raw)
    assert ApiKey.objects.count() == 1
    key.refresh_from_db()
    assert key.digest == keyformat.digest(new_raw)


def test_rotating_a_revoked_key_is_400_and_it_stays_dead(jwt_client, client, owner, org, make_key):
    key, raw = make_key(org)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())

    response = jwt_client(owner).post(f"{URL}{key.pk}/rotate/")

    assert response.status_code == 400
    assert "revoked" in response.json()["detail"]
    key.refresh_from_db()
    assert key.digest == keyformat.digest(raw)
    assert not works(client, raw)


# --- Revoke --------------------------------------------------------------------------------
def test_revoke_is_204_idempotent_and_the_key_stops_working(jwt_client, client, owner, org,
                                                            make_key):
    key, raw = make_key(org)
    api = jwt_client(owner)

    first = api.delete(f"{URL}{key.pk}/")

    assert first.status_code == 204
    assert not first.content
    key.refresh_from_db()
    revoked_at = key.revoked_at
    assert revoked_at is not None
    assert not works(client, raw)

    second = api.delete(f"{URL}{key.pk}/")

    assert second.status_code == 204
    key.refresh_from_db()
    assert key.revoked_at == revoked_at
    listed = api.get(URL).json()
    assert [(k["id"], k["is_active"]) for k in listed] == [(str(key.pk), False)]


@pytest.mark.parametrize("key_id", [UNKNOWN_ID, "not-a-uuid", "123"])
@pytest.mark.parametrize("method, suffix", [("patch", "update/"), ("post", "rotate/"),
                                            ("delete", "")])
def test_unknown_key_id_is_404(jwt_client, owner, org, key_id, method, suffix):
    response = getattr(jwt_client(owner), method)(f"{URL}{key_id}/{suffix}", {}, format="json")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# --- Who may manage keys -------------------------------------------------------------------
def key_requests(key_id):
    return [
        ("get", URL, None),
        ("post", URL, {"name": "new"}),
        ("patch", f"{URL}{key_id}/update/", {"name": "renamed"}),
        ("post", f"{URL}{key_id}/rotate/", None),
        ("delete", f"{URL}{key_id}/", None),
    ]


ENDPOINTS = ["list", "create", "update", "rotate", "revoke"]


def snapshot(key: ApiKey):
    key.refresh_from_db()
    return (key.name, key.digest, key.key_prefix, key.expires_at, key.revoked_at)


@pytest.mark.parametrize("index", range(5), ids=ENDPOINTS)
def test_member_cannot_manage_api_keys(jwt_client, org, member_user, make_key, index):
    key, _ = make_key(org, name="kept")
    before = snapshot(key)
    method, url, data = key_requests(key.pk)[index]

    response = getattr(jwt_client(member_user), method)(url, data, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == "Only owners and admins can manage API keys."
    assert snapshot(key) == before
    assert ApiKey.objects.count() == 1


@pytest.mark.parametrize("index", range(5), ids=ENDPOINTS)
def test_api_key_cannot_manage_api_keys(key_client, org, make_key, index):
    Organization.objects.filter(pk=org.pk).update(max_api_keys_override=5)
    key, raw = make_key(org, name="kept")
    before = snapshot(key)
    method, url, data = key_requests(key.pk)[index]

    response = getattr(key_client(raw), method)(url, data, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == (
        "API keys cannot manage API keys; use a user's access token."
    )
    assert snapshot(key) == before
    assert ApiKey.objects.count() == 1


@pytest.mark.parametrize("index, status", [(0, 200), (1, 201), (2, 200), (3, 200), (4, 204)],
                         ids=ENDPOINTS)
def test_admin_can_manage_api_keys(jwt_client, org, admin_user, make_key, index, status):
    Organization.objects.filter(pk=org.pk).update(max_api_keys_override=5)
    key, _ = make_key(org, name="kept")
    before = snapshot(key)
    method, url, data = key_requests(key.pk)[index]

    response = getattr(jwt_client(admin_user), method)(url, data, format="json")

    assert response.status_code == status
    if index in (0, 1):
        assert snapshot(key) == before
    else:
        assert snapshot(key) != before
    if index == 1:
        assert response.json()["created_by"] == "admin@example.com"


# --- last_used_at --------------------------------------------------------------------------
def api_key_updates(queries) -> int:
    return sum(
        1 for q in queries
        if q["sql"].lstrip().upper().startswith("UPDATE") and "organizations_apikey" in q["sql"]
    )


def test_last_used_at_is_written_on_first_use_then_at_most_once_a_minute(client, org, make_key):
    key, raw = make_key(org)
    assert key.last_used_at is None
    start = (timezone.now() + timedelta(minutes=1)).replace(microsecond=0)

    def call():
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/auth/me/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
        return api_key_updates(queries)

    with time_machine.travel(start, tick=False) as traveller:
        assert call() == 1
        key.refresh_from_db()
        assert key.last_used_at == start

        traveller.shift(timedelta(seconds=30))
        assert call() == 0
        traveller.shift(timedelta(seconds=29))
        assert call() == 0
        key.refresh_from_db()
        assert key.last_used_at == start

        traveller.shift(timedelta(seconds=2))  # 61 s after the first write
        assert call() == 1
        key.refresh_from_db()
        assert key.last_used_at == start + timedelta(seconds=61)

        traveller.shift(timedelta(seconds=10))
        assert call() == 0
        key.refresh_from_db()
        assert key.last_used_at == start + timedelta(seconds=61)


def test_last_used_at_is_shown_in_the_key_list(jwt_client, client, owner, org, make_key):
    key, raw = make_key(org)
    client.get("/auth/me/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    key.refresh_from_db()

    body = jwt_client(owner).get(URL).json()

    assert key.last_used_at is not None
    assert parse_datetime(body[0]["last_used_at"]) == key.last_used_at


def test_a_rejected_key_does_not_touch_last_used_at(client, org, make_key):
    key, raw = make_key(org)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())

    client.get("/auth/me/", HTTP_AUTHORIZATION=f"Bearer {raw}")

    key.refresh_from_db()
    assert key.last_used_at is None
