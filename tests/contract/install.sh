#!/usr/bin/env bash
# Installs the test tools from npm: neonctl and s3rver (pinned in
# package.json), then the SDK contract test's (sdk/install.sh, as its lock
# file pins them). Each does nothing when its tools are there.
set -euo pipefail
cd "$(dirname "$0")"
if ! [ -x node_modules/.bin/neonctl ] || ! [ -x node_modules/.bin/s3rver ]; then
    command -v npm >/dev/null || { echo "the contract tests need npm (make deps installs it)" >&2; exit 1; }
    echo "installing neonctl and s3rver for the tests (npm)"
    npm install --no-package-lock --no-audit --no-fund --loglevel=error >/dev/null
fi
bash sdk/install.sh
