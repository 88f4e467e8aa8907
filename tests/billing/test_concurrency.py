"""Credits under real concurrency (API.md 5.2): many threads, each with its own PostgreSQL
connection, race for the same credit account. No mocks: the guarantees under test are the
database's row locks and constraints.

PostgreSQL only (SQLite serializes writers, so it proves nothing here): every test is marked
`postgres` (skipped with a reason on SQLite by tests/conftest.py) and runs in a real
transaction (`transaction=True`) so the threads see each other's commits. The plans seeded by
migrations are restored after each test's flush (`serialized_rollback=True`).
"""

from __future__ import annotations

import io
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Sum
from django.utils import timezone
from rest_framework.test import APIClient

from billing import services
from billing.idempotency import IdempotencyConflict
from billing.models import CreditAccount, LedgerEntry, Reservation, Subscription
from organizations.models import Organization
from tests.billing import views

Kind = LedgerEntry.Kind
EXHAUSTED = {"detail": "Credit quota exhausted. Upgrade your plan or wait for your quota to reset."}
# PostgreSQL allows 100 connections; the test's own connection and the workers' stay well below.
WORKERS = 40

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(autouse=True)
def _accounts_agree_with_the_ledger(transactional_db):
    """After every race: each balance and period figure is what the ledger says
    (`billing_verify` raises CommandError on any difference)."""
    yield
    output = io.StringIO()
    call_command("billing_verify", stdout=output)
    assert output.getvalue().strip() == "Every account matches its ledger."


# --- Helpers ------------------------------------------------------------------------------------
def fresh(org_pk) -> Organization:
    """What a request loads: its own instance, with the subscription and plan."""
    return Organization.objects.select_related("subscription", "plan").get(pk=org_pk)


def balance(org) -> int:
    return CreditAccount.objects.get(organization=org).balance


def ledger_sum(org) -> int:
    return LedgerEntry.objects.filter(organization=org).aggregate(s=Sum("amount"))["s"] or 0


def set_balance(org, target: int) -> None:
    """An operator adjustment (a ledger entry, never a raw write) down or up to `target`."""
    delta = target - balance(org)
    if delta:
        services.credits_grant(fresh(org.pk), delta, kind=Kind.ADJUSTMENT, memo="test setup")
    assert balance(org) == target


def run_in_threads(tasks, *, workers: int = WORKERS, per_thread=None) -> list:
    """Run every `task(state)` on `workers` real threads that start together (a barrier after
    each has connected and built its `state = per_thread()`). Returns, in task order,
    ("ok", value) or ("error", exception). Each thread closes its connection when done."""
    pending: queue.SimpleQueue = queue.SimpleQueue()
    for index, task in enumerate(tasks):
        pending.put((index, task))
    results: list = [None] * len(tasks)
    workers = min(workers, len(tasks))
    start = threading.Barrier(workers)

    def worker() -> None:
        try:
            connection.ensure_connection()
            state = per_thread() if per_thread else None
            start.wait(timeout=60)
            while True:
                try:
                    index, task = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[index] = ("ok", task(state))
                except Exception as exc:  # recorded and asserted on by the test
                    results[index] = ("error", exc)
        except BaseException:
            start.abort()  # the others stop waiting at the start line
            raise
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(worker) for _ in range(workers)]:
            future.result(timeout=180)
    assert all(result is not None for result in results), "a task never ran"
    return results


def split(results, expected_error=services.CreditsExhausted):
    """(values of successes, indexes of expected failures); any other error fails the test."""
    unexpected = [value for kind, value in results
                  if kind == "error" and not isinstance(value, expected_error)]
    assert not unexpected, f"unexpected errors: {unexpected[:3]!r}"
    ok = [value for kind, value in results if kind == "ok"]
    failed = [i for i, (kind, _) in enumerate(results) if kind == "error"]
    return ok, failed


