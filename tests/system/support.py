"""Helpers for the system tests: raw HTTP against a served instance, SQL against the
instance's own database (not the test database), and starting/stopping `ServedApp`s from
tests that do not otherwise touch the test database."""

from __future__ import annotations

import http.client
import json
import os
import sqlite3
import uuid
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tests.servers import ServedApp

DEMO_SLUG = "demo"
DEMO_EMAIL = "demo@egret.local"
DEMO_PASSWORD = "egret-demo-password"
# A question the demo library answers (business-continuity / us): grounded, so it is charged.
QUESTION = {"query": "How often must the business impact analysis be reviewed and updated?",
            "domain": "business-continuity", "category": "us", "mode": "compliance"}


# `manage.py shell` code loading, of the demo library, only the documents of QUESTION's domain
# and category: enough for a grounded answer, in seconds (the whole library takes minutes to
# embed on a busy machine). For ServedApp(library=False, setup_code=QUESTION_LIBRARY + ...).
QUESTION_LIBRARY = """
import json
from knowledge.library import DEMO_LIBRARY, catalogue_load, library_document_add
from knowledge.models import Category, Domain
catalogue = json.loads((DEMO_LIBRARY / "catalogue.json").read_text())
catalogue_load(catalogue)
domain = Domain.objects.get(slug="%(domain)s")
category = Category.objects.get(domain=domain, code="%(category)s")
for item in catalogue["documents"]:
    if item["domain"] == domain.slug and item["category"] == category.code:
        library_document_add(DEMO_LIBRARY / item["path"], domain=domain, category=category,
                             title=item.get("title", ""))
""" % QUESTION


# --- HTTP ---------------------------------------------------------------------------------
@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def is_json_error(self) -> bool:
        """The error contract (API.md 1): a JSON object with a non-empty `detail` string."""
        if not self.headers.get("content-type", "").startswith("application/json"):
            return False
        try:
            body = self.json()
        except ValueError:
            return False
        return isinstance(body, dict) and isinstance(body.get("detail"), str) and bool(
            body["detail"])


def call(port: int, method: str, path: str, *, body: bytes | dict | None = None,
         headers: dict[str, str] | None = None, key: str | None = None,
         timeout: float = 60) -> Reply:
    """One request on a fresh connection. The body is sent in pieces; when the server answers
    early and closes (a refused upload), the answer it sent is still read."""
    headers = dict(headers or {})
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    if key:
        headers.setdefault("Authorization", f"Bearer {key}")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        if body is not None:
            headers.setdefault("Content-Length", str(len(body)))
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        if body:
            view = memoryview(body)
            try:
                for start in range(0, len(view), 1 << 20):
                    connection.sock.sendall(view[start:start + (1 << 20)])
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server stopped reading: its answer may already be waiting
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                     response.read())
    finally:
        connection.close()


def multipart(fields: dict[str, str], *, filename_header: str, content: bytes,
              content_type: str = "application/octet-stream") -> tuple[bytes, str]:
    """A multipart/form-data body with one file part whose Content-Disposition parameters
    are given verbatim (`filename_header`), so hostile file names reach the server as sent."""
    boundary = f"----egret-system-{uuid.uuid4().hex}"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                 f"{filename_header}\r\nContent-Type: {content_type}\r\n\r\n".encode()
                 + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def stream_lines(response: http.client.HTTPResponse) -> Iterator[dict]:
    while True:
        line = response.readline()
        if not line:
            return
        yield json.loads(line)


# --- the served instance's database ----------------------------------------------------------
class ServedDatabase:
    """Plain SQL on the served instance's database (SQLite file or PostgreSQL database).
    Write SQL with %s placeholders; ids are passed as uuid.UUID."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.sqlite = database_url.startswith("sqlite:")

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.sqlite:
            # Django keeps UUIDs in SQLite as 32 hex characters.
            params = tuple(p.hex if isinstance(p, uuid.UUID) else p for p in params)
            path = self.url.removeprefix("sqlite:///")
            with closing(sqlite3.connect(path, timeout=20)) as connection:
                return connection.execute(sql.replace("%s", "?"), params).fetchall()
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as connection:
            return connection.execute(sql, params).fetchall()

    def value(self, sql: str, params: tuple = ()):
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    # --- the demo organization's books ------------------------------------------------------
    ORG = "(SELECT id FROM organizations_organization WHERE slug = %s)"

    def balance(self, slug: str = DEMO_SLUG) -> int:
        return self.value(f"SELECT balance FROM billing_creditaccount "
                          f"WHERE organization_id = {self.ORG}", (slug,))

    def ledger_sum(self, slug: str = DEMO_SLUG) -> int:
        return self.value(f"SELECT COALESCE(SUM(amount), 0) FROM billing_ledgerentry "
                          f"WHERE organization_id = {self.ORG}", (slug,))

    def count(self, table: str, slug: str = DEMO_SLUG) -> int:
        return self.value(f"SELECT COUNT(*) FROM {table} WHERE organization_id = {self.ORG}",
                          (slug,))

    def snapshot(self, slug: str = DEMO_SLUG) -> dict:
        """Everything a refused request must leave as it was."""
        return {
            "balance": self.balance(slug),
            "ledger_entries": self.count("billing_ledgerentry", slug),
            "reservations": self.count("billing_reservation", slug),
            "documents": self.count("knowledge_document", slug),
            "sessions": self.count("assistant_chatsession", slug),
            "messages": self.value(
                f"SELECT COUNT(*) FROM assistant_message m JOIN assistant_chatsession s "
                f"ON s.id = m.session_id WHERE s.organization_id = {self.ORG}", (slug,)),
        }


# --- serving from tests that do not use the test database ----------------------------------
@contextmanager
def serving(django_db_blocker, tmp_path: Path, *, route=None, **kwargs) -> Iterator[ServedApp]:
    """`ServedApp` as a context manager for module-scoped fixtures: only creating and dropping
    its PostgreSQL database touch the test connection. `route(url) -> url` may send the
    instance to its database another way (through a proxy) once the database exists."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    with django_db_blocker.unblock():
        app = ServedApp(tmp_path, **kwargs)
    if route is not None:
        app.database_url = route(app.database_url)
    try:
        app.prepare()
        app.start()
        yield app
    finally:
        app.stop()
        with django_db_blocker.unblock():
            app._drop_database()


def worker_pids(master_pid: int) -> list[int]:
    """The gunicorn workers: the master's child processes (read from /proc)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its closing paren.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == master_pid:
            children.append(int(entry))
    return sorted(children)
