#!/usr/bin/env bash
# Generates clients from the OpenAPI document with the generators integrators use and checks
# that they take it as it is (docs/openapi-clients.md): openapi-python-client and
# datamodel-code-generator (PyPI), openapi-typescript + openapi-fetch compiled with
# `tsc --strict` (npm). Needs the package indexes and Node.js 18+; installs everything in a
# throwaway directory (nothing is added to .venv or requirements). Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
work="${EGRET_CLIENTS_DIR:-$(mktemp -d)}"
echo "work directory: $work"
SECRET_KEY="${SECRET_KEY:-clients-check}" python manage.py spectacular --format openapi-json \
  --validate --fail-on-warn --file "$work/schema.json" 2>/dev/null

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet openapi-python-client datamodel-code-generator \
  email-validator ruff
(cd "$work" && PATH="$work/venv/bin:$PATH" openapi-python-client generate \
  --path schema.json --meta none --output-path egret_client --overwrite 2>&1 | tee generate.log)
if grep -q "Warning" "$work/generate.log"; then
  echo "openapi-python-client reported warnings" >&2
  exit 1
fi
# --strict-nullable: without it datamodel-code-generator ignores `nullable` on required fields.
"$work/venv/bin/datamodel-codegen" --input "$work/schema.json" --input-file-type openapi \
  --output "$work/models_datamodel.py" --output-model-type pydantic_v2.BaseModel \
  --strict-nullable --formatters builtin
"$work/venv/bin/python" scripts/clients/check_python.py "$work"

(cd "$work" && npm init -y >/dev/null && npm install --silent openapi-typescript@7 \
  openapi-fetch typescript@5)
cp scripts/clients/query.ts "$work/main.ts"
(cd "$work" && npx openapi-typescript schema.json -o egret.d.ts \
  && npx tsc --strict --noEmit --target es2022 --module esnext --moduleResolution bundler \
       --lib es2022,dom main.ts)
echo "typescript client: tsc --strict compiles scripts/clients/query.ts"
