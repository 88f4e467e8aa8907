from __future__ import annotations

import io
import json
import logging
import re

import pytest


@pytest.fixture
def console_log():
    """What the configured `console` log handler (settings.LOGGING) writes, as text.

    The handler carries core.logging.RequestIDFilter and a formatter that writes the id
    (`"request_id"` in JSON, `request_id=` in plain text), so reading its output checks the
    real wiring; `logged_request_id` reads it back from a line."""
    handlers = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    assert handlers, "settings.LOGGING no longer installs the 'console' handler on the root logger"
    handler = handlers[0]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        if previous is not None:
            handler.setStream(previous)


def logged_request_id(line: str) -> str | None:
    """The request id of one console line, in either LOG_FORMAT."""
    if line.startswith("{"):
        return json.loads(line).get("request_id")
    match = re.search(r"request_id=(\S+)", line)
    return match.group(1) if match else None
