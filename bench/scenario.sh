#!/usr/bin/env bash
# The recovery time of accidental-deletion (strategy restore) on a large
# database (BENCH_SCALE, default 2500: about 1 GB), engine and API waits
# included, from `drctl run` to its end, next to the bare PostgreSQL work
# for the same restore measured in the same run: the base backup copied,
# WAL replayed to the same instant, the server started (and promoted).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN_DIR=${DRCTL_BIN_DIR:-$PWD/bin}
SCALE=${BENCH_SCALE:-2500}
source bench/neon_local_lib.sh
bench_workdir sc
start_bench_neon_local

bench_project
echo "scenario: generating the salons data at scale $SCALE..."
psql "$uri" -Xq -f demo/schema.sql
psql "$uri" -Xq -v scale="$SCALE" -f demo/generate.sql
size=$(psql "$uri" -XAtc "select pg_size_pretty(pg_database_size('neondb'))")
sleep 2
incident=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
psql "$uri" -Xqc 'delete from booking where "salonId" = 3'
sleep 2
restore_point=$(date -u -d "$(date -u -d "$incident" '+%Y-%m-%d %H:%M:%S.%N') UTC - 1 second" +%Y-%m-%dT%H:%M:%S.%6NZ)

# The bare work: neon-local's own base backup and WAL archive of main.
bare_pitr "$uri" "$main" "$restore_point" restore
lost=$(psql -h 127.0.0.1 -p "$bare_port" -U postgres -d neondb -XAtc 'select count(*) from booking where "salonId" = 3')
bare_stop restore

mkdir "$work/run"
t0=$(now)
(cd "$work/run" && NEON_API_KEY=$KEY NEON_API_HOST=$URL NEON_PROJECT_ID=$project \
    DRCTL_OPERATOR="bench <bench@example.org>" "$BIN_DIR/drctl" --runbooks "$ROOT/runbooks" \
    run accidental-deletion -p "incident_time=$incident" --approve apply >/dev/null 2>"$work/drctl.err") ||
    { tail -20 "$work/drctl.err"; exit 1; }
drctl_time=$(elapsed "$t0")
back=$(psql "$uri" -XAtc 'select count(*) from booking where "salonId" = 3')
[ "$back" = "$lost" ] || { echo "the runbook brought back $back bookings, the bare replay has $lost"; exit 1; }
steps=$(jq -r 'select(.kind == "step-done") | "\(.step) \(.data.duration_ms / 1000)s"' \
        "$work"/run/drctl-audit/runs/*/*/*/*/journal.jsonl | paste -sd, - | sed 's/,/, /g')
echo "accidental-deletion (restore) on $size: drctl ${drctl_time}s, bare base backup + WAL replay + start ${bare}s;" \
     "ratio $(ratio "$drctl_time" "$bare")x (goal <= 1.2); $lost bookings back; steps: $steps"
