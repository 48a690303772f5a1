#!/usr/bin/env bash
# Runs the SDK contract test: starts neon-local (from DRCTL_BIN_DIR, default
# ./bin; built beforehand, nothing is built here) on a fresh data folder, runs
# contract.mjs against it, stops it, removes the folder, and exits with the
# script's status (1 as well when neon-local does not exit cleanly).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin_dir=${DRCTL_BIN_DIR:-./bin}
neon_local=$(cd "$root" && cd "$bin_dir" 2>/dev/null && pwd)/neon-local
[ -x "$neon_local" ] || { echo "no neon-local at $bin_dir/neon-local: build it first (make)" >&2; exit 2; }
command -v node >/dev/null || { echo "the SDK contract test needs node (make deps installs it)" >&2; exit 2; }
bash "$here/install.sh" || exit 2

# The branches' PostgreSQL servers run as the postgres user when we are root:
# they must reach their folders.
work=$(mktemp -d "${TMPDIR:-/tmp}/drctl-sdk-contract-XXXXXX")
chmod 755 "$work"
pid=
stop() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        pid=
    fi
    rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT TERM

"$neon_local" --data "$work/nl" --listen 127.0.0.1:0 >"$work/nl.out" 2>"$work/nl.err" &
pid=$!
url=
for _ in $(seq 1 200); do
    url=$(sed -n 's/^neon-local: //p' "$work/nl.out" 2>/dev/null)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
if [ -z "$url" ]; then
    echo "neon-local did not print its ready line; its stderr:" >&2
    sed 's/^/  | /' "$work/nl.err" >&2
    exit 2
fi

NEON_LOCAL_URL=$url NEON_API_KEY=$(cat "$work/nl/api-key") node "$here/contract.mjs"
status=$?
# neon-local must stop cleanly too (a sanitizer build exits non-zero on a
# leak or an error it found while serving).
kill -TERM "$pid" 2>/dev/null
wait "$pid"
code=$?
pid=
if [ "$code" -ne 0 ]; then
    echo "FAIL neon-local exited with $code when stopped"
    [ "$status" -ne 0 ] || status=1
fi
# What neon-local said besides its request log, when something failed.
if [ "$status" -ne 0 ] && grep -qv -- ' -> [0-9]' "$work/nl.err"; then
    echo "--- neon-local's stderr, its request log left out (last lines):"
    grep -v -- ' -> [0-9]' "$work/nl.err" | tail -20 | sed 's/^/  | /'
fi
exit "$status"
