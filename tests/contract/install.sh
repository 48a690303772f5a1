#!/usr/bin/env bash
# Installs the official Neon CLI (npm package neonctl, pinned in
# package.json) for the contract tests; does nothing when it is there.
set -euo pipefail
cd "$(dirname "$0")"
[ -x node_modules/.bin/neonctl ] && exit 0
command -v npm >/dev/null || { echo "the contract tests need npm (make deps installs it)" >&2; exit 1; }
echo "installing neonctl for the contract tests (npm)"
npm install --no-package-lock --no-audit --no-fund --loglevel=error >/dev/null
