from __future__ import annotations

import io
import logging

import pytest


@pytest.fixture
def console_log():
    """What the configured `console` log handler (settings.LOGGING) writes, as text.

    The handler carries core.logging.RequestIDFilter and a formatter with
    `request_id=%(request_id)s`, so reading its output checks the real wiring."""
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
