from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"}}
    clean.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=clean,
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", DEBUG="0",
                    SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="api.example.com",
                    EGRET_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr


def test_secret_key_is_required_when_debug_is_off(tmp_path):
    result = manage("check", DEBUG="0", EGRET_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_embedded_default_generates_and_keeps_a_secret_key(tmp_path):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = manage("shell", "--no-imports", "-c", code, DEBUG="1", EGRET_VAR_DIR=str(tmp_path))
    second = manage("shell", "--no-imports", "-c", code, DEBUG="1", EGRET_VAR_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == second.stdout.strip()
    assert len(first.stdout.strip()) >= 50
    assert (tmp_path / "secret_key").read_text().strip() == first.stdout.strip()


def test_createsuperuser_noinput_works_with_email_and_password_only(tmp_path):
    env = dict(DEBUG="1", EGRET_VAR_DIR=str(tmp_path),
               DJANGO_SUPERUSER_EMAIL="Root@Example.com",
               DJANGO_SUPERUSER_PASSWORD="a-long-operator-password")
    assert manage("migrate", "-v0", **env).returncode == 0
    result = manage("createsuperuser", "--noinput", **env)
    assert result.returncode == 0, result.stderr
    check = manage("shell", "--no-imports", "-c",
                   "from core.models import User; u = User.objects.get(email='root@example.com');"
                   "print(u.is_superuser, u.check_password('a-long-operator-password'))", **env)
    assert check.stdout.strip() == "True True"


def test_sqlite_default_uses_wal_and_immediate_transactions(db, settings):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite options only apply to the embedded default")
    options = settings.DATABASES["default"]["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in options["init_command"]
