#!/usr/bin/env bash
# Set up everything and run the whole test suite (SQLite by default; PostgreSQL when
# DATABASE_URL=postgres://...). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh --with-tests
# Tests run with DEBUG off, as in production, so they need a key: a throwaway one per run.
export SECRET_KEY="${SECRET_KEY:-test-$(python -c 'import secrets; print(secrets.token_urlsafe(48))')}"
exec python -m pytest "$@"
