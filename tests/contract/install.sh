#!/usr/bin/env bash
# Installs the test tools from npm (neonctl, s3rver; pinned in
# package.json); does nothing when they are there.
set -euo pipefail
cd "$(dirname "$0")"
[ -x node_modules/.bin/neonctl ] && [ -x node_modules/.bin/s3rver ] && exit 0
command -v npm >/dev/null || { echo "the contract tests need npm (make deps installs it)" >&2; exit 1; }
echo "installing neonctl and s3rver for the tests (npm)"
npm install --no-package-lock --no-audit --no-fund --loglevel=error >/dev/null
