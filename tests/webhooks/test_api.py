"""The webhook and event endpoints (API.md 13): auth, roles, validation, tenancy, bodies."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from organizations.models import Role
from webhooks import events
from webhooks.models import Delivery, Endpoint, Event, EventType

pytestmark = pytest.mark.django_db

ENDPOINT_FIELDS = {"id", "url", "events", "description", "is_active", "failing_since",
                   "deactivated_at", "created_at", "updated_at"}
DELIVERY_FIELDS = {"id", "event_id", "event_type", "status", "attempts", "last_status_code",
                   "last_error", "next_attempt_at", "created_at"}
URL = "https://hooks.example.com/egret"


def test_create_returns_the_secret_once(manager):
    response = manager.post("/v1/webhooks/", {"url": URL, "events": ["credits.exhausted"],
                                              "description": "finance"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == ENDPOINT_FIELDS | {"secret"}
    assert re.fullmatch(r"whsec_[0-9A-Za-z]{32}", body["secret"])
    assert (body["url"], body["events"], body["description"], body["is_active"]) == (
        URL, ["credits.exhausted"], "finance", True)
    listed = manager.get("/v1/webhooks/").json()
    assert [set(item) for item in listed] == [ENDPOINT_FIELDS]
    detail = manager.get(f"/v1/webhooks/{body['id']}/").json()
    assert "secret" not in detail and body["secret"] not in str(detail)
    assert Endpoint.objects.get(pk=body["id"]).secret == body["secret"]


def test_no_credentials_is_401(client):
    response = client.get("/v1/webhooks/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_members_and_keys_cannot_manage_webhooks(org, make_user, add_member, jwt_client,
                                                 make_key, key_client):
    member = make_user()
    add_member(org, member, Role.MEMBER)
    response = jwt_client(member, org).post("/v1/webhooks/", {"url": URL, "events": ["*"]},
                                            format="json")
    assert response.status_code == 403
    assert response.json() == {"detail": "Only owners and admins can manage webhooks."}
    _, raw = make_key(org)
    response = key_client(raw).get("/v1/webhooks/")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "API keys cannot manage webhooks; use a user's access token."}
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize("body, detail", [
    ({"events": ["*"]}, "url field is required."),
    ({"url": "http://hooks.example.com/", "events": ["*"]}, "url: must be an https:// URL."),
    ({"url": "ftp://hooks.example.com/", "events": ["*"]}, "url: enter an https:// URL."),
    ({"url": "https://127.0.0.1/hook", "events": ["*"]},
     "url: must not point to a loopback, private, link-local or multicast address."),
    ({"url": "https://[::1]/hook", "events": ["*"]},
     "url: must not point to a loopback, private, link-local or multicast address."),
    ({"url": "https://169.254.169.254/latest", "events": ["*"]},
     "url: must not point to a loopback, private, link-local or multicast address."),
    ({"url": "https://user:pw@hooks.example.com/", "events": ["*"]},
     "url: must not contain a user name or password."),
    ({"url": URL}, "events field is required."),
    ({"url": URL, "events": []}, "events: at least one event type is required."),
    ({"url": URL, "events": ["credits.low"]}, 'events: unknown event type "credits.low".'),
])
def test_invalid_bodies_are_400_and_create_nothing(manager, body, detail):
    response = manager.post("/v1/webhooks/", body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == detail
    assert not Endpoint.objects.exists()


def test_plain_http_is_accepted_when_the_operator_allows_it(manager, settings):
    settings.EGRET_WEBHOOKS_ALLOW_HTTP = True
    response = manager.post("/v1/webhooks/", {"url": "http://hooks.example.com/", "events": ["*"]},
                            format="json")
    assert response.status_code == 201


def test_endpoint_limit_is_403(manager, endpoint_for):
    for n in range(10):
        endpoint_for(f"{URL}/{n}")
    response = manager.post("/v1/webhooks/", {"url": URL, "events": ["*"]}, format="json")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Your organization has reached its limit of 10 webhook endpoints."}


def test_another_organizations_endpoint_is_404(manager, make_user, make_org, jwt_client):
    other_owner = make_user()
    other = make_org(other_owner, slug="globex", name="Globex")
    theirs = jwt_client(other_owner, other).post("/v1/webhooks/", {"url": URL, "events": ["*"]},
                                                 format="json").json()
    for method, path in [("get", ""), ("patch", ""), ("delete", ""), ("post", "rotate-secret/"),
                         ("post", "test/"), ("get", "deliveries/")]:
        response = getattr(manager, method)(f"/v1/webhooks/{theirs['id']}/{path}", {},
                                            format="json")
        assert response.status_code == 404, (method, path)
        assert response.json() == {"detail": "Webhook endpoint not found."}
    assert manager.get("/v1/webhooks/not-a-uuid/").status_code == 404
    assert Endpoint.objects.get(pk=theirs["id"]).url == URL


def test_patch_changes_fields_and_validates(manager, endpoint_for):
    endpoint = endpoint_for(URL)
    path = f"/v1/webhooks/{endpoint['id']}/"
    response = manager.patch(path, {"events": ["ping", "ping", "document.ready"],
                                    "description": "docs", "is_active": False}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["events"], body["description"], body["is_active"], body["url"]) == (
        ["ping", "document.ready"], "docs", False, URL)
    response = manager.patch(path, {"url": "http://x.example.com/"}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "url: must be an https:// URL."
    assert Endpoint.objects.get(pk=endpoint["id"]).url == URL


def test_reactivating_forgets_the_failures(manager, endpoint_for):
    endpoint = endpoint_for(URL)
    Endpoint.objects.filter(pk=endpoint["id"]).update(
        is_active=False, failing_since=timezone.now() - timedelta(days=4),
        deactivated_at=timezone.now())
    body = manager.patch(f"/v1/webhooks/{endpoint['id']}/", {"is_active": True},
                         format="json").json()
    assert (body["is_active"], body["failing_since"], body["deactivated_at"]) == (
        True, None, None)


def test_delete_is_204_and_removes_deliveries(manager, endpoint_for):
    endpoint = endpoint_for(URL)
    manager.post(f"/v1/webhooks/{endpoint['id']}/test/")
    response = manager.delete(f"/v1/webhooks/{endpoint['id']}/")
    assert response.status_code == 204
    assert not Endpoint.objects.exists() and not Delivery.objects.exists()
    assert manager.delete(f"/v1/webhooks/{endpoint['id']}/").status_code == 404


def test_rotate_returns_a_new_secret_and_keeps_the_old_one_for_a_day(manager, endpoint_for):
    endpoint = endpoint_for(URL)
    response = manager.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret/")
    assert response.status_code == 200
    body = response.json()
    assert re.fullmatch(r"whsec_[0-9A-Za-z]{32}", body["secret"])
    assert body["secret"] != endpoint["secret"]
    stored = Endpoint.objects.get(pk=endpoint["id"])
    assert (stored.secret, stored.previous_secret) == (body["secret"], endpoint["secret"])
    left = stored.previous_secret_expires_at - timezone.now()
    assert timedelta(hours=23, minutes=59) < left <= timedelta(hours=24)


def test_test_queues_a_ping_and_answers_202(manager, endpoint_for):
    endpoint = endpoint_for(URL, ["credits.exhausted"])
    response = manager.post(f"/v1/webhooks/{endpoint['id']}/test/")
    assert response.status_code == 202
    body = response.json()
    assert set(body) == DELIVERY_FIELDS
    assert (body["event_type"], body["status"], body["attempts"]) == ("ping", "pending", 0)
    event = Event.objects.get()
    assert (body["event_id"], event.type) == (event.public_id, EventType.PING)


def test_test_on_an_inactive_endpoint_is_400(manager, endpoint_for):
    endpoint = endpoint_for(URL)
    Endpoint.objects.filter(pk=endpoint["id"]).update(is_active=False)
    response = manager.post(f"/v1/webhooks/{endpoint['id']}/test/")
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "The webhook endpoint is inactive; set is_active to true first.")
    assert not Delivery.objects.exists()


def test_deliveries_are_cursor_paginated_newest_first(manager, endpoint_for):
    endpoint = endpoint_for(URL)
    ids = [manager.post(f"/v1/webhooks/{endpoint['id']}/test/").json()["id"] for _ in range(3)]
    first = manager.get(f"/v1/webhooks/{endpoint['id']}/deliveries/?limit=2").json()
    assert [d["id"] for d in first["results"]] == ids[::-1][:2]
    assert set(first["results"][0]) == DELIVERY_FIELDS
    second = manager.get(first["next"]).json()
    assert [d["id"] for d in second["results"]] == ids[:1] and second["next"] is None


def test_redeliver_is_202_and_404_for_unknown_deliveries(manager, endpoint_for):
    endpoint = endpoint_for(URL)
    other = endpoint_for(f"{URL}/other")
    delivery = manager.post(f"/v1/webhooks/{endpoint['id']}/test/").json()
    Delivery.objects.filter(pk=delivery["id"]).update(status="failed", next_attempt_at=None,
                                                      attempts=7)
    response = manager.post(
        f"/v1/webhooks/{endpoint['id']}/deliveries/{delivery['id']}/redeliver/")
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["attempts"]) == ("pending", 7)
    stored = Delivery.objects.get(pk=delivery["id"])
    assert (stored.status, stored.round_offset) == ("pending", 7)
    response = manager.post(f"/v1/webhooks/{other['id']}/deliveries/{delivery['id']}/redeliver/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Delivery not found."}


# --- Events ------------------------------------------------------------------------------------
def test_events_are_listed_newest_first_with_a_type_filter(manager, org, make_key, key_client):
    events.event_record(org.pk, EventType.DOCUMENT_READY, {"document_id": "d1"})
    events.event_record(org.pk, EventType.GRANTED, {"amount": 5})
    old = Event.objects.create(organization=org, type=EventType.GRANTED, data={},
                               created_at=timezone.now() - timedelta(days=31))
    _, raw = make_key(org)
    body = key_client(raw).get("/v1/events/").json()
    assert [e["type"] for e in body["results"]] == ["credits.granted", "document.ready"]
    first = body["results"][0]
    assert set(first) == {"id", "type", "created_at", "organization", "data"}
    assert re.fullmatch(r"evt_[0-9a-f]{32}", first["id"]) and first["organization"] == "acme"
    assert first["data"] == {"amount": 5}
    assert old.public_id not in str(body)
    filtered = manager.get("/v1/events/?type=document.ready").json()["results"]
    assert [e["data"] for e in filtered] == [{"document_id": "d1"}]


def test_events_type_must_be_known_and_members_get_403(manager, org, make_user, add_member,
                                                      jwt_client):
    response = manager.get("/v1/events/?type=credits.low")
    assert response.status_code == 400
    assert response.json()["detail"] == 'type: "credits.low" is not a valid choice.'
    member = make_user()
    add_member(org, member, Role.MEMBER)
    response = jwt_client(member, org).get("/v1/events/")
    assert response.status_code == 403
    assert response.json() == {"detail": "Only owners and admins can read events."}


def test_events_of_another_organization_are_not_listed(manager, make_user, make_org):
    other = make_org(make_user(), slug="globex", name="Globex")
    events.event_record(other.pk, EventType.GRANTED, {"amount": 1})
    assert manager.get("/v1/events/").json()["results"] == []


# --- Thresholds on the organization ------------------------------------------------------------
def test_thresholds_default_and_patch(manager, org):
    assert manager.get("/v1/orgs/acme/").json()["credit_alert_thresholds"] == [80, 95]
    response = manager.patch("/v1/orgs/acme/", {"credit_alert_thresholds": [90, 50, 90]},
                             format="json")
    assert response.status_code == 200
    assert response.json()["credit_alert_thresholds"] == [50, 90]
    org.refresh_from_db()
    assert org.credit_alert_thresholds == [50, 90]


@pytest.mark.parametrize("value, detail", [
    ([0], "credit_alert_thresholds: 0 is not a whole percentage from 1 to 100."),
    ([101], "credit_alert_thresholds: 101 is not a whole percentage from 1 to 100."),
    ([50.5], "credit_alert_thresholds: 50.5 is not a whole percentage from 1 to 100."),
    (["80"], 'credit_alert_thresholds: "80" is not a whole percentage from 1 to 100.'),
    ([True], "credit_alert_thresholds: true is not a whole percentage from 1 to 100."),
    ([10, 20, 30, 40, 50, 60], "credit_alert_thresholds: at most 5 thresholds."),
])
def test_invalid_thresholds_are_400(manager, org, value, detail):
    response = manager.patch("/v1/orgs/acme/", {"credit_alert_thresholds": value}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == detail
    org.refresh_from_db()
    assert org.credit_alert_thresholds == [80, 95]


def test_members_cannot_change_thresholds(org, make_user, add_member, jwt_client):
    member = make_user()
    add_member(org, member, Role.MEMBER)
    response = jwt_client(member, org).patch("/v1/orgs/acme/", {"credit_alert_thresholds": [50]},
                                             format="json")
    assert response.status_code == 403
