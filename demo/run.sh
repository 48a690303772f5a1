#!/usr/bin/env bash
# The demo: a rehearsal on neon-local, started by drctl itself (--local).
# A project with the guide's salons schema and generated data, a backup,
# then the incident of the guide's scenario 1 (one salon's bookings deleted
# by mistake) and its recovery with the accidental-deletion runbook: a
# point-in-time branch, the comparison, a typed confirmation, the restore
# in place. Then the git audit trail, its verification and the report.
# On a terminal you type the challenge yourself; without one the demo
# pre-approves the destructive step with --approve (as CI would).
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
approve() { [ -t 0 ] && [ -t 1 ] || echo "--approve $1"; }

echo "== a project on neon-local with the guide's schema (scale $SCALE)"
"${D[@]}" run salons-setup -p scale="$SCALE" -p sql="$ROOT/demo" --run-id setup
PROJECT=$(jq -r '.steps[0].outputs.id' "$WORK/audit/runs/setup/state.json")
export NEON_PROJECT_ID=$PROJECT
URL=$(cat .drctl/neon-local.url)
KEY=$(cat .drctl/neon-local/api-key)
URI=$(curl -s -H "Authorization: Bearer $KEY" \
    "$URL/projects/$PROJECT/connection_uri?database_name=neondb&role_name=neondb_owner" | jq -r .uri)

echo; echo "== drctl run snapshot (a backup branch, as the guide makes them)"
"${D[@]}" run snapshot --run-id backup

echo; echo "== the incident: salon 3's bookings deleted without a WHERE on the salon"
sleep 2
LOST=$(psql "$URI" -XAtc 'select count(*) from booking where "salonId" = 3')
INCIDENT=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
psql "$URI" -Xqc 'delete from booking where "salonId" = 3'
sleep 2
psql "$URI" -Xqc "insert into client (name, email) values ('Written after the incident', 'after@example.org')"
echo "   $LOST bookings deleted at $INCIDENT; a client written after it"

echo; echo "== drctl plan accidental-deletion"
"${D[@]}" plan accidental-deletion -p incident_time="$INCIDENT"

echo; echo "== drctl run accidental-deletion (restore in place; it asks you to type: main)"
# shellcheck disable=SC2046
"${D[@]}" run accidental-deletion -p incident_time="$INCIDENT" --run-id recovery $(approve apply) || true
echo "   salon 3's bookings on main now: $(psql "$URI" -XAtc 'select count(*) from booking where "salonId" = 3')" \
     "(were $LOST), same connection string"

echo; echo "== drctl status recovery"
"${D[@]}" status recovery

echo; echo "== the audit trail: one git commit per transition (git log --oneline)"
git -C "$WORK/audit" log --format='%h %an: %s' | head -12
echo "   ... $(git -C "$WORK/audit" rev-list --count HEAD) commits in all"

echo; echo "== drctl audit verify"
"${D[@]}" audit verify

echo; echo "== the report an auditor reads (runs/recovery/report.md)"
sed -n '1,45p' "$WORK/audit/runs/recovery/report.md"
[ "$(jq -r .status "$WORK/audit/runs/recovery/state.json")" = done ]
