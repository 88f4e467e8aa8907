"""Writes on sessions outside the query pipeline (which lives in pipeline.py)."""

from __future__ import annotations

from datetime import datetime

from assistant.models import ChatSession, Message


def session_rename(session: ChatSession, title: str) -> ChatSession:
    session.title = title.strip() or session.title
    ChatSession.objects.filter(pk=session.pk).update(title=session.title)
    return session


def session_delete(session: ChatSession) -> None:
    """Messages go with the session; the ledger keeps its entries (they hold only ids)."""
    session.delete()


def session_markdown(session: ChatSession, messages: list[Message], stamp: datetime) -> str:
    lines = [f"# {session.title}", "",
             f"*{session.domain.name} · {session.category.name} · exported "
             f"{stamp:%Y-%m-%d %H:%M} UTC · {len(messages)} messages*", ""]
    for message in messages:
        who = "Question" if message.sender == Message.Sender.USER else "Answer"
        lines += [f"## {who} ({message.created_at:%Y-%m-%d %H:%M} UTC)", "",
                  message.content.strip(), ""]
        if message.sources:
            lines.append("**Sources**")
            lines.append("")
            for number, source in enumerate(message.sources, start=1):
                where = " — ".join(filter(None, [source.get("title"), source.get("section")]))
                page = f", page {source['page']}" if source.get("page") else ""
                lines.append(f"{number}. {where}{page} ({source.get('filename', '')})")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
