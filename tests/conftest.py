from __future__ import annotations

import threading

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from core import emails, lookups
from core.models import User
from organizations import services as org_services
from organizations.models import Membership, Organization, Role
from tests import openapi_responses
from webhooks import delivery as webhook_delivery
from webhooks import dispatch as webhook_dispatch

PASSWORD = "correct-horse-battery-42"


@pytest.fixture(autouse=True)
def _plain_http(settings):
    """Tests speak plain HTTP to the app; tests/core/test_security.py covers the redirect."""
    settings.SECURE_SSL_REDIRECT = False


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters live in the cache, models and domains in core.lookups' memo; each
    test starts with neither (a rolled-back row must not be remembered)."""
    cache.clear()
    lookups.forget()
    yield
    cache.clear()
    lookups.forget()


def pytest_configure(config):
    """Every response the Django (and DRF) test client gets is checked against the OpenAPI
    document (tests/openapi_responses.py)."""
    if openapi_responses.ENABLED:
        Client.request = openapi_responses.checked(Client.request)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    openapi_responses.mismatches.clear()
    result = yield
    found = list(openapi_responses.mismatches)
    openapi_responses.mismatches.clear()
    if found:
        raise AssertionError("responses that break the OpenAPI document (/v1/schema/):\n"
                             + "\n".join(str(mismatch) for mismatch in found[:20]))
    return result


def pytest_collection_modifyitems(config, items):
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL to a postgres:// URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def smtp(settings):
    """Django's SMTP backend pointed at a real SMTP server started for the test; the server's
    `messages` are what it received."""
    from tests.servers import SMTPServer

    with SMTPServer() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        yield server


# Captured before any test replaces it (see _emails_in_the_test_thread).
_EMAIL_IN_BACKGROUND = emails._in_background


@pytest.fixture(autouse=True)
def _emails_in_the_test_thread(monkeypatch):
    """With the immediate task backend an email task runs in a thread of its own
    (core/emails.py), on a database connection of its own that cannot see a test's
    uncommitted rows: here it runs in the test's thread. The `email_thread` fixture gives a
    test the real thread (on committed data)."""
    monkeypatch.setattr(emails, "_in_background", lambda task, args: task.enqueue(*args))


# Captured before any test replaces it (see _webhooks_in_the_test_thread).
_WEBHOOKS_IN_BACKGROUND = webhook_dispatch._in_background


@pytest.fixture(autouse=True)
def _webhooks_in_the_test_thread(monkeypatch):
    """Like emails: with the immediate backend a webhook run goes to a thread of its own
    (webhooks/dispatch.py), which could still be reading when a transactional test flushes
    the database; here it runs in the thread that committed. `webhook_thread` gives a test
    the real thread."""
    monkeypatch.setattr(webhook_dispatch, "_in_background", webhook_delivery.deliver_pending)


@pytest.fixture
def webhook_thread(monkeypatch):
    monkeypatch.setattr(webhook_dispatch, "_in_background", _WEBHOOKS_IN_BACKGROUND)
    yield webhook_dispatch
    webhook_dispatch.wait()


class EmailThreads:
    def __init__(self) -> None:
        self.names: list[str] = []  # the threads the tasks ran in

    def task_started(self, sender, task_result, **kwargs) -> None:
        self.names.append(threading.current_thread().name)

    @staticmethod
    def wait(timeout: float = 30) -> None:
        for thread in threading.enumerate():
            if thread.name == emails.THREAD_NAME:
                thread.join(timeout)


@pytest.fixture
def email_thread(monkeypatch):
    """The immediate backend's email thread, for real; `wait()` joins it."""
    from django_tasks.signals import task_started

    monkeypatch.setattr(emails, "_in_background", _EMAIL_IN_BACKGROUND)
    threads = EmailThreads()
    task_started.connect(threads.task_started)
    try:
        yield threads
    finally:
        threads.wait()
        task_started.disconnect(threads.task_started)


@pytest.fixture
def sends(django_capture_on_commit_callbacks):
    """Runs what a block queued for after its commit (emails are sent then): the test's
    transaction never commits."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_user(db):
    counter = {"n": 0}

    def make(email: str | None = None, password: str = PASSWORD, **extra) -> User:
        counter["n"] += 1
        email = email or f"user{counter['n']}@example.com"
        return User.objects.create_user(email, password, **extra)

    return make


@pytest.fixture
def make_org(db):
    def make(owner: User, *, plan: str = "starter", name: str = "Acme", slug: str | None = None
             ) -> Organization:
        return org_services.organization_create(owner=owner, name=name, slug=slug,
                                                plan_slug=plan)

    return make


@pytest.fixture
def add_member(db):
    def add(org: Organization, user: User, role: str = Role.MEMBER) -> Membership:
        return Membership.objects.create(organization=org, user=user, role=role)

    return add


def access_token(user: User) -> str:
    return str(RefreshToken.for_user(user).access_token)


@pytest.fixture
def jwt_client():
    """An APIClient authenticated as `user` (optionally acting in `org` via X-Organization)."""

    def build(user: User, org: Organization | None = None) -> APIClient:
        api = APIClient()
        headers = {"HTTP_AUTHORIZATION": f"Bearer {access_token(user)}"}
        if org is not None:
            headers["HTTP_X_ORGANIZATION"] = org.slug
        api.credentials(**headers)
        return api

    return build


@pytest.fixture
def make_key(db):
    """Creates an API key in `org` and returns (key, raw)."""

    def make(org: Organization, name: str = "ci", **kwargs):
        return org_services.api_key_create(org, name=name, created_by=None, enforce_plan=False,
                                           **kwargs)

    return make


@pytest.fixture
def key_client():
    def build(raw: str) -> APIClient:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return api

    return build


@pytest.fixture
def staff(db):
    """A browser logged into Django admin as a superuser."""
    from django.test import Client

    browser = Client()
    browser.force_login(User.objects.create_superuser("root@example.com",
                                                      "a-long-operator-password"))
    return browser


@pytest.fixture
def owner(make_user):
    return make_user("owner@example.com", name="Olivia Owner")


@pytest.fixture
def org(owner, make_org):
    return make_org(owner, plan="starter", name="Acme", slug="acme")
