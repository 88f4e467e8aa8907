"""Compact values for admin lists, so their tables fit a 1,280-pixel screen."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_time(value: datetime | None, *, seconds: bool = False) -> str:
    """`2026-03-20 14:12` (or `14:12:31`) in UTC; an em dash for none."""
    if value is None:
        return "—"
    return value.astimezone(timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def short_text(value: str, limit: int = 48) -> str:
    value = " ".join((value or "").split())
    return value if len(value) <= limit else value[:limit - 1].rstrip() + "…"


def file_size(size: int | None) -> str:
    if size is None:
        return "—"
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
