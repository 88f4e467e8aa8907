"""The paid-request pieces: HasCredits (early 402), metered() and @idempotent, through the
test-only endpoint in tests/billing/views.py."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from billing import services
from billing.idempotency import idempotency_purge
from billing.models import CreditAccount, IdempotencyRecord, LedgerEntry, Reservation
from organizations.models import Organization

pytestmark = pytest.mark.urls("tests.billing.views")
EXHAUSTED = {"detail": "Credit quota exhausted. Upgrade your plan or wait for your quota to reset."}
Kind = LedgerEntry.Kind


def balance(org) -> int:
    return CreditAccount.objects.get(organization=org).balance


def drain_to(org, left: int) -> None:
    current = balance(org)
    fresh = Organization.objects.select_related("plan", "subscription", "credit_account").get(
        pk=org.pk)
    services.credits_grant(fresh, left - current, kind=Kind.ADJUSTMENT, memo="test drain")


@pytest.fixture
def api(org, make_key, key_client):
    _, raw = make_key(org)
    return key_client(raw)


def test_a_paid_request_keeps_its_charge(api, org):
    response = api.post("/test/charge/", {"cost": 2}, format="json")
    assert response.status_code == 201
    assert balance(org) == 4998
    reservation = Reservation.objects.get(pk=response.json()["reservation_id"])
    assert reservation.status == Reservation.Status.SETTLED
    charge = LedgerEntry.objects.get(kind=Kind.QUERY_CHARGE)
    assert charge.actor_api_key is not None and charge.model == "test-model"


def test_a_failure_inside_the_paid_section_refunds(org, make_key):
    from rest_framework.test import APIClient

    _, raw = make_key(org)
    api = APIClient(raise_request_exception=False)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = api.post("/test/charge/", {"cost": 3, "fail": True}, format="json")
    assert response.status_code == 500
    assert set(response.json()) == {"detail", "request_id"}
    assert balance(org) == 5000
    assert Reservation.objects.get().status == Reservation.Status.REFUNDED


def test_invalid_body_spends_nothing(api, org):
    response = api.post("/test/charge/", {"cost": 0}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "cost: Ensure this value is greater than or equal to 1."
    assert balance(org) == 5000
    assert not Reservation.objects.exists()


def test_402_when_the_balance_cannot_cover_the_cost(api, org):
    drain_to(org, 2)
    response = api.post("/test/charge/", {"cost": 3}, format="json")
    assert response.status_code == 402
    assert response.json() == EXHAUSTED
    assert balance(org) == 2
    assert api.post("/test/charge/", {"cost": 2}, format="json").status_code == 201


def test_402_before_the_body_is_read_when_there_are_no_credits(api, org):
    drain_to(org, 0)
    response = api.generic("POST", "/test/charge/", "{not json", content_type="application/json")
    assert response.status_code == 402
    assert response.json() == EXHAUSTED


def test_identical_retries_are_charged_once_and_replayed(api, org):
    headers = {"HTTP_IDEMPOTENCY_KEY": "order-42"}
    first = api.post("/test/charge/", {"cost": 5}, format="json", **headers)
    second = api.post("/test/charge/", {"cost": 5}, format="json", **headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()  # the nonce proves it is the stored response
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert balance(org) == 4995
    assert LedgerEntry.objects.filter(kind=Kind.QUERY_CHARGE).count() == 1


def test_same_key_with_a_different_body_is_400(api, org):
    headers = {"HTTP_IDEMPOTENCY_KEY": "order-43"}
    assert api.post("/test/charge/", {"cost": 1}, format="json", **headers).status_code == 201
    response = api.post("/test/charge/", {"cost": 2}, format="json", **headers)
    assert response.status_code == 400
    assert "different request" in response.json()["detail"]
    assert balance(org) == 4999


def test_keys_are_per_organization(api, org, owner, make_org, make_key, key_client):
    other = make_org(owner, plan="starter", slug="other")
    _, raw = make_key(other)
    headers = {"HTTP_IDEMPOTENCY_KEY": "shared-name"}
    a = api.post("/test/charge/", {"cost": 1}, format="json", **headers)
    b = key_client(raw).post("/test/charge/", {"cost": 1}, format="json", **headers)
    assert a.status_code == b.status_code == 201
    assert a.json()["nonce"] != b.json()["nonce"]
    assert balance(org) == balance(other) == 4999


def test_a_failed_request_is_not_stored_so_the_retry_runs(org, make_key):
    from rest_framework.test import APIClient

    _, raw = make_key(org)
    api = APIClient(raise_request_exception=False)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_IDEMPOTENCY_KEY="retry-me")
    assert api.post("/test/charge/", {"cost": 1, "fail": True}, format="json").status_code == 500
    assert not IdempotencyRecord.objects.exists()


def test_an_error_response_is_stored_and_replayed(api, org):
    drain_to(org, 1)
    headers = {"HTTP_IDEMPOTENCY_KEY": "k-402"}
    first = api.post("/test/charge/", {"cost": 3}, format="json", **headers)
    assert first.status_code == 402
    second = api.post("/test/charge/", {"cost": 3}, format="json", **headers)
    assert second.status_code == 402 and second.json() == EXHAUSTED
    assert second.headers["Idempotent-Replayed"] == "true"


def test_an_overlong_key_is_400(api, org):
    response = api.post("/test/charge/", {"cost": 1}, format="json",
                        HTTP_IDEMPOTENCY_KEY="x" * 256)
    assert response.status_code == 400
    assert response.json()["detail"] == "Idempotency-Key: must be 1 to 255 characters."
    assert balance(org) == 5000


def test_records_expire_after_24_hours(api, org):
    headers = {"HTTP_IDEMPOTENCY_KEY": "daily"}
    api.post("/test/charge/", {"cost": 1}, format="json", **headers)
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        again = api.post("/test/charge/", {"cost": 1}, format="json", **headers)
        assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert balance(org) == 4998
    with time_machine.travel(timezone.now() + timedelta(hours=50)):
        assert idempotency_purge() == 1
    assert not IdempotencyRecord.objects.exists()


def _fingerprint(body: dict) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"POST /test/charge/\n{text}".encode()).hexdigest()


def _in_progress(org, key: str, body: dict, age: timedelta) -> None:
    with time_machine.travel(timezone.now() - age):
        IdempotencyRecord.objects.create(
            organization=org, key=key, method="POST", path="/test/charge/",
            request_hash=_fingerprint(body), expires_at=timezone.now() + timedelta(hours=24))


def test_a_running_duplicate_gets_409(api, org):
    _in_progress(org, "running", {"cost": 1}, timedelta(seconds=5))
    response = api.post("/test/charge/", {"cost": 1}, format="json",
                        HTTP_IDEMPOTENCY_KEY="running")
    assert response.status_code == 409
    assert "still in progress" in response.json()["detail"]
    assert balance(org) == 5000


def test_an_abandoned_in_progress_record_is_taken_over(api, org):
    _in_progress(org, "died", {"cost": 1}, timedelta(minutes=11))
    response = api.post("/test/charge/", {"cost": 1}, format="json", HTTP_IDEMPOTENCY_KEY="died")
    assert response.status_code == 201
    assert IdempotencyRecord.objects.get(key="died").state == "completed"
    assert balance(org) == 4999


def test_idempotency_purge_command(org):
    IdempotencyRecord.objects.create(organization=org, key="old", method="POST", path="/",
                                     request_hash="x",
                                     expires_at=timezone.now() - timedelta(seconds=1))
    call_command("idempotency_purge", stdout=__import__("io").StringIO())
    assert not IdempotencyRecord.objects.exists()
