"""Egret's emails: each one is three templates under `templates/emails/` (`<name>_subject.txt`,
`<name>.txt`, `<name>.html`) rendered with the same context, then sent by a background task
(core/tasks.py) once the transaction that caused it has committed."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.template.loader import render_to_string


def email_send(to: str, name: str, context: dict[str, Any]) -> None:
    from core.tasks import send_email

    subject = " ".join(render_to_string(f"emails/{name}_subject.txt", context).split())
    text = render_to_string(f"emails/{name}.txt", context)
    html = render_to_string(f"emails/{name}.html", context)
    transaction.on_commit(lambda: send_email.enqueue(to, subject, text, html))
