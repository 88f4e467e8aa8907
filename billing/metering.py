"""What paid endpoints use: a permission that answers 402 early when an organization has no
credits at all, and `metered()`, which reserves before the work and settles or refunds after.

Order of checks (API.md 1): a view validates its body, looks up what the body names and checks
domain/role permissions *before* entering `metered()`, so a 4xx never spends credits.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rest_framework.permissions import BasePermission

from billing import services
from billing.models import Reservation
from core.tenancy import Acting, acting_context


class HasCredits(BasePermission):
    """402 before the body is read when the balance is zero (the decision needs no body).
    The authoritative check is the conditional UPDATE in `credits_reserve`."""

    def has_permission(self, request, view) -> bool:
        organization = acting_context(request).organization
        services.ensure_current_period(organization)
        if organization.credit_account.balance <= 0:
            organization.credit_account.refresh_from_db(fields=["balance"])
            if organization.credit_account.balance <= 0:
                raise services.CreditsExhausted()
        return True


@contextmanager
def metered(acting: Acting, cost: int, **refs) -> Iterator[Reservation]:
    """Reserve `cost`; on an exception refund it, otherwise settle it (unless the body already
    settled or refunded, e.g. refunded an answer without grounded context)."""
    reservation = services.credits_reserve(
        acting.organization, cost, actor_user=acting.user, actor_api_key=acting.api_key, **refs)
    try:
        yield reservation
    except BaseException:
        if reservation.status == Reservation.Status.RESERVED:
            services.credits_refund(reservation, memo="request failed")
        raise
    if reservation.status == Reservation.Status.RESERVED:
        services.credits_settle(reservation)
