#!/usr/bin/env bash
# Installs the SDK contract test's tools from npm (Neon's TypeScript SDK, ajv,
# ajv-formats, yaml): exactly the versions package-lock.json pins, their
# dependencies included (npm ci). Does nothing, and needs no network, when
# node_modules already holds every one of them at its pinned version; a
# version changed in the lock file installs them again.
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null || { echo "the SDK contract test needs node (make deps installs it)" >&2; exit 1; }

# Every package of the lock file installed at its version: nothing to do.
installed_as_locked() {
    node -e '
        const fs = require("fs");
        const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
        for (const [path, entry] of Object.entries(lock.packages)) {
            if (!path || entry.optional) continue;
            let version = null;
            try { version = JSON.parse(fs.readFileSync(path + "/package.json", "utf8")).version; } catch {}
            if (version !== entry.version) process.exit(1);
        }' 2>/dev/null
}

installed_as_locked && exit 0
command -v npm >/dev/null || { echo "the SDK contract test needs npm (make deps installs it)" >&2; exit 1; }
echo "installing @neondatabase/api-client, ajv, ajv-formats and yaml for the SDK contract test (npm ci, as package-lock.json pins them)"
npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null
installed_as_locked || { echo "npm ci did not install what package-lock.json pins in $PWD/node_modules" >&2; exit 1; }
