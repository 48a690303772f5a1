# The runs the crash harness kills (tests/crash/crash.sh): one case per
# scenario runbook and variant, plus drill and undo. Each case has
#   case_NAME_setup  a fresh neon-local and project in the current
#                    directory, in the state the run expects;
#   case_NAME_run    the run itself, with the approvals a scheduled run
#                    would have (through "$CRASH_DRCTL", output in out/err);
#   case_NAME_state  what the run must leave, printed, the same however
#                    often it was killed: rows, branches, files.
# The helpers (salons_project, branch_names, uri_of_branch...) are the
# end-to-end tests' (tests/e2e/98-scenarios.sh and its neighbours).

CRASH_CASES=(accidental-deletion accidental-deletion-promote accidental-deletion-reinsert snapshot retention
             verify-backup verify-backup-snapshot export total-loss corruption deleted undo drill)

# drctl with the shipped runbooks, built with the kill hook.
crash_dr() {
    set +e
    "$CRASH_DRCTL" --runbooks "$SCENARIOS" "$@" >out 2>err </dev/null
    rc=$?
    set -e
}

# The incident of 98-scenarios with fixed values, so that two projects
# end with the same rows (created_at, filled by now(), is left out of the
# checksums).
crash_incident() {
    sleep 1.2
    incident=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    psql "$uri" -Xqc 'delete from booking where "salonId" = 3'
    sleep 1.2
    psql "$uri" -Xq -c "insert into client (id, name, email) values (9001, 'After', 'after@example.org')" \
        -c "insert into booking (id, \"salonId\", \"clientId\", service, price, starts_at)
            values (90001, 1, 9001, 'coupe', 30, '2026-01-11 15:00:00+00')"
}

