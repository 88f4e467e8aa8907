"""A real HTTP receiver on 127.0.0.1 for the webhook tests, and helpers.

The receiver is Python's threaded http.server: every request is answered on a thread of its
own, recorded (path, headers, raw body), and answered as the test says (a status, a
redirect, or a hang until the test ends). Deliveries to it need
EGRET_WEBHOOKS_ALLOW_PRIVATE and EGRET_WEBHOOKS_ALLOW_HTTP, which `receiver` sets.
"""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field

import pytest

from tests.assistant.conftest import _media_in_tmp, library  # noqa: F401 (fixtures)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    hang: bool = False
    location: str = ""
    released: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
        return list(self.requests)


def _handler(receiver: Receiver):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with receiver.arrived:
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body,
                                                  time.monotonic()))
                receiver.arrived.notify_all()
            if receiver.hang and self.path.startswith("/hang"):
                receiver.released.wait(30)
                return
            self.send_response(receiver.status)
            if receiver.location:
                self.send_header("Location", receiver.location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    return Handler


@pytest.fixture
def receiver(settings):
    settings.EGRET_WEBHOOKS_ALLOW_PRIVATE = True
    settings.EGRET_WEBHOOKS_ALLOW_HTTP = True
    state = Receiver()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.released.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def manager(owner, org, jwt_client):
    return jwt_client(owner, org)


@pytest.fixture
def endpoint_for(manager):
    """Registers an endpoint through the API; returns its JSON (with `secret`)."""

    def create(url: str, events: list[str] | None = None) -> dict:
        response = manager.post("/v1/webhooks/", {"url": url, "events": events or ["*"]},
                                format="json")
        assert response.status_code == 201, response.json()
        return response.json()

    return create
