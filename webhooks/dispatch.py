"""Starting a delivery run once a transaction that recorded events has committed.

With the database task backend (production), a `deliver_webhooks` task is queued for
`db_worker`. With the immediate backend (the embedded default), the run happens in one
background thread of this process, never in the request's: a run already going is asked to
go round once more instead of starting a second thread. Retries that come due later are
sent by the periodic `webhooks_deliver` command (README).
"""

from __future__ import annotations

import logging
import threading

from django.db import connections
from django_tasks.backends.immediate import ImmediateBackend

logger = logging.getLogger("egret.webhooks")
THREAD_NAME = "egret-webhooks"

_lock = threading.Lock()
_state = {"running": False, "again": False}


def kick() -> None:
    from webhooks.tasks import deliver_webhooks

    if isinstance(deliver_webhooks.get_backend(), ImmediateBackend):
        _in_background()
    else:
        deliver_webhooks.enqueue()


def _in_background() -> None:
    with _lock:
        if _state["running"]:
            _state["again"] = True
            return
        _state["running"], _state["again"] = True, False
    threading.Thread(target=_run, name=THREAD_NAME, daemon=True).start()


def _run() -> None:
    from webhooks.delivery import deliver_pending

    try:
        while True:
            try:
                deliver_pending()
            except Exception:
                logger.exception("Webhook delivery run failed")
            with _lock:
                if not _state["again"]:
                    _state["running"] = False
                    return
                _state["again"] = False
    finally:
        connections.close_all()  # this thread's own database connections
        with _lock:
            _state["running"] = False


def wait(timeout: float = 30) -> None:
    """Joins the background run (tests, benchmarks)."""
    for thread in threading.enumerate():
        if thread.name == THREAD_NAME:
            thread.join(timeout)
