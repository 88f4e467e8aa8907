"""With the immediate task backend (the default) an email was sent inside the request, and only
for existing accounts: a password reset answered in 0.1 s for an unknown email and in
EMAIL_TIMEOUT seconds for a real one when the mail server was slow. The task now runs in a
thread of its own after the commit, so the request answers at once in both cases.

These tests run on committed data (transaction=True): the email thread has its own database
connection, which cannot see a test's uncommitted rows."""

from __future__ import annotations

import socket
import threading
import time

import pytest

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

EMAIL_TIMEOUT = 3


class HangingMailServer:
    """Accepts connections and never says a word (an SMTP client waits for the greeting until
    its timeout)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connected = threading.Event()
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)
            self.connected.set()

    def close(self) -> None:
        self.listener.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def hanging_smtp(settings):
    server = HangingMailServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = EMAIL_TIMEOUT
    try:
        yield server
    finally:
        server.close()


def ask_reset(client, email: str) -> tuple[int, float]:
    started = time.monotonic()
    response = client.post("/auth/password/reset/", {"email": email}, format="json")
    return response.status_code, time.monotonic() - started


def test_a_reset_answers_at_once_while_the_mail_server_hangs(client, owner, hanging_smtp,
                                                             email_thread):
    status, seconds = ask_reset(client, "owner@example.com")

    assert status == 202
    assert seconds < EMAIL_TIMEOUT / 2
    assert hanging_smtp.connected.wait(EMAIL_TIMEOUT)  # the mail is attempted all the same
    email_thread.wait()


def test_known_and_unknown_emails_answer_alike_while_the_mail_server_hangs(
        client, owner, hanging_smtp, email_thread):
    known, known_seconds = ask_reset(client, "owner@example.com")
    unknown, unknown_seconds = ask_reset(client, "nobody@example.com")

    assert known == unknown == 202
    assert known_seconds < EMAIL_TIMEOUT / 2 and unknown_seconds < EMAIL_TIMEOUT / 2
    email_thread.wait()


def test_the_email_thread_delivers_the_reset_link(client, owner, smtp, email_thread):
    status, _ = ask_reset(client, "owner@example.com")
    email_thread.wait()

    assert status == 202
    (message,) = smtp.messages
    assert message["To"] == "owner@example.com"
    assert "/reset?uid=" in message.get_body(("plain",)).get_content()
    assert email_thread.names == ["egret-email"]  # not the request's thread
