"""Writes to accounts: password reset (API.md 14) and the set-password email of owners that
operators create. Links carry Django's token generator tokens: single use (the token hashes
the password, so it dies when the password changes), valid PASSWORD_RESET_TIMEOUT seconds."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.utils.timesince import timeuntil
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from core.emails import email_later, email_send
from core.exceptions import FieldError
from core.models import User, normalize_email

INVALID_TOKEN = "invalid or expired."


def _set_password_link(user: User) -> str:
    query = urlencode({"uid": urlsafe_base64_encode(force_bytes(user.pk)),
                       "token": default_token_generator.make_token(user)})
    return f"{settings.EGRET_PUBLIC_APP_URL}/reset?{query}"


def _link_context(user: User) -> dict:
    now = timezone.now()
    valid_for = timeuntil(now + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT), now)
    return {"email": user.email, "name": user.name, "link": _set_password_link(user),
            "valid_for": valid_for}


def password_reset_request(email: str) -> None:
    """Emails a reset link to an active account with that email; says nothing either way (the
    caller answers the same 202 whether or not the account exists)."""
    user = User.objects.filter(email=normalize_email(email), is_active=True).first()
    if user is not None:
        _account_email_later(user, "password_reset")


def password_set_invite(user: User, *, organization_name: str) -> None:
    """The email an owner created by an operator gets: the same one-time link as a reset."""
    _account_email_later(user, "set_password", organization_name)


def _account_email_later(user: User, kind: str, organization: str = "") -> None:
    from core.tasks import send_account_email  # the task module calls back into this one

    email_later(send_account_email, str(user.pk), kind, organization)


ACCOUNT_EMAILS = ("password_reset", "set_password")


def account_email_send(user_id: str, kind: str, organization: str = "") -> None:
    """Run by the task: makes the link and sends the email, unless the account was deactivated
    or deleted since it was asked for."""
    if kind not in ACCOUNT_EMAILS:
        raise ValueError(f"Unknown account email {kind!r}.")
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is not None:
        email_send(user.email, kind, {**_link_context(user), "organization": organization})


def _user_from_uid(uid: str) -> User | None:
    try:
        pk = force_str(urlsafe_base64_decode(uid))
        return User.objects.filter(pk=pk, is_active=True).first()
    except (ValueError, TypeError, OverflowError, DjangoValidationError):
        return None


def password_validate(password: str, user: User, field: str) -> None:
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        raise FieldError(field, " ".join(exc.messages)) from None


def password_reset_confirm(*, uid: str, token: str, new_password: str) -> User:
    """Sets the password, ends every session the user had (all refresh tokens blacklisted)
    and lifts a login lockout: the person proved they own the email."""
    user = _user_from_uid(uid)
    if user is None or not default_token_generator.check_token(user, token):
        raise FieldError("token", INVALID_TOKEN)
    password_validate(new_password, user, "new_password")
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        refresh_tokens_blacklist(user)
    login_unlock(user.email)
    return user


def refresh_tokens_blacklist(user: User) -> None:
    """Blacklists every outstanding refresh token of the user (rotation records each new one)."""
    tokens = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token=token) for token in tokens],
                                         ignore_conflicts=True)


def login_unlock(email: str) -> int:
    from axes.utils import reset

    return reset(username=normalize_email(email))


def login_succeeded(user: User) -> None:
    """What axes does on Django's `user_logged_in` signal (AXES_RESET_ON_SUCCESS), for the API
    login, which sends none: the account's failed attempts are forgotten."""
    if settings.AXES_RESET_ON_SUCCESS:
        login_unlock(user.email)
