#!/usr/bin/env bash
# `drctl drill accidental-deletion` (strategy restore, a writer of
# DRILL_WRITE_RATE writes a second on the copy, default 5) at two database
# sizes: the guide's schema generated at the scales DRILL_SCALES (default
# "340 3700": about 100 MB and 1 GB by pg_database_size), each size on its
# own neon-local. For each: the drill's RTO and each step's share, its RPO,
# the time its copy of the branch took to make, next to the bare PostgreSQL
# point-in-time recovery of the same data measured in the same run, the way
# bench/scenario.sh does it (bare_pitr in bench/neon_local_lib.sh:
# neon-local's base backup of the branch copied, its WAL replayed to an
# instant just before the drill, the server started and promoted). The
# ratio RTO / bare is printed with whether the goal (<= 1.2x) is met;
# nothing is asserted on times. One round per size: the 1 GB generation
# takes most of the time.
# DRILL_LOGS=DIR keeps each size's neon-local log (its lines timestamped)
# and the drill's JSON and journal in DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN_DIR=${DRCTL_BIN_DIR:-$PWD/bin}
SCALES=${DRILL_SCALES:-340 3700}
RATE=${DRILL_WRITE_RATE:-5}
GOAL=1.2
source bench/neon_local_lib.sh
bench_workdir drill

# As start_bench_neon_local, with each line neon-local logs timestamped
# (epoch seconds), to tell its phases apart.
start_drill_neon_local() {
    "$BIN_DIR/neon-local" --data "$work/nl" --listen 127.0.0.1:0 > "$work/nl.out" \
        2> >(while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done > "$work/nl.err") &
    NL_PID=$!
    for _ in $(seq 1 100); do grep -q http "$work/nl.out" 2>/dev/null && break; sleep 0.05; done
    URL=$(sed -n 's/^neon-local: //p' "$work/nl.out")
    KEY=$(cat "$work/nl/api-key")
    use_superuser_password
}
stop_drill_neon_local() {
    kill "$NL_PID" 2>/dev/null || true
    wait "$NL_PID" 2>/dev/null || true
    NL_PID=
}

COUNTS="select string_agg(t || '=' || n, ' ' order by t) from (
          select 'salon' t, count(*) n from salon union all select 'staff', count(*) from staff
          union all select 'client', count(*) from client union all select 'booking', count(*) from booking) c"
summary=()