# Every table's rows in the database at URI, as one checksum a table
# (columns filled by now() left out).
table_checksums() { # URI
    local t cols
    for t in $(psql "$1" -XAtc "select tablename from pg_tables where schemaname = 'public' order by 1"); do
        cols=$(psql "$1" -XAtc "select string_agg(quote_ident(column_name), ',' order by ordinal_position)
                               from information_schema.columns where table_schema = 'public'
                               and table_name = '$t' and column_name <> 'created_at'")
        printf '%s:%s ' "$t" "$(psql "$1" -XAtc "select count(*) || '/' || md5(coalesce(string_agg(r::text, E'\n'
                                   order by r::text), '')) from (select $cols from \"$t\") r")"
    done
}

# Names with the run ids and instants in them made comparable.
normalized() {
    sed -E -e 's/[0-9]{8}t[0-9]{6}z-[a-z0-9-]+-[0-9a-f]{4}/RUN/gI' -e 's/[0-9]{4}-?[0-9]{2}-?[0-9]{2}t[0-9:.-]*z?/TIME/gI' \
        -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{6}/TIME/g'
}

# The project's branches, default and every branch's rows.
salons_state() {
    local name
    echo "branches: $(branch_names | normalized)"
    api GET "/projects/$project/branches" "$key"
    echo "default: $(jq -r '.branches[] | select(.default) | .name' body.json | normalized)"
    for name in $(branch_names | tr ',' ' '); do
        echo "$(echo "$name" | normalized): $(table_checksums "$(uri_of_branch "$name")")"
    done
}

# ---- accidental deletion, in its three strategies ------------------------------

case_accidental-deletion_setup() { salons_project; crash_incident; }
case_accidental-deletion_run() { crash_dr run accidental-deletion -p "incident_time=$incident" --approve apply; }
case_accidental-deletion_state() { salons_state; }

case_accidental-deletion-promote_setup() { case_accidental-deletion_setup; }
case_accidental-deletion-promote_run() {
    crash_dr run accidental-deletion -p "incident_time=$incident" -p strategy=promote --approve apply
}
case_accidental-deletion-promote_state() { salons_state; }

case_accidental-deletion-reinsert_setup() { case_accidental-deletion_setup; }
case_accidental-deletion-reinsert_run() {
    crash_dr run accidental-deletion -p "incident_time=$incident" -p strategy=reinsert -p tables=booking,client \
        --approve apply
}
case_accidental-deletion-reinsert_state() { salons_state; }

# ---- backups ---------------------------------------------------------------------

case_snapshot_setup() { salons_project; sleep 1.2; }
case_snapshot_run() { crash_dr run snapshot; }
case_snapshot_state() { salons_state; }

# Five old backups; retention keeps the newest.
case_retention_setup() {
    salons_project
    local i
    for i in 1 2 3 4 5; do
        curl -s -o b.json -X POST -H "Authorization: Bearer $key" -d "{\"branch\":{\"name\":\"backup-k$i\"}}" \
            "$URL/projects/$project/branches"
        for op in $(jq -r '.operations[].id' b.json); do wait_operation "$project" "$op" "$key"; done
        sleep 0.05
    done
}
case_retention_run() { crash_dr run retention -p keep_days=0 -p keep_last=1 --approve delete; }
case_retention_state() { salons_state; }

case_verify-backup_setup() {
    salons_project
    sleep 1.2
    sc run snapshot
    [ "$rc" = 0 ] || fail "the snapshot before verify-backup failed"
    rm -rf drctl-audit
}
case_verify-backup_run() { crash_dr run verify-backup; }
case_verify-backup_state() { salons_state; }

# The same on a snapshot (restored into the test branch, not branched from).
case_verify-backup-snapshot_setup() {
    salons_project
    sleep 1.2
    sc run snapshot -p method=snapshot
    [ "$rc" = 0 ] || fail "the snapshot before verify-backup failed"
    rm -rf drctl-audit
}
case_verify-backup-snapshot_run() { crash_dr run verify-backup; }
case_verify-backup-snapshot_state() {
    salons_state
    api GET "/projects/$project/snapshots" "$key"
    echo "snapshots: $(jq -r '[.snapshots[].name] | join(",")' body.json | normalized)"
}

case_export_setup() { salons_project; sleep 1.2; mkdir -p exports; }
case_export_run() { crash_dr run export -p "dest=$PWD/exports" -p keep=2 --approve retention; }
case_export_state() {
    echo "dumps: $(find exports -name '*.dump' | wc -l), manifests: $(find exports -name '*.json' | wc -l)"
    echo "leftovers: $(find exports -name '*.tmp*' -o -name '*.part' | wc -l)"
    salons_state
}

# ---- total loss, from an export ----------------------------------------------------

case_total-loss_setup() {
    case_export_setup
    sc run export -p "dest=$PWD/exports" --approve retention
    [ "$rc" = 0 ] || fail "the export before total-loss failed"
    rm -rf drctl-audit
}
case_total-loss_run() { crash_dr run total-loss -p "source=$PWD/exports" -p new_project=reborn --approve restore; }
case_total-loss_state() {
    local reborn made
    api GET /projects "$key"
    echo "projects: $(jq -r '[.projects[].name] | sort | join(",")' body.json)"
    reborn=$(jq -r '.projects[] | select(.name == "reborn") | .id' body.json | head -1)
    [ -n "$reborn" ] || return 0
    api GET "/projects/$reborn/connection_uri?database_name=neondb&role_name=neondb_owner" "$key"
    made=$(jq -r .uri body.json)
    echo "reborn: $(table_checksums "$made")"
}

# ---- corruption: every seventh booking's price broken at a known instant --------------

case_corruption_setup() {
    salons_project
    search_from=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    sleep 1.5
    psql "$uri" -Xqc 'update booking set price = -1 where id % 7 = 0'
    sleep 1.5
}
case_corruption_run() {
    crash_dr run corruption -p "check_sql=select count(*) = 0 from booking where price < 0" \
        -p "search_from=$search_from" -p precision=1s --approve apply
}
case_corruption_state() { salons_state; }

# ---- deleted: a branch deleted by mistake comes back --------------------------------

case_deleted_setup() {
    salons_project
    feature_branch
    delete_and_wait "/projects/$project/branches/$feature_id"
}
case_deleted_run() { crash_dr run deleted -p name=feature --approve recover; }
case_deleted_state() { salons_state; }

# ---- undo of a finished restore ---------------------------------------------------------

case_undo_setup() {
    salons_project
    crash_incident
    sc run accidental-deletion -p "incident_time=$incident" --approve apply
    [ "$rc" = 0 ] || fail "the recovery to undo failed"
    undone=$(run_id)
    psql "$uri" -Xqc "insert into client (id, name, email) values (9002, 'Later', 'later@example.org')"
}
case_undo_run() { crash_dr undo "$undone" --approve undo; }
case_undo_state() { salons_state; }

# ---- a drill of accidental-deletion on a copy of production ------------------------------

case_drill_setup() { salons_project; }
case_drill_run() { crash_dr drill accidental-deletion; }
case_drill_state() { salons_state; }
