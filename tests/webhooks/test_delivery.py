"""Deliveries to a real HTTP receiver on 127.0.0.1 (tests/webhooks/conftest.py): signatures,
rotation, retries on a moved clock, deactivation, redelivery, redirects, timeouts."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from webhooks import delivery, services, signing
from webhooks.models import Delivery, DeliveryAttempt, Endpoint

pytestmark = pytest.mark.django_db


def ping(manager, endpoint: dict) -> dict:
    response = manager.post(f"/v1/webhooks/{endpoint['id']}/test/")
    assert response.status_code == 202
    return response.json()


def ping_later(endpoint: dict) -> None:
    """A ping queued at a moved clock (the test's access token would have expired)."""
    services.endpoint_test(Endpoint.objects.get(pk=endpoint["id"]))


def signatures(header: str) -> list[str]:
    return [part[3:] for part in header.split(",") if part.startswith("v1=")]


def test_a_ping_arrives_signed(manager, receiver, endpoint_for):
    endpoint = endpoint_for(receiver.url())
    queued = ping(manager, endpoint)
    assert delivery.deliver_pending() == 1
    (received,) = receiver.requests
    body = json.loads(received.body)
    assert body == {"id": queued["event_id"], "type": "ping", "created_at": body["created_at"],
                    "organization": "acme",
                    "data": {"endpoint_id": endpoint["id"], "url": receiver.url()}}
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["Egret-Event-Id"] == queued["event_id"]
    header = received.headers["Egret-Signature"]
    assert signing.verify(header, received.body, endpoint["secret"], now=int(time.time()))
    assert not signing.verify(header, received.body + b" ", endpoint["secret"],
                              now=int(time.time()))
    assert not signing.verify(header, received.body, "whsec_" + "x" * 32, now=int(time.time()))
    assert len(signatures(header)) == 1
    stored = Delivery.objects.get(pk=queued["id"])
    assert (stored.status, stored.attempts, stored.last_status_code, stored.next_attempt_at) == (
        "succeeded", 1, 200, None)
    listed = manager.get(f"/v1/webhooks/{endpoint['id']}/deliveries/").json()["results"]
    assert (listed[0]["status"], listed[0]["attempts"]) == ("succeeded", 1)


def test_signature_is_the_hmac_of_timestamp_dot_body(manager, receiver, endpoint_for):
    import hashlib
    import hmac

    endpoint = endpoint_for(receiver.url())
    ping(manager, endpoint)
    delivery.deliver_pending()
    (received,) = receiver.requests
    timestamp, v1 = received.headers["Egret-Signature"].split(",")
    assert timestamp.startswith("t=") and abs(int(timestamp[2:]) - time.time()) < 60
    expected = hmac.new(endpoint["secret"].encode(), timestamp[2:].encode() + b"." +
                        received.body, hashlib.sha256).hexdigest()
    assert v1 == f"v1={expected}"


def test_two_signatures_during_a_rotation_then_one(manager, receiver, endpoint_for):
    endpoint = endpoint_for(receiver.url())
    new = manager.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret/").json()["secret"]
    ping(manager, endpoint)
    delivery.deliver_pending()
    header, body = receiver.requests[0].headers["Egret-Signature"], receiver.requests[0].body
    assert len(signatures(header)) == 2
    now = int(time.time())
    assert signing.verify(header, body, new, now=now)
    assert signing.verify(header, body, endpoint["secret"], now=now)
    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1)):
        ping_later(endpoint)
        delivery.deliver_pending()
        header, body = receiver.requests[1].headers["Egret-Signature"], receiver.requests[1].body
        now = int(time.time())
        assert len(signatures(header)) == 1
        assert signing.verify(header, body, new, now=now)
        assert not signing.verify(header, body, endpoint["secret"], now=now)


def test_retries_back_off_for_about_a_day_then_fail(manager, receiver, endpoint_for):
    receiver.status = 500
    endpoint = endpoint_for(receiver.url())
    queued = ping(manager, endpoint)
    start = timezone.now()
    waits = []
    with time_machine.travel(start, tick=False) as clock:
        delivery.deliver_pending()
        for _ in range(10):
            stored = Delivery.objects.get(pk=queued["id"])
            if stored.status != "pending":
                break
            waits.append(stored.next_attempt_at - timezone.now())
            clock.move_to(stored.next_attempt_at - timedelta(seconds=1))
            assert delivery.deliver_pending() == 0  # not due yet
            clock.move_to(stored.next_attempt_at)
            assert delivery.deliver_pending() == 1
        elapsed = timezone.now() - start
    assert [w.total_seconds() for w in waits] == [60, 240, 960, 3840, 15360, 61440]
    assert len(receiver.requests) == 7
    assert timedelta(hours=22) < elapsed < timedelta(hours=24)
    stored = Delivery.objects.get(pk=queued["id"])
    assert (stored.status, stored.attempts, stored.last_status_code, stored.last_error) == (
        "failed", 7, 500, "answered HTTP 500")
    assert list(DeliveryAttempt.objects.filter(delivery=stored).values_list(
        "number", flat=True)) == list(range(1, 8))
    # every attempt carries the same event id and body, freshly signed
    assert len({r.body for r in receiver.requests}) == 1
    assert len({r.headers["Egret-Event-Id"] for r in receiver.requests}) == 1


