# Shared by the benchmarks that run on neon-local (sourced, with $BIN_DIR
# set): a work folder cleaned up on exit, timing helpers, neon-local
# started in it, its API.
PGBIN=/usr/lib/postgresql/15/bin
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# A folder the postgres user can reach (sets work); on exit neon-local and
# any bare server in $work/bare-* are stopped and the folder removed.
bench_workdir() { # NAME
    work=$(mktemp -d "/tmp/drctl-bench-$1-XXXXXX")
    chmod 755 "$work"
    trap bench_cleanup EXIT
}
bench_cleanup() {
    set +e # every part of the cleanup runs, whatever the one before said
    [ -n "${NL_PID:-}" ] && kill "$NL_PID" 2>/dev/null && wait "$NL_PID" 2>/dev/null
    # BENCH_LOGS=DIR keeps neon-local's log (where its jobs' time goes).
    [ -n "${BENCH_LOGS:-}" ] && mkdir -p "$BENCH_LOGS" && cp "$work/nl.err" "$BENCH_LOGS/neon-local-$(basename "$work").log"
    for d in "$work"/bare-*; do [ -d "$d" ] && as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1; done
    rm -rf "$work"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# Starts neon-local in $work/nl; sets NL_PID, URL, KEY.
start_bench_neon_local() {
    "$BIN_DIR/neon-local" --data "$work/nl" --listen 127.0.0.1:0 > "$work/nl.out" 2> "$work/nl.err" &
    NL_PID=$!
    for _ in $(seq 1 100); do grep -q http "$work/nl.out" 2>/dev/null && break; sleep 0.05; done
    URL=$(sed -n 's/^neon-local: //p' "$work/nl.out")
    KEY=$(cat "$work/nl/api-key")
    use_superuser_password
}

# neon-local's servers, and the bare ones made from its base backups, take
# postgres with its password only (in $work/nl/superuser-password): a pgpass
# file gives it to psql and pg_basebackup, as root and as the postgres user
# (as_pg), without putting it in any command line. It serves user postgres
# only: the roles' connection strings carry their own passwords.
use_superuser_password() {
    local pgpass="$work/superuser.pgpass"
    (umask 077; printf '127.0.0.1:*:*:postgres:%s\n' "$(cat "$work/nl/superuser-password")" > "$pgpass")
    [ "$(id -u)" -eq 0 ] && chown postgres "$pgpass"
    export PGPASSFILE=$pgpass
}

call() { curl -s -X "$1" -H "Authorization: Bearer $KEY" ${3:+-d "$3"} "$URL$2"; }

# Waits for the operations listed in an API answer (polled every 20 ms).
wait_ops() { # PROJECT JSON
    for op in $(echo "$2" | jq -r '.operations[].id'); do
        while [ "$(call GET "/projects/$1/operations/$op" | jq -r .operation.status)" = running ]; do sleep 0.02; done
    done
}

# A project on it, ready; sets project, main (its branch id) and uri.
bench_project() {
    local created
    created=$(call POST /projects '{"project":{"name":"bench"}}')
    project=$(echo "$created" | jq -r .project.id)
    main=$(echo "$created" | jq -r .branch.id)
    wait_ops "$project" "$created"
    uri=$(echo "$created" | jq -r '.connection_uris[0].connection_uri')
}

# The bare PostgreSQL work of a point-in-time branch, by hand, on
# neon-local's own files for BRANCH (its base backup and WAL archive in
# $work/nl/pg/BRANCH): its WAL archived up to now (through URI's server,
# as neon-local's superuser, with its password (use_superuser_password),
# as neon-local makes sure of it too), then, timed, the base copied to
# $work/bare-NAME, WAL replayed to AT (RFC 3339, UTC) and the server
# started and promoted. Sets bare (seconds) and bare_port; the server is
# left running for queries (bare_stop NAME; the cleanup stops it too).
bare_pitr() { # URI BRANCH AT NAME
    local target="${3/T/ }" branch_port t0
    target="${target%Z}+00"
    [ "$(id -u)" -eq 0 ] && chown postgres "$work"
    branch_port=$(psql "$1" -XAtc "show port")
    psql -h 127.0.0.1 -p "$branch_port" -U postgres -d neondb -XAtc "select pg_switch_wal()" >/dev/null
    sleep 3
    t0=$(now)
    as_pg cp -a "$work/nl/pg/$2/base" "$work/bare-$4"
    as_pg touch "$work/bare-$4/recovery.signal"
    bare_port=$((20000 + RANDOM % 20000))
    printf "port = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\narchive_mode = off\nrestore_command = 'cp %s/nl/pg/%s/wal/%%f %%p'\nrecovery_target_time = '%s'\nrecovery_target_action = 'promote'\n" \
        "$bare_port" "$work" "$2" "$target" > "$work/$4.conf"
    as_pg cp "$work/$4.conf" "$work/bare-$4/postgresql.auto.conf"
    as_pg "$PGBIN/pg_ctl" -D "$work/bare-$4" -w -l "$work/bare-$4.log" start >/dev/null
    until [ "$(psql -h 127.0.0.1 -p "$bare_port" -U postgres -XAtc 'select pg_is_in_recovery()' 2>/dev/null)" = f ]; do sleep 0.05; done
    bare=$(elapsed "$t0")
}
bare_stop() { as_pg "$PGBIN/pg_ctl" -D "$work/bare-$1" -m fast -w stop >/dev/null; } # NAME
