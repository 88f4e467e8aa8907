"""Egret's emails: each one is three templates under `templates/emails/` (`<name>_subject.txt`,
`<name>.txt`, `<name>.html`) rendered with the same context and sent by a task.

A request only queues the task, with ids for arguments, once its transaction commits
(`email_later`); the task reads the rows, makes the link (a secret) and sends. So no link or
token is ever stored in the task queue (the database backend keeps a task's arguments and
shows them in admin), and no email is sent on a request's thread: the database backend runs
tasks in `db_worker`, and the immediate backend's task runs here in a thread of its own. A
request answers as fast whether an email goes out or not (a reset tells by its timing neither
that an account exists nor that the mail server is slow)."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connections, transaction
from django.template.loader import render_to_string
from django_tasks.base import Task
from django_tasks.backends.immediate import ImmediateBackend

THREAD_NAME = "egret-email"


def email_later(task: Task, *args: str) -> None:
    """Queues an email task after the current transaction commits. `args` are ids: they are
    stored with the task by the database backend."""
    transaction.on_commit(lambda: _enqueue(task, args))


def _enqueue(task: Task, args: tuple[str, ...]) -> None:
    if isinstance(task.get_backend(), ImmediateBackend):
        _in_background(task, args)
    else:
        task.enqueue(*args)


def _in_background(task: Task, args: tuple[str, ...]) -> None:
    """The immediate backend runs a task where it is enqueued: in a new thread, then, which is
    not a daemon so that a management command's email still goes out before the process
    exits. A failure is logged by django-tasks ("Task ... state=FAILED")."""

    def run() -> None:
        try:
            task.enqueue(*args)
        finally:
            connections.close_all()  # this thread's own database connections

    threading.Thread(target=run, name=THREAD_NAME).start()


def email_send(to: str, name: str, context: dict[str, Any]) -> None:
    """Renders and sends one email (plain text with an HTML alternative) now, through Django's
    email backend. Called by the tasks."""
    subject = " ".join(render_to_string(f"emails/{name}_subject.txt", context).split())
    text = render_to_string(f"emails/{name}.txt", context)
    html = render_to_string(f"emails/{name}.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [to])
    message.attach_alternative(html, "text/html")
    message.send()