def test_a_receiver_that_recovers_gets_the_retry(manager, receiver, endpoint_for):
    receiver.status = 503
    endpoint = endpoint_for(receiver.url())
    queued = ping(manager, endpoint)
    delivery.deliver_pending()
    assert Endpoint.objects.get(pk=endpoint["id"]).failing_since is not None
    receiver.status = 204
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert delivery.deliver_pending() == 1
    stored = Delivery.objects.get(pk=queued["id"])
    assert (stored.status, stored.attempts, stored.last_status_code) == ("succeeded", 2, 204)
    assert Endpoint.objects.get(pk=endpoint["id"]).failing_since is None


def test_an_endpoint_failing_for_three_days_is_deactivated(manager, receiver, endpoint_for):
    receiver.status = 500
    endpoint = endpoint_for(receiver.url())
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        for day in range(4):
            clock.move_to(start + timedelta(days=day))
            if day < 3:
                ping_later(endpoint)
            delivery.deliver_pending()
            stored = Endpoint.objects.get(pk=endpoint["id"])
            assert stored.is_active == (day < 3), day
    assert stored.deactivated_at == start + timedelta(days=3)
    # what was still pending is given up, not sent
    sent = len(receiver.requests)
    with time_machine.travel(start + timedelta(days=5)):
        delivery.deliver_pending()
    assert len(receiver.requests) == sent
    assert not Delivery.objects.filter(status="pending").exists()


def test_redeliver_sends_a_failed_delivery_again(manager, receiver, endpoint_for):
    receiver.status = 410
    endpoint = endpoint_for(receiver.url())
    queued = ping(manager, endpoint)
    delivery.deliver_pending()
    Delivery.objects.filter(pk=queued["id"]).update(status="failed", next_attempt_at=None)
    receiver.status = 200
    response = manager.post(
        f"/v1/webhooks/{endpoint['id']}/deliveries/{queued['id']}/redeliver/")
    assert response.status_code == 202
    assert delivery.deliver_pending() == 1
    stored = Delivery.objects.get(pk=queued["id"])
    assert (stored.status, stored.attempts, stored.last_status_code) == ("succeeded", 2, 200)
    assert len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body


def test_redirects_are_not_followed(manager, receiver, endpoint_for):
    receiver.status, receiver.location = 302, receiver.url("/elsewhere")
    endpoint = endpoint_for(receiver.url())
    queued = ping(manager, endpoint)
    delivery.deliver_pending()
    assert [r.path for r in receiver.requests] == ["/hook"]
    stored = Delivery.objects.get(pk=queued["id"])
    assert (stored.status, stored.last_status_code, stored.last_error) == (
        "pending", 302, "answered HTTP 302")


def test_a_hanging_receiver_times_out_without_holding_up_the_others(
        manager, receiver, endpoint_for, settings):
    settings.EGRET_WEBHOOKS_TIMEOUT = 1.0
    receiver.hang = True
    hanging = endpoint_for(receiver.url("/hang"))
    healthy = [endpoint_for(receiver.url(f"/ok/{n}")) for n in range(3)]
    slow = ping(manager, hanging)
    fast = [ping(manager, endpoint) for endpoint in healthy]
    started = time.monotonic()
    assert delivery.deliver_pending() == 4
    took = time.monotonic() - started
    assert 1.0 <= took < 1.9  # in parallel: one timeout, not one per delivery
    stored = Delivery.objects.get(pk=slow["id"])
    assert (stored.status, stored.last_status_code, stored.last_error) == (
        "pending", None, "timed out after 1 seconds")
    assert all(Delivery.objects.get(pk=d["id"]).status == "succeeded" for d in fast)


def test_ssrf_names_and_literal_addresses_are_refused(manager, receiver, endpoint_for,
                                                     settings):
    endpoints = [endpoint_for(receiver.url()),
                 endpoint_for(f"http://localhost:{receiver.port}/hook")]
    settings.EGRET_WEBHOOKS_ALLOW_PRIVATE = False
    queued = [ping(manager, endpoint) for endpoint in endpoints]
    delivery.deliver_pending()
    assert receiver.requests == []
    literal, name = (Delivery.objects.get(pk=q["id"]) for q in queued)
    assert literal.last_error == ("refused: 127.0.0.1 is a loopback, private, link-local or "
                                  "multicast address.")
    assert name.last_error.startswith("refused: localhost resolves to ")
    assert (literal.status, name.status) == ("pending", "pending")


def test_the_readme_receiver_snippet_verifies_deliveries(manager, receiver, endpoint_for):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    snippet = re.search(r"```python\n(import hashlib, hmac, time\n.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # our own documented code
    verify = namespace["egret_signature_ok"]
    endpoint = endpoint_for(receiver.url())
    new = manager.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret/").json()["secret"]
    ping(manager, endpoint)
    delivery.deliver_pending()
    (received,) = receiver.requests
    header = received.headers["Egret-Signature"]
    assert verify(received.body, header, new) and verify(received.body, header, endpoint["secret"])
    assert not verify(received.body.replace(b"ping", b"pong"), header, new)
    assert not verify(received.body, header, "whsec_" + "0" * 32)
    assert not verify(received.body, header.replace("t=", "t=1"), new)
