"""A per-process memo for rows that are read on every query and changed by operators a few
times a year (AI models, domains, categories).

Entries live `TTL_SECONDS`. Saving or deleting a row of a watched model through the ORM
(admin, management commands, services) empties the memo of the process that did it at once;
other worker processes see the change within `TTL_SECONDS`. Values are shared between the
threads of a process and must be treated as read-only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.db.models.signals import post_delete, post_save

TTL_SECONDS = 5.0
T = TypeVar("T")

_entries: dict[tuple, tuple[float, object]] = {}
_lock = threading.Lock()
_clock = time.monotonic


def remembered(key: tuple, load: Callable[[], T]) -> T:
    """The value stored under `key` if it is younger than the TTL, else `load()` (stored
    unless it raises)."""
    now = _clock()
    entry = _entries.get(key)
    if entry is not None and now - entry[0] < TTL_SECONDS:
        return entry[1]  # type: ignore[return-value]
    value = load()
    with _lock:
        _entries[key] = (now, value)
    return value


def forget(*_args, **_kwargs) -> None:
    with _lock:
        _entries.clear()


def watch(*models) -> None:
    """Empty the memo whenever a row of one of `models` is saved or deleted."""
    for model in models:
        post_save.connect(forget, sender=model, dispatch_uid=f"lookups-save-{model._meta.label}")
        post_delete.connect(forget, sender=model,
                            dispatch_uid=f"lookups-delete-{model._meta.label}")