def assert_charges_serialized(org, reservations: list[Reservation], start: int) -> None:
    """One query_charge per reservation and nothing else; their balance_after values are all
    distinct and chain from `start` down (each charge saw the one before it)."""
    charges = list(LedgerEntry.objects.filter(organization=org, kind=Kind.QUERY_CHARGE))
    assert len(charges) == len(reservations)
    per_reservation = dict(LedgerEntry.objects.filter(organization=org, kind=Kind.QUERY_CHARGE)
                           .values_list("reservation_id").annotate(n=Count("id")))
    assert per_reservation == {r.pk: 1 for r in reservations}
    assert Reservation.objects.filter(organization=org).count() == len(reservations)
    by_reservation = {r.pk: r for r in reservations}
    for charge in charges:
        assert charge.amount == -by_reservation[charge.reservation_id].amount
    afters = [c.balance_after for c in charges]
    assert len(set(afters)) == len(afters), "two charges saw the same balance"
    previous = start
    for charge in sorted(charges, key=lambda c: -c.balance_after):
        assert charge.balance_after - charge.amount == previous, "a charge skipped the chain"
        previous = charge.balance_after


# --- a) 200 reservations of 1 credit against 50 -------------------------------------------------
def test_200_concurrent_reservations_against_50_credits(owner, make_org):
    org = make_org(owner, plan="free", slug="tiny")  # the free plan opens with 50 credits
    assert balance(org) == 50

    results = run_in_threads([lambda mine: services.credits_reserve(mine, 1)] * 200,
                             per_thread=lambda: fresh(org.pk))

    reservations, failed = split(results)
    assert (len(reservations), len(failed)) == (50, 150)
    assert all(isinstance(r, Reservation) and r.amount == 1 for r in reservations)
    assert balance(org) == 0
    assert ledger_sum(org) == 0
    assert_charges_serialized(org, reservations, start=50)
    assert sorted(LedgerEntry.objects.filter(organization=org, kind=Kind.QUERY_CHARGE)
                  .values_list("balance_after", flat=True)) == list(range(50))


# --- b) mixed costs ---------------------------------------------------------------------------
def test_mixed_costs_never_overspend_and_conserve_credits(owner, make_org):
    org = make_org(owner, plan="free", slug="mixed")
    assert balance(org) == 50
    costs = [1 if i % 2 == 0 else 3 for i in range(200)]

    results = run_in_threads(
        [lambda mine, cost=cost: services.credits_reserve(mine, cost) for cost in costs],
        per_thread=lambda: fresh(org.pk))

    reservations, failed = split(results)
    spent = sum(r.amount for r in reservations)
    final = balance(org)
    assert 0 <= final and spent <= 50
    assert final == 50 - spent
    assert ledger_sum(org) == final
    assert_charges_serialized(org, reservations, start=50)
    # Only charges move the balance here, so it only falls: a request refused at any moment
    # could not be covered then, and cannot be now.
    assert final < min(costs[i] for i in failed)
    # 100 one-credit requests for 50 credits: some were refused, so nothing is left unused.
    assert final == 0 and spent == 50


# --- c) the period rollover race ----------------------------------------------------------------
def test_50_concurrent_first_touches_roll_over_exactly_once(org):
    services.credits_reserve(fresh(org.pk), 7)  # something to expire: 4993 of 5000
    # The period ended yesterday: move the anchor (and the period) back by one month and a day.
    now = timezone.now()
    anchor = services.add_months(now - timedelta(days=1), -1)
    old_start, old_end = anchor, services.add_months(anchor, 1)
    Subscription.objects.filter(organization=org).update(
        anchor=anchor, current_period_start=old_start, current_period_end=old_end)
    CreditAccount.objects.filter(organization=org).update(period_start=old_start)
    LedgerEntry.objects.filter(organization=org).update(period_start=old_start)
    new_start, new_end = services.period_containing(anchor, now)
    assert old_end <= now and new_start == old_end

    # Each thread loads its own instance before the start line, so all 50 see the period over
    # and all 50 go for the rollover at once.
    def load():
        mine = fresh(org.pk)
        assert services.period_is_over(mine)
        return mine

    results = run_in_threads([lambda mine: services.ensure_current_period(mine)] * 50,
                             workers=50, per_thread=load)

    split(results, expected_error=())
    expiries = LedgerEntry.objects.filter(organization=org, kind=Kind.EXPIRY)
    grants = LedgerEntry.objects.filter(organization=org, kind=Kind.MONTHLY_GRANT,
                                        period_start=new_start)
    assert [(e.amount, e.balance_after, e.period_start) for e in expiries] == [
        (-4993, 0, old_start)]
    assert [(g.amount, g.balance_after) for g in grants] == [(5000, 5000)]
    assert LedgerEntry.objects.filter(organization=org).count() == 4  # grant, charge, +2
    assert balance(org) == 5000 == ledger_sum(org)
    subscription = Subscription.objects.get(organization=org)
    assert (subscription.current_period_start, subscription.current_period_end) == (
        new_start, new_end)
    assert CreditAccount.objects.get(organization=org).period_start == new_start


