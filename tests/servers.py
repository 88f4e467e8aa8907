"""Real gunicorn processes for tests that need the whole HTTP stack (streaming, kill -9,
several app servers). Each `ServedApp` gets its own database: a SQLite file, or a fresh
PostgreSQL database when the tests run on PostgreSQL; it is migrated and loaded with the
demo data (`egret_demo`, which prints the demo API key)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServedApp:
    def __init__(self, tmp_path: Path, *, setup_code: str = "", workers: int | None = 1,
                 threads: int | None = 4, database_url: str | None = None, env: dict | None = None,
                 library: bool = True, collectstatic: bool = False,
                 root: Path = ROOT) -> None:
        self.tmp_path = tmp_path
        self.root = root  # the checkout whose code is served (benchmarks compare two)
        self.setup_code = setup_code
        self.workers, self.threads = workers, threads
        self.port = free_port()
        self.database_name: str | None = None
        self.database_url = database_url or self._new_database()
        self.extra_env = env or {}
        self.library = library
        self.collectstatic = collectstatic
        self.process: subprocess.Popen | None = None
        self.api_key = ""

    # --- database -----------------------------------------------------------------------
    def _new_database(self) -> str:
        if connection.vendor != "postgresql":
            return f"sqlite:///{self.tmp_path / 'served.sqlite3'}"
        db = settings.DATABASES["default"]
        self.database_name = f"egret_served_{uuid.uuid4().hex[:12]}"
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{self.database_name}"')
        host, port, user = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432, db["USER"]
        return f"postgres://{user}@{host}:{port}/{self.database_name}"

    def _drop_database(self) -> None:
        if self.database_name:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')

    # --- processes ----------------------------------------------------------------------
    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
        env.update({
            "DATABASE_URL": self.database_url, "SECRET_KEY": "served-" + "s" * 50,
            "DEBUG": "0", "SECURE_SSL_REDIRECT": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "EGRET_VAR_DIR": str(self.tmp_path / "var"), "LOG_LEVEL": "WARNING",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}", "GUNICORN_ACCESSLOG": "",
            "PYTHONUNBUFFERED": "1",
        })
        # None: gunicorn.conf.py's own defaults (the serving model as deployed).
        for name, value in (("GUNICORN_WORKERS", self.workers),
                            ("GUNICORN_THREADS", self.threads)):
            env.pop(name, None)
            if value is not None:
                env[name] = str(value)
        env.update(self.extra_env)
        return env

    def manage(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=self.root,
                                env=self.env(), capture_output=True, text=True, timeout=300)
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def prepare(self) -> None:
        self.manage("migrate", "--noinput", "-v", "0")
        if self.collectstatic:
            self.manage("collectstatic", "--noinput", "-v", "0")
        output = self.manage("egret_demo", *([] if self.library else ["--no-library"]))
        self.api_key = re.search(r"Demo API key:\s+(\S+)", output).group(1)
        if self.setup_code:
            self.manage("shell", "-c", self.setup_code)

    def start(self) -> None:
        self.log = open(self.tmp_path / f"gunicorn-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"], cwd=self.root,
            env=self.env(), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(self.logs())
            try:
                with urllib.request.urlopen(f"{self.url}/health/", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not become healthy:\n" + self.logs())

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def logs(self) -> str:
        return (self.tmp_path / f"gunicorn-{self.port}.log").read_text(errors="replace")[-5000:]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ServedApp":
        try:
            self.prepare()
            self.start()
        except BaseException:
            self.stop()
            self._drop_database()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self._drop_database()


class SMTPServer:
    """A real SMTP server (aiosmtpd) on a free local port, in a thread of the test process:
    Django's SMTP backend connects to it over TCP and speaks SMTP, and every message it
    accepts is kept, parsed, in `messages`."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd API)
        from email import message_from_bytes, policy

        message = message_from_bytes(envelope.content, policy=policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def __enter__(self) -> "SMTPServer":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
