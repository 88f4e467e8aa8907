#!/usr/bin/env bash
# Set up everything and serve Egret on http://127.0.0.1:8000 with the embedded SQLite database,
# demo data and a freshly printed demo API key.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh --runtime
# Local, plain-HTTP use by default; production sets DEBUG=0 and a SECRET_KEY (see README).
export DEBUG="${DEBUG:-1}"
python manage.py migrate --noinput
python manage.py collectstatic --noinput --verbosity 0
python manage.py egret_demo
echo "Serving on http://${GUNICORN_BIND:-127.0.0.1:8000} (Ctrl-C to stop)"
exec gunicorn -c gunicorn.conf.py
