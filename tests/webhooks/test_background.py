"""The embedded default (immediate task backend): deliveries run in a background thread of
the process, after the commit, never in the request's thread."""

from __future__ import annotations

import threading
import time

import pytest

from webhooks.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_ping_arrives_within_two_seconds(manager, receiver, endpoint_for, webhook_thread):
    endpoint = endpoint_for(receiver.url())
    started = time.monotonic()
    response = manager.post(f"/v1/webhooks/{endpoint['id']}/test/")
    assert response.status_code == 202
    (received,) = receiver.wait_for(1, timeout=2)
    assert received.at - started < 2
    webhook_thread.wait()
    assert Delivery.objects.get(pk=response.json()["id"]).status == "succeeded"


def test_a_hanging_receiver_does_not_hold_up_requests(manager, receiver, endpoint_for,
                                                      webhook_thread, settings):
    settings.EGRET_WEBHOOKS_TIMEOUT = 1.5
    receiver.hang = True
    endpoint = endpoint_for(receiver.url("/hang"))
    started = time.monotonic()
    response = manager.post(f"/v1/webhooks/{endpoint['id']}/test/")
    answered = time.monotonic() - started
    assert response.status_code == 202
    receiver.wait_for(1, timeout=5)  # the receiver holds the delivery now
    during = time.monotonic()
    assert manager.get("/v1/webhooks/").status_code == 200
    assert manager.get("/v1/events/").status_code == 200
    served = time.monotonic() - during
    assert [t.name for t in threading.enumerate() if t.name == "egret-webhooks"]
    assert answered < 1.0 and served < 1.0
    webhook_thread.wait()
    delivery = Delivery.objects.get(pk=response.json()["id"])
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        "pending", 1, "timed out after 1.5 seconds")
