#!/usr/bin/env bash
# neon-local next to bare PostgreSQL, in the same run, on a pgbench database
# of scale 7 (about 100 MB):
#   branch at head      vs  pg_basebackup + configure + start
#   branch at an instant vs  copy of the base backup + WAL replay to it + start
#   restore in place    vs  the same replay, then the old server stopped and the
#                           restored one started again
# neon-local's times run from the API call to its operations finished, as a
# client sees them (polled every 20 ms).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=${DRCTL_BIN_DIR:-$PWD/bin}
SCALE=${BENCH_PGBENCH_SCALE:-7}
source bench/neon_local_lib.sh
bench_workdir nl
[ -n "${BENCH_KEEP_LOG:-}" ] && trap 'cp "$work/nl.err" /tmp/nl-bench.err; bench_cleanup' EXIT

start_bench_neon_local

bench_project
echo "neon-local: pgbench scale $SCALE..."
pgbench -q -i -s "$SCALE" "$uri" >/dev/null 2>&1
pgbench -T 3 "$uri" >/dev/null 2>&1
sleep 1
instant=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
sleep 1
pgbench -T 3 "$uri" >/dev/null 2>&1
size=$(psql "$uri" -XAtc "select pg_size_pretty(pg_database_size('neondb'))")

t0=$(now)
r=$(call POST "/projects/$project/branches" '{"branch":{"name":"at-head"},"endpoints":[{"type":"read_write"}]}')
wait_ops "$project" "$r"
nl_head=$(elapsed "$t0")

# A branch's own history backup runs in the background once it is ready and
# would delay the next job: let it finish, as a runbook's pace would.
sleep 3
t0=$(now)
r=$(call POST "/projects/$project/branches" "{\"branch\":{\"name\":\"at-instant\",\"parent_timestamp\":\"$instant\"},\"endpoints\":[{\"type\":\"read_write\"}]}")
wait_ops "$project" "$r"
nl_pitr=$(elapsed "$t0")

# The bare work, by hand, from the same server, backup and archive.
main_port=$(psql "$uri" -XAtc "show port")
bare_start() { # DATADIR PORT [extra settings]
    printf "port = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\narchive_mode = off\n%s" \
        "$2" "${3:-}" > "$work/auto.conf"
    cp "$work/auto.conf" "$1/postgresql.auto.conf" && chown postgres "$1/postgresql.auto.conf" 2>/dev/null || true
    as_pg "$PGBIN/pg_ctl" -D "$1" -w -l "$1.log" start >/dev/null
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }
[ "$(id -u)" -eq 0 ] && chown postgres "$work"
t0=$(now)
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$main_port" -U postgres -D "$work/bare-head" -X stream -c fast
bare_start "$work/bare-head" "$(free_port)"
bare_head=$(elapsed "$t0")

target="${instant/T/ }"
target="${target%Z}+00"
t0=$(now)
as_pg cp -a "$work/nl/pg/$main/base" "$work/bare-pitr"
as_pg touch "$work/bare-pitr/recovery.signal"
port=$(free_port)
bare_start "$work/bare-pitr" "$port" \
    "restore_command = 'cp $work/nl/pg/$main/wal/%f %p'
recovery_target_time = '$target'
recovery_target_action = 'promote'
"
until [ "$(psql -h 127.0.0.1 -p "$port" -U postgres -XAtc 'select pg_is_in_recovery()' 2>/dev/null)" = f ]; do sleep 0.02; done
bare_pitr=$(elapsed "$t0")
# A restore in place by hand is that replay, then the old server stopped and
# the restored one started again on its port (bare-head plays the old one).
t0=$(now)
as_pg "$PGBIN/pg_ctl" -D "$work/bare-head" -m fast -w stop >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$work/bare-pitr" -m fast -w stop >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$work/bare-pitr" -w -l "$work/bare-pitr.log" start >/dev/null
bare_restore=$(awk -v a="$bare_pitr" -v b="$(elapsed "$t0")" 'BEGIN { printf "%.2f", a + b }')

sleep 3
t0=$(now)
r=$(call POST "/projects/$project/branches/$main/restore" \
    "{\"source_branch_id\":\"$main\",\"source_timestamp\":\"$instant\",\"preserve_under_name\":\"main-before\"}")
wait_ops "$project" "$r"
nl_restore=$(elapsed "$t0")

echo "neon-local: database of $size"
printf "  %-22s neon-local %6ss   bare %6ss   %sx\n" "branch at head" "$nl_head" "$bare_head" "$(ratio "$nl_head" "$bare_head")"
printf "  %-22s neon-local %6ss   bare %6ss   %sx\n" "branch at an instant" "$nl_pitr" "$bare_pitr" "$(ratio "$nl_pitr" "$bare_pitr")"
printf "  %-22s neon-local %6ss   bare %6ss   %sx\n" "restore in place" "$nl_restore" "$bare_restore" "$(ratio "$nl_restore" "$bare_restore")"
echo "  goal: each <= 1.3x the bare work"