# --- d) the same race through HTTP --------------------------------------------------------------
@pytest.mark.urls("tests.billing.views")
def test_200_concurrent_paid_requests_against_50_credits(org, make_key):
    _, raw = make_key(org)
    set_balance(org, 50)

    def post(_):
        api = APIClient()  # one client per request, like separate callers
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        response = api.post("/test/charge/", {"cost": 1}, format="json")
        return response.status_code, response.json()

    results = run_in_threads([post] * 200)

    responses, _ = split(results, expected_error=())
    statuses = [status for status, _ in responses]
    assert statuses.count(201) == 50
    assert statuses.count(402) == 150
    assert len(statuses) == 200  # no other status
    assert all(body == EXHAUSTED for status, body in responses if status == 402)
    assert len({body["reservation_id"] for status, body in responses if status == 201}) == 50
    assert balance(org) == 0 == ledger_sum(org)
    assert LedgerEntry.objects.filter(organization=org, kind=Kind.QUERY_CHARGE).count() == 50
    assert not LedgerEntry.objects.filter(organization=org, kind=Kind.REFUND).exists()
    assert Reservation.objects.filter(organization=org,
                                      status=Reservation.Status.SETTLED).count() == 50


# --- e) idempotency under concurrency ----------------------------------------------------------
@pytest.fixture
def gate():
    """The test endpoint's `inside`/`release` events, reset around each test; released at the
    end whatever happened so no request stays blocked."""
    views.inside.clear()
    views.release.clear()
    yield views
    views.release.set()
    views.inside.clear()
    views.release.clear()


@pytest.mark.urls("tests.billing.views")
def test_a_duplicate_while_the_first_is_in_its_paid_section_is_409(org, make_key, gate):
    _, raw = make_key(org)
    body = {"cost": 1, "block": True}
    headers = {"HTTP_IDEMPOTENCY_KEY": "order-7"}

    def client() -> APIClient:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return api

    def first():
        try:
            return client().post("/test/charge/", body, format="json", **headers)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        a = pool.submit(first)
        assert gate.inside.wait(timeout=30), "request A never reached its paid section"
        # A holds a reservation (committed, no lock held) and its key is in progress.
        assert balance(org) == 4999
        b = client().post("/test/charge/", body, format="json", **headers)
        assert b.status_code == 409
        assert b["Content-Type"] == "application/json"
        assert b.json()["detail"] == str(IdempotencyConflict.default_detail)
        gate.release.set()
        a = a.result(timeout=30)

    assert a.status_code == 201
    assert LedgerEntry.objects.filter(organization=org, kind=Kind.QUERY_CHARGE).count() == 1
    assert balance(org) == 4999 == ledger_sum(org)
    # Once A is done, the same retry is answered from the stored response, not charged again.
    c = client().post("/test/charge/", body, format="json", **headers)
    assert c.status_code == 201 and c.json() == a.json()
    assert c.headers["Idempotent-Replayed"] == "true"
    assert LedgerEntry.objects.filter(organization=org, kind=Kind.QUERY_CHARGE).count() == 1


@pytest.mark.urls("tests.billing.views")
def test_a_stampede_of_one_idempotency_key_is_charged_once(org, make_key):
    _, raw = make_key(org)

    def post(_):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_IDEMPOTENCY_KEY="stampede")
        response = api.post("/test/charge/", {"cost": 2}, format="json")
        return response.status_code, response.json(), response.headers.get("Idempotent-Replayed")

    results = run_in_threads([post] * 30, workers=30)

    responses, _ = split(results, expected_error=())
    assert {status for status, _, _ in responses} <= {201, 409}
    created = [(body, replayed) for status, body, replayed in responses if status == 201]
    originals = [body for body, replayed in created if replayed is None]
    assert len(originals) == 1  # one request ran the paid section; the rest replayed or 409
    assert all(body == originals[0] for body, _ in created)
    assert all(body["detail"] == str(IdempotencyConflict.default_detail)
               for status, body, _ in responses if status == 409)
    assert LedgerEntry.objects.filter(organization=org, kind=Kind.QUERY_CHARGE).count() == 1
    assert balance(org) == 4998 == ledger_sum(org)
