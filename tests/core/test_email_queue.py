"""With the database task backend a queued task's arguments are stored (DBTaskResult.args_kwargs)
and shown in admin: the emails that carry a secret (a password-reset or set-password link, an
invitation token) queue only ids, and the task makes the link when it sends."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-77"


@pytest.fixture
def database_queue(settings, monkeypatch):
    # django-tasks resets its backends when the TASKS setting changes (and back after).
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    # The worker recycles its connections between tasks; inside the test's transaction that
    # would close the connection holding the uncommitted test data.
    monkeypatch.setattr("django_tasks_db.management.commands.db_worker.close_old_connections",
                        lambda: None)


def link_of(message) -> str:
    return re.search(r"https?://\S+", message.get_body(("plain",)).get_content()).group(0)


def secrets_of(message) -> list[str]:
    link = link_of(message)
    return [link, *(values[0] for values in parse_qs(urlsplit(link).query).values())]


def test_queued_emails_hold_no_link_or_token_and_the_worker_makes_working_ones(
        database_queue, client, jwt_client, owner, org, smtp, sends):
    from django_tasks_db.models import DBTaskResult

    with sends():
        client.post("/auth/password/reset/", {"email": "owner@example.com"}, format="json")
        jwt_client(owner).post("/v1/orgs/acme/members/", {"email": "linus@example.com"},
                               format="json")
        call_command("org_create", "--name", "Globex", "--owner-email", "hank@globex.example")
    queued = json.dumps([row.args_kwargs for row in DBTaskResult.objects.all()])
    assert DBTaskResult.objects.count() == 3 and smtp.messages == []

    call_command("db_worker", "--batch", "--no-startup-delay")

    messages = {message["To"]: message for message in smtp.messages}
    assert sorted(messages) == ["hank@globex.example", "linus@example.com", "owner@example.com"]
    for message in messages.values():
        for secret in secrets_of(message):
            assert secret not in queued
    reset = parse_qs(urlsplit(link_of(messages["owner@example.com"])).query)
    assert client.post("/auth/password/reset/confirm/",
                       {"uid": reset["uid"][0], "token": reset["token"][0],
                        "new_password": NEW_PASSWORD}, format="json").status_code == 200
    invitation = parse_qs(urlsplit(link_of(messages["linus@example.com"])).query)
    assert client.post("/auth/invitations/accept/",
                       {"token": invitation["token"][0], "password": NEW_PASSWORD},
                       format="json").status_code == 200


def test_an_invitation_revoked_before_the_worker_runs_is_not_sent(database_queue, jwt_client,
                                                                 owner, org, smtp, sends):
    api = jwt_client(owner)
    with sends():
        invited = api.post("/v1/orgs/acme/members/", {"email": "linus@example.com"},
                           format="json")
    api.delete(f"/v1/orgs/acme/invitations/{invited.json()['invitation_id']}/")

    call_command("db_worker", "--batch", "--no-startup-delay")

    assert smtp.messages == []


def test_the_migration_forgets_rendered_emails_queued_by_earlier_versions(db):
    from importlib import import_module

    from django.apps import apps
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    migration = import_module("core.migrations.0002_forget_queued_rendered_emails")
    for path in ("core.tasks.send_email", "knowledge.tasks.ingest_document"):
        DBTaskResult.objects.create(task_path=path, backend_name="default",
                                    args_kwargs={"args": ["a link"], "kwargs": {}},
                                    run_after=timezone.now(), exception_class_path="",
                                    traceback="")

    migration.forget_rendered_emails(apps, None)

    assert list(DBTaskResult.objects.values_list("task_path", flat=True)) == [
        "knowledge.tasks.ingest_document"]
