"""Ledger entries of a query name the message they paid for: a settled charge names the
answer; an ungrounded answer (stored, not charged) is named by its charge and its refund; a
request whose answer was never stored leaves both without one. Read through the ledger API."""

from __future__ import annotations

import json
import uuid

import pytest

from assistant.models import Message
from assistant.providers.base import ProviderError
from assistant.providers.extractive import ExtractiveProvider
from billing import services as billing
from billing.models import LedgerEntry
from tests.assistant.conftest import ask


def query_entries(api) -> list[dict]:
    results = api.get("/v1/billings/ledger/").json()["results"]
    return [e for e in results if e["kind"] in ("query_charge", "refund")]


def test_a_settled_charge_names_the_answer_it_paid_for(api, org):
    body = ask(api).json()
    [charge] = query_entries(api)
    assert charge["kind"] == "query_charge" and charge["amount"] == -1
    assert charge["message_id"] == body["message_id"]
    assert charge["session_id"] == body["session_id"]
    answer = Message.objects.get(pk=charge["message_id"])
    assert answer.sender == "assistant" and answer.credits_used == 1


def test_a_streamed_answer_is_named_by_its_charge(api, org):
    response = ask(api, stream=True)
    events = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    done = events[-1]
    assert done["type"] == "done"
    [charge] = query_entries(api)
    assert charge["message_id"] == done["message_id"]


def test_an_ungrounded_answer_is_named_by_its_charge_and_its_refund(api, org):
    body = ask(api, query="What is the best recipe for chocolate cake with raspberries?").json()
    assert body["insufficient_context"] is True
    refund, charge = query_entries(api)
    assert (refund["kind"], refund["amount"], charge["kind"]) == ("refund", 1, "query_charge")
    assert refund["message_id"] == charge["message_id"] == body["message_id"]


def test_a_failed_request_names_no_message(api, org, monkeypatch):
    def broken(self, request):
        raise ProviderError("upstream failed")

    monkeypatch.setattr(ExtractiveProvider, "generate", broken)
    assert ask(api).status_code == 500
    refund, charge = query_entries(api)
    assert (refund["kind"], charge["kind"]) == ("refund", "query_charge")
    assert refund["message_id"] is None and charge["message_id"] is None
    assert not Message.objects.exists()


def test_a_higher_final_cost_names_the_message_on_both_charges(org):
    message_id = uuid.uuid4()
    reservation = billing.credits_reserve(org, 2, message_id=message_id)
    billing.credits_settle(reservation, final_cost=3, message_id=message_id)
    charges = LedgerEntry.objects.filter(reservation=reservation).order_by("id")
    assert [(e.kind, e.amount, e.message_id) for e in charges] == [
        ("query_charge", -2, message_id), ("query_charge", -1, message_id)]


@pytest.mark.parametrize("final_cost", [None, 1])
def test_the_charge_names_the_message_from_the_reservation_on(org, final_cost):
    message_id = uuid.uuid4()
    reservation = billing.credits_reserve(org, 2, message_id=message_id)
    charge = LedgerEntry.objects.get(reservation=reservation)
    assert (charge.amount, charge.message_id) == (-2, message_id)
    billing.credits_settle(reservation, final_cost=final_cost, message_id=message_id)
    entries = LedgerEntry.objects.filter(reservation=reservation)
    assert {e.message_id for e in entries} == {message_id}
    charge.refresh_from_db()
    assert charge.amount == -2


def test_a_refund_without_a_stored_answer_clears_the_planned_message(org):
    reservation = billing.credits_reserve(org, 2, message_id=uuid.uuid4())
    billing.credits_refund(reservation, memo="request failed")
    entries = LedgerEntry.objects.filter(reservation=reservation).order_by("id")
    assert [(e.kind, e.amount, e.message_id) for e in entries] == [
        ("query_charge", -2, None), ("refund", 2, None)]


def test_a_refund_of_a_stored_answer_keeps_the_message_on_both(org):
    message_id = uuid.uuid4()
    reservation = billing.credits_reserve(org, 2, message_id=message_id)
    billing.credits_refund(reservation, memo="insufficient context", message_id=message_id)
    entries = LedgerEntry.objects.filter(reservation=reservation)
    assert {e.message_id for e in entries} == {message_id}