drill_size() { # SCALE
    local scale=$1
    start_drill_neon_local
    bench_project
    echo "drill: generating the salons data at scale $scale..."
    psql "$uri" -Xq -f demo/schema.sql
    psql "$uri" -Xq -v scale="$scale" -f demo/generate.sql
    local bytes size counts at
    bytes=$(psql "$uri" -XAtc "select pg_database_size('neondb')")
    size=$(psql "$uri" -XAtc "select pg_size_pretty($bytes::bigint)")
    counts=$(psql "$uri" -XAtc "$COUNTS")
    sleep 2
    at=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    sleep 1
    # A commit after the instant: the replay stops at the first one past it.
    psql "$uri" -XAtc "select txid_current()" >/dev/null

    # The bare work: neon-local's own base backup and WAL archive of main,
    # replayed to the instant (the whole data generation, as in scenario.sh).
    bare_pitr "$uri" "$main" "$at" restore
    local bare_counts
    bare_counts=$(psql -h 127.0.0.1 -p "$bare_port" -U postgres -d neondb -XAtc "$COUNTS")
    bare_stop restore
    [ "$bare_counts" = "$counts" ] || { echo "the bare replay has $bare_counts, main has $counts"; exit 1; }

    mkdir "$work/run"
    local t0 wall rc=0
    t0=$(now)
    (cd "$work/run" && NEON_API_KEY=$KEY NEON_API_HOST=$URL NEON_PROJECT_ID=$project \
        DRCTL_OPERATOR="bench <bench@example.org>" "$BIN_DIR/drctl" --runbooks "$ROOT/runbooks" --json \
        drill accidental-deletion -p strategy=restore -p write_rate="$RATE" > "$work/drill.json" 2> "$work/drill.err") ||
        rc=$?
    wall=$(elapsed "$t0")
    if [ -n "${DRILL_LOGS:-}" ]; then
        mkdir -p "$DRILL_LOGS"
        cp "$work/nl.err" "$DRILL_LOGS/neon-local-$scale.log"
        cp "$work/drill.json" "$DRILL_LOGS/drill-$scale.json"
        cp "$work"/run/drctl-audit/runs/*/*/*/*/journal.jsonl "$DRILL_LOGS/journal-$scale.jsonl" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ]; then
        echo "the drill failed (exit $rc): $(jq -r '.message // empty' "$work/drill.json" 2>/dev/null)"
        tail -20 "$work/drill.err"
        exit 1
    fi

    local j="$work/drill.json" rto rpo copy shares rows pitr verdict writer
    rto=$(jq -r '.rto_seconds' "$j")
    rpo=$(jq -r '.rpo_seconds' "$j")
    copy=$(jq -r '.steps[] | select(.name == "copy") | .outputs.copy_seconds' "$j")
    shares=$(jq -r --argjson rto "$rto" \
        '[.rto_steps[] | "\(.step) \(.seconds * 10 | round / 10)s (\(.seconds / $rto * 100 | round)%)"] | join(", ")' "$j")
    rows=$(jq -r '.rpo_rows | to_entries | map("\(.key) \(.value)") | join(", ")' "$j")
    verdict=$(jq -r '.result' "$j")
    writer=$(jq -r 'select(.kind == "figure" and .data.label == "writer") | .data.value' \
        "$work"/run/drctl-audit/runs/*/*/*/*/journal.jsonl | tail -1)
    # neon-local's phases for the point-in-time branch of restore-point
    # (and for the drill's own probe of the copy's history, in prepare).
    local point probe
    point=$(jq -r '.steps[] | select(.name == "restore-point") | .outputs.point_id' "$j")
    pitr=$(sed -n "s/^[0-9.]* neon-local: branch $point: \(WAL archived.*\)\$/\1/p" "$work/nl.err")
    probe=$(grep -v "branch $point:" "$work/nl.err" | sed -n 's/^[0-9.]* neon-local: branch [^:]*: \(WAL archived.*\)$/\1/p' |
            paste -sd";" -) || true
    local r met
    r=$(ratio "$rto" "$bare")
    met=$(awk -v r="$r" -v g="$GOAL" 'BEGIN { print (r <= g ? "met" : "NOT met") }')
    printf 'drill accidental-deletion (restore, %s writes/s) on %s (scale %s): RTO %.1fs, bare base backup + WAL replay + start %ss; ratio %sx (goal <= %s: %s)\n' \
        "$RATE" "$size" "$scale" "$rto" "$bare" "$r" "$GOAL" "$met"
    printf '  RTO shares: %s\n  RPO %.3fs (rows lost: %s); copy made in %.1fs; drill %s, %ss end to end\n' \
        "$shares" "$rpo" "${rows:-none}" "$copy" "$verdict" "$wall"
    printf '  writer: %s\n  neon-local, the restore point: %s; the history probe (prepare): %s\n' "${writer:-?}" "${pitr:-?}" \
        "${probe:-none}"
    summary+=("$(printf '%-8s %-6s %8.1f %8s %7sx %-8s %9.3f %8.1f' "$size" "$scale" "$rto" "$bare" "$r" "$met" "$rpo" "$copy")")

    stop_drill_neon_local
    rm -rf "$work/nl" "$work/run" "$work"/bare-* "$work"/*.conf
}

for s in $SCALES; do drill_size "$s"; done
echo "drill summary (one round per size):"
printf '  %-8s %-6s %8s %8s %8s %-8s %9s %8s\n' size scale "RTO(s)" "bare(s)" ratio "goal" "RPO(s)" "copy(s)"
for l in "${summary[@]}"; do echo "  $l"; done
