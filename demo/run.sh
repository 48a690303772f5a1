#!/usr/bin/env bash
# The demo: a real PostgreSQL 15 on 127.0.0.1, the guide's schema with data,
# then drctl runs the `drill` runbook: export, incident, confirmed restore,
# verification. On a terminal you type the challenge yourself; without one
# the demo pre-approves the restore with --approve (as CI would).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DRCTL=${DRCTL_BIN_DIR:-$ROOT/bin}/drctl
PGBIN=$(ls -d /usr/lib/postgresql/15/bin)
PORT=${DEMO_PORT:-55432}
WORK=$(mktemp -d /tmp/drctl-demo-XXXXXX)
chmod 755 "$WORK"
PGDATA=$WORK/pgdata

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop() {
    as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap stop EXIT

echo "== starting a throwaway PostgreSQL 15 on 127.0.0.1:$PORT"
mkdir -p "$PGDATA"
[ "$(id -u)" -eq 0 ] && chown postgres "$WORK" "$PGDATA"
as_postgres "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust >/dev/null
as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$PGDATA" start >/dev/null
psql -X -q -h 127.0.0.1 -p "$PORT" -U postgres -c "CREATE DATABASE salons"
psql -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d salons -f demo/seed.sql >/dev/null
echo "   seeded: 20 salons, 80 staff, 2000 clients, 10000 bookings"

export DRCTL_OPERATOR=${DRCTL_OPERATOR:-"demo operator <demo@example.org>"}
D=("$DRCTL" --runbooks demo/runbooks --audit "$WORK/audit")
PARAMS=(-p port="$PORT" -p dump="$WORK/salons.dump")

echo; echo "== drctl plan drill"
"${D[@]}" plan drill "${PARAMS[@]}"

echo; echo "== drctl run drill"
if [ -t 0 ] && [ -t 1 ]; then
    echo "   (the restore asks you to type the database name: salons)"
    "${D[@]}" run drill "${PARAMS[@]}" --run-id demo || true
else
    "${D[@]}" run drill "${PARAMS[@]}" --run-id demo --approve restore
fi

echo; echo "== drctl status demo"
"${D[@]}" status demo

echo; echo "== the audit trail: one git commit per transition (git log --oneline)"
git -C "$WORK/audit" log --format='%h %an: %s' | head -12
echo "   ... $(git -C "$WORK/audit" rev-list --count HEAD) commits in all"

echo; echo "== drctl audit verify"
"${D[@]}" audit verify

echo; echo "== the report an auditor reads (runs/demo/report.md, first lines)"
sed -n '1,40p' "$WORK/audit/runs/demo/report.md"
[ "$(jq -r .status "$WORK/audit/runs/demo/state.json")" = done ]
