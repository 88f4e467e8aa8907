"""System tests talk to real gunicorn instances over HTTP, each with its own database.

Their `ServedApp`s live in module-scoped fixtures (one instance serves a module's tests),
created outside any test transaction: on PostgreSQL, the test connection runs CREATE and
DROP DATABASE for them. Each test module carries `pytest.mark.django_db`, which also makes
pytest-django set the test database up."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def server_db(django_db_setup, django_db_blocker):
    """What `support.serving()` needs: the test database set up, and the blocker that lets
    a module-scoped fixture use its connection."""
    return django_db_blocker
