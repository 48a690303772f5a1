#!/usr/bin/env bash
# The runbook modules next to the bare tools, in the same run, on neon-local
# servers:
#   pg.copy of a 1,000,000-row table between two servers  vs
#       psql -c "\copy big to stdout" | psql -c "\copy big from stdin"
#   dump.pg_dump (custom format)   vs  bare pg_dump -Fc
#   dump.pg_restore                vs  bare pg_restore -d
# Each figure is the tool's own elapsed time (the module's as it reports it).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=${DRCTL_BIN_DIR:-$PWD/bin}
ROWS=${BENCH_COPY_ROWS:-1000000}
source bench/neon_local_lib.sh
bench_workdir mod

start_bench_neon_local
branch() { # NAME: prints "id uri"
    local r
    r=$(call POST "/projects/$project/branches" "{\"branch\":{\"name\":\"$1\"},\"endpoints\":[{\"type\":\"read_write\"}]}")
    wait_ops "$project" "$r"
    echo "$(echo "$r" | jq -r .branch.id) $(echo "$r" | jq -r '.connection_uris[0].connection_uri')"
}

bench_project
psql "$uri" -Xqc "CREATE TABLE big (id bigint PRIMARY KEY, payload text, at timestamptz)"
read -r dst dst_uri < <(branch copy-target)
echo "modules: $ROWS rows..."
psql "$uri" -Xqc "INSERT INTO big SELECT g, repeat(md5(g::text), 3), now() FROM generate_series(1, $ROWS) g"
size=$(psql "$uri" -XAtc "select pg_size_pretty(pg_total_relation_size('big'))")
mkdir "$work/run"
module() { # WHAT SRC DST FILE: the module's seconds
    (cd "$work/run" && rm -rf drctl-audit &&
     NEON_API_KEY=$KEY NEON_API_HOST=$URL DRCTL_OPERATOR="bench <bench@example.org>" \
        "$BIN_DIR/drctl" --runbooks "$OLDPWD/bench/runbooks" run bench-copy -p "what=$1" -p "src=$2" -p "dst=$3" \
        -p "file=$4" -p "folder=$work" >/dev/null 2>"$work/drctl.err") || { cat "$work/drctl.err" >&2; exit 1; }
    jq -r '.steps[0].outputs.seconds' "$work"/run/drctl-audit/runs/*/*/*/*/state.json
}
db_uri() { echo "$dst_uri" | sed -E "s#/neondb([?]|\$)#/$1\\1#"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Rounds alternate the bare tool and the module, so that both meet the same
# noise; the medians are compared.
ROUNDS=${BENCH_ROUNDS:-3}
bare_copies=() mod_copies=() bare_dumps=() mod_dumps=() bare_restores=() mod_restores=()
for round in $(seq 1 "$ROUNDS"); do
    t0=$(now)
    psql "$uri" -Xqc '\copy big to stdout' | psql "$dst_uri" -Xqc '\copy big from stdin'
    bare_copies+=("$(elapsed "$t0")")
    psql "$dst_uri" -Xqc "TRUNCATE big"
    mod_copies+=("$(module copy "$uri" "$dst_uri" x)")
    psql "$dst_uri" -Xqc "TRUNCATE big"
    t0=$(now)
    "$PGBIN/pg_dump" -Fc -f "$work/bare-$round.dump" "$uri"
    bare_dumps+=("$(elapsed "$t0")")
    mod_dumps+=("$(module dump "$uri" "$uri" "$work/exports/mod-$round.dump")")
    psql "$dst_uri" -Xq -c "CREATE DATABASE rb$round" -c "CREATE DATABASE rm$round"
    t0=$(now)
    "$PGBIN/pg_restore" --no-owner -d "$(db_uri "rb$round")" "$work/bare-$round.dump"
    bare_restores+=("$(elapsed "$t0")")
    mod_restores+=("$(module restore "$uri" "$(db_uri "rm$round")" "$work/bare-$round.dump")")
done
bare_copy=$(median "${bare_copies[@]}") mod_copy=$(median "${mod_copies[@]}")
bare_dump=$(median "${bare_dumps[@]}") mod_dump=$(median "${mod_dumps[@]}")
bare_restore=$(median "${bare_restores[@]}") mod_restore=$(median "${mod_restores[@]}")
echo "streaming copy of $ROWS rows ($size), medians of $ROUNDS: pg.copy ${mod_copy}s, psql \\copy | psql \\copy" \
     "${bare_copy}s; throughput ratio $(ratio "$bare_copy" "$mod_copy")x (goal >= 0.9)"
echo "dump: dump.pg_dump ${mod_dump}s, bare pg_dump -Fc ${bare_dump}s; ratio $(ratio "$bare_dump" "$mod_dump")x (goal >= 0.95)"
echo "restore: dump.pg_restore ${mod_restore}s, bare pg_restore ${bare_restore}s;" \
     "ratio $(ratio "$bare_restore" "$mod_restore")x (goal >= 0.95)"
