#!/usr/bin/env bash
# The demo: a DR drill on neon-local, started by drctl itself (--local).
# A project with the guide's salons schema and generated data, then
# `drctl drill accidental-deletion` on it: a copy of main, the incident on
# the copy (10% of the bookings deleted) while a writer keeps writing, the
# scenario's real runbook recovering the copy (restore in place), and the
# figures: RTO, RPO, every table checked against the copy just before the
# incident, everything the drill made deleted. main is never touched. Then
# the git audit trail, its verification, the drill history and the report.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${DRCTL_BIN_DIR:-$ROOT/bin}
SCALE=${DEMO_SCALE:-5}
WORK=$(mktemp -d /tmp/drctl-demo-XXXXXX)
chmod 755 "$WORK" # neon-local's PostgreSQL servers run as the postgres user

stop() {
    [ -f "$WORK/.drctl/neon-local.pid" ] && kill "$(cat "$WORK/.drctl/neon-local.pid")" 2>/dev/null &&
        for _ in $(seq 1 100); do kill -0 "$(cat "$WORK/.drctl/neon-local.pid")" 2>/dev/null || break; sleep 0.1; done
    rm -rf "$WORK"
}
trap stop EXIT
cd "$WORK"
unset NEON_API_KEY
export DRCTL_OPERATOR=${DRCTL_OPERATOR:-"demo operator <demo@example.org>"}
D=("$BIN/drctl" --local --runbooks "$ROOT/runbooks" --runbooks "$ROOT/demo/runbooks" --audit "$WORK/audit")

echo "== a project on neon-local with the guide's schema (scale $SCALE)"
"${D[@]}" run salons-setup -p scale="$SCALE" -p sql="$ROOT/demo" --run-id setup
PROJECT=$("${D[@]}" status setup --json | jq -r '.state.steps[0].outputs.id')
export NEON_PROJECT_ID=$PROJECT
URL=$(cat .drctl/neon-local.url)
KEY=$(cat .drctl/neon-local/api-key)
URI=$(curl -s -H "Authorization: Bearer $KEY" \
    "$URL/projects/$PROJECT/connection_uri?database_name=neondb&role_name=neondb_owner" | jq -r .uri)
BEFORE=$(psql "$URI" -XAtc 'select count(*) from booking')

echo; echo "== drctl drill accidental-deletion: on a copy of main, with 5 writes a second going on"
"${D[@]}" drill accidental-deletion -p write_rate=5 --run-id drill
echo "   main still has its $(psql "$URI" -XAtc 'select count(*) from booking') bookings (had $BEFORE):" \
     "the drill never touched it"

echo; echo "== drctl drill --history"
"${D[@]}" drill --history

echo; echo "== the audit trail: one git commit per transition (the 12 newest)"
git -C "$WORK/audit" log -12 --format='%h %an: %s'
echo "   ... $(git -C "$WORK/audit" rev-list --count HEAD) commits in all"

echo; echo "== drctl audit verify"
"${D[@]}" audit verify

DRILL_DIR=$(find "$WORK/audit/runs" -mindepth 4 -maxdepth 4 -type d -name drill)
echo; echo "== the report an auditor reads (${DRILL_DIR#"$WORK/audit/"}/report.md)"
cat "$DRILL_DIR/report.md"
[ "$("${D[@]}" status drill --json | jq -r .state.status)" = done ]
[ "$(psql "$URI" -XAtc 'select count(*) from booking')" = "$BEFORE" ]
