#!/usr/bin/env bash
# Installs the SDK contract test's tools from npm (Neon's TypeScript SDK, ajv,
# ajv-formats, yaml; pinned in package.json); does nothing when they are there.
set -euo pipefail
cd "$(dirname "$0")"
if [ -f node_modules/@neondatabase/api-client/package.json ] && [ -f node_modules/ajv/package.json ] &&
   [ -f node_modules/ajv-formats/package.json ] && [ -f node_modules/yaml/package.json ]; then
    exit 0
fi
command -v npm >/dev/null || { echo "the SDK contract test needs npm (make deps installs it)" >&2; exit 1; }
echo "installing @neondatabase/api-client, ajv, ajv-formats and yaml for the SDK contract test (npm)"
npm install --no-package-lock --no-audit --no-fund --loglevel=error >/dev/null
