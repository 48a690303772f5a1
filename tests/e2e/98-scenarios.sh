# The scenario runbooks (runbooks/*.lua) end to end on neon-local, on the
# guide's schema filled by demo/generate.sql (helpers from 90 and 96).

# A project with the salons schema at a scale (default 1); sets project,
# uri, key, and exports NEON_PROJECT_ID.
salons_project() { # [SCALE]; SALONS_NEON_LOCAL_ARGS: more args for neon-local
    chmod 755 .
    # shellcheck disable=SC2086 # words on purpose
    start_neon_local ${SALONS_NEON_LOCAL_ARGS:-}
    use_api
    make_project
    key=$NEON_API_KEY
    export NEON_PROJECT_ID=$project
    uri=$(jq -r '.connection_uris[0].connection_uri' created.json)
    psql "$uri" -Xq -f "$ROOT/demo/schema.sql"
    psql "$uri" -Xq -v scale="${1:-1}" -f "$ROOT/demo/generate.sql"
}

# The incident: salon 3's bookings deleted at a known instant, then writes
# after it (a booking and a client). Sets incident, lost.
incident() {
    sleep 1.5
    lost=$(psql "$uri" -XAtc 'select count(*) from booking where "salonId" = 3')
    incident=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    psql "$uri" -Xqc 'delete from booking where "salonId" = 3'
    sleep 1.5
    psql "$uri" -Xq -c "insert into client (id, name, email) values (9001, 'After', 'after@example.org')" \
        -c "insert into booking (id, \"salonId\", \"clientId\", service, price, starts_at) values (90001, 1, 9001, 'coupe', 30, now())"
}

count_on() { # URI SQL
    psql "$1" -XAtc "$2"
}

# A connection string for a branch by name, giving it an endpoint when it
# has none (a preserved branch is data only).
uri_of_branch() { # NAME
    local id
    api GET "/projects/$project/branches" "$key"
    id=$(jq -r --arg n "$1" '.branches[] | select(.name == $n) | .id' body.json)
    api GET "/projects/$project/branches/$id/endpoints" "$key"
    if [ "$(jq '.endpoints | length' body.json)" = 0 ]; then
        curl -s -o ep.json -X POST -H "Authorization: Bearer $key" \
            -d "{\"endpoint\":{\"branch_id\":\"$id\",\"type\":\"read_write\"}}" "$URL/projects/$project/endpoints"
        for op in $(jq -r '.operations[].id' ep.json); do wait_operation "$project" "$op" "$key"; done
    fi
    api GET "/projects/$project/connection_uri?branch_id=$id&database_name=neondb&role_name=neondb_owner" "$key"
    jq -r .uri body.json
}

# The branches' names, once no deletion is under way (runbooks do not wait
# for the deletions of their throwaway branches).
branch_names() {
    for _ in $(seq 1 200); do
        api GET "/projects/$project/branches" "$key"
        jq -e '[.branches[] | select(.current_state == "deleting")] | length == 0' body.json >/dev/null && break
        sleep 0.1
    done
    jq -r '[.branches[].name] | sort | join(",")' body.json
}

t_accidental_deletion_restore_in_place_keeps_the_connection_string() {
    salons_project
    incident
    [ "$lost" -gt 100 ] || fail "the incident deleted only $lost bookings"
    # Without a terminal the destructive step pauses, its summary saying what changes.
    sc run accidental-deletion -p "incident_time=$incident"
    expect_rc 3
    expect_in err "the branch main goes back to"
    expect_in err "booking 1, client 1"
    run=$(run_id)
    sc resume "$run" --approve apply
    expect_rc 0
    expect_eq "$(count_on "$uri" 'select count(*) from booking where "salonId" = 3')" "$lost" "salon 3's bookings on main"
    expect_eq "$(count_on "$uri" 'select count(*) from booking where id = 90001')" 0 "the write after the incident, on main"
    kept="main-before-restore-$(echo "$run" | tr 'A-Z' 'a-z')"
    expect_eq "$(branch_names)" "main,$kept" "branches left (the throwaway one removed)"
    expect_eq "$(count_on "$(uri_of_branch "$kept")" 'select count(*) from booking where id = 90001')" 1 \
        "the write after the incident, on the preserved branch"
    expect_in "$(rundir drctl-audit "$run")/report.md" "restore point"
    stop_neon_local
}

t_accidental_deletion_promote_makes_the_restore_branch_default() {
    salons_project
    incident
    sc run accidental-deletion -p "incident_time=$incident" -p strategy=promote --approve apply
    expect_rc 0
    run=$(run_id)
    restore="restore-$(echo "$run" | tr 'A-Z' 'a-z')"
    api GET "/projects/$project/branches" "$key"
    expect_eq "$(jq -r '.branches[] | select(.default) | .name' body.json)" "$restore" "the default branch"
    expect_eq "$(count_on "$(uri_of_branch "$restore")" 'select count(*) from booking where "salonId" = 3')" "$lost" \
        "salon 3's bookings on the promoted branch"
    expect_eq "$(count_on "$uri" 'select count(*) from booking where "salonId" = 3')" 0 "main is left as it was"
    stop_neon_local
}

t_accidental_deletion_reinsert_keeps_later_writes() {
    salons_project
    incident
    sc run accidental-deletion -p "incident_time=$incident" -p strategy=reinsert -p tables=booking,client
    expect_rc 3
    expect_in err "go back in: booking $lost"
    run=$(run_id)
    sc resume "$run" --approve apply
    expect_rc 0
    expect_eq "$(count_on "$uri" 'select count(*) from booking where "salonId" = 3')" "$lost" "salon 3's bookings back"
    expect_eq "$(count_on "$uri" 'select count(*) from booking where id = 90001')" 1 "the write after the incident kept"
    expect_eq "$(jq '.steps[] | select(.name == "apply") | .outputs.inserted.booking' "$(rundir drctl-audit "$run")/state.json")" \
        "$lost" "rows inserted, as recorded"
    expect_eq "$(branch_names)" main "branches left"
    stop_neon_local
}

t_accidental_deletion_killed_in_its_slowest_step_resumes() {
    salons_project
    incident
    set +e
    "$DRCTL" --runbooks "$SCENARIOS" run accidental-deletion -p "incident_time=$incident" --approve apply \
        >out 2>err </dev/null &
    pid=$!
    set -e
    for _ in $(seq 1 200); do
        ls drctl-audit/runs/*/*/*/*/journal.jsonl >/dev/null 2>&1 &&
            grep -q '"step-started","step":"restore-point"' drctl-audit/runs/*/*/*/*/journal.jsonl && break
        sleep 0.05
    done
    sleep 0.5
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    run=$(run_id)
    sc resume "$run" --approve apply
    expect_rc 0
    expect_eq "$(count_on "$uri" 'select count(*) from booking where "salonId" = 3')" "$lost" "salon 3's bookings on main"
    kept="main-before-restore-$(echo "$run" | tr 'A-Z' 'a-z')"
    expect_eq "$(branch_names)" "main,$kept" "branches after the resume: no duplicate, nothing left behind"
    stop_neon_local
}

t_accidental_deletion_refuses_an_instant_with_nothing_missing() {
    salons_project
    sleep 2.5
    sc run accidental-deletion -p "incident_time=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)" --approve apply
    expect_rc 1
    expect_in err "nothing is missing"
    expect_eq "$(branch_names)" main "the throwaway branch removed after the failure"
    stop_neon_local
}

for t in t_accidental_deletion_restore_in_place_keeps_the_connection_string \
         t_accidental_deletion_promote_makes_the_restore_branch_default \
         t_accidental_deletion_reinsert_keeps_later_writes \
         t_accidental_deletion_killed_in_its_slowest_step_resumes \
         t_accidental_deletion_refuses_an_instant_with_nothing_missing; do
    run_test "$t"
done

t_snapshot_then_retention_deletes_exactly_the_old_backups() {
    salons_project
    # Two backups by each method, then other branches that must survive.
    for method in branch branch snapshot; do
        sc run snapshot -p method=$method
        expect_rc 0
        rm -rf drctl-audit
        sleep 1.1
    done
    backups=$(branch_names | tr ',' '\n' | grep -c '^backup-' || true)
    expect_eq "$backups" 2 "backup branches"
    api GET "/projects/$project/snapshots" "$key"
    expect_eq "$(jq '[.snapshots[] | select(.name | startswith("backup-"))] | length' body.json)" 1 "backup snapshots"
    newest=$(jq -r '.snapshots[0].name' body.json)
    # A protected backup, a backup with a child, and a branch of another name.
    curl -s -o b.json -X POST -H "Authorization: Bearer $key" -d '{"branch":{"name":"backup-protected"}}' "$URL/projects/$project/branches"
    for op in $(jq -r '.operations[].id' b.json); do wait_operation "$project" "$op" "$key"; done
    curl -s -o /dev/null -X PATCH -H "Authorization: Bearer $key" -d '{"branch":{"protected":true}}' \
        "$URL/projects/$project/branches/$(jq -r .branch.id b.json)"
    curl -s -o b.json -X POST -H "Authorization: Bearer $key" -d '{"branch":{"name":"backup-parent"}}' "$URL/projects/$project/branches"
    for op in $(jq -r '.operations[].id' b.json); do wait_operation "$project" "$op" "$key"; done
    curl -s -o c.json -X POST -H "Authorization: Bearer $key" \
        -d "{\"branch\":{\"name\":\"feature\",\"parent_id\":\"$(jq -r .branch.id b.json)\"}}" "$URL/projects/$project/branches"
    for op in $(jq -r '.operations[].id' c.json); do wait_operation "$project" "$op" "$key"; done
    curl -s -o c.json -X POST -H "Authorization: Bearer $key" -d '{"branch":{"name":"nightly-other"}}' "$URL/projects/$project/branches"
    for op in $(jq -r '.operations[].id' c.json); do wait_operation "$project" "$op" "$key"; done
    # Young backups stay.
    sc run retention -p keep_days=1 -p keep_last=1 --approve delete
    expect_rc 0
    expect_eq "$(jq '.steps[0].outputs.victims | length' drctl-audit/runs/*/*/*/*/state.json)" 0 "victims younger than a day"
    rm -rf drctl-audit
    before=$(branch_names)
    sc plan retention -p keep_days=0 -p keep_last=3
    expect_rc 0
    expect_in out "would delete 2: branch backup-"
    # Without approval: paused, the summary listing the victims.
    sc run retention -p keep_days=0 -p keep_last=3
    expect_rc 3
    expect_in err "2 backups of project $project will be deleted for good"
    expect_eq "$(branch_names)" "$before" "nothing deleted before the confirmation"
    sc resume "$(run_id)" --approve delete
    expect_rc 0
    # The newest 3 (backup-parent, backup-protected, the snapshot) stay; the
    # 2 backup branches go; feature, nightly-other and main are not backups.
    expect_eq "$(branch_names)" "backup-parent,backup-protected,feature,main,nightly-other" "branches left"
    api GET "/projects/$project/snapshots" "$key"
    expect_eq "$(jq -r '[.snapshots[].name] | join(",")' body.json)" "$newest" "snapshots left"
    stop_neon_local
}

t_verify_backup_passes_on_a_good_backup_and_fails_on_an_orphan() {
    salons_project
    sleep 1.5 # the backup's instant must be inside main's history, to the second
    sc run snapshot
    expect_rc 0
    rm -rf drctl-audit
    sc run verify-backup
    expect_rc 0
    run=$(run_id)
    expect_in "$(rundir drctl-audit "$run")/report.md" "orphans of"
    expect_in "$(rundir drctl-audit "$run")/report.md" "business query 1 rows"
    expect_eq "$(jq '.steps[1].outputs.rows.booking' "$(rundir drctl-audit "$run")/state.json")" 2000 "bookings counted"
    expect_eq "$(branch_names | tr ',' '\n' | grep -c '^verify' || true)" 0 "test branches removed"
    rm -rf drctl-audit
    # An orphan booking (its salon gone, the key not checked), then a backup of that.
    psql "$uri" -Xq -c 'ALTER TABLE booking DROP CONSTRAINT "booking_salonId_fkey"' \
        -c "INSERT INTO booking (\"salonId\", \"clientId\", service, price, starts_at) VALUES (999, 1, 'coupe', 20, now())" \
        -c 'ALTER TABLE booking ADD CONSTRAINT "booking_salonId_fkey" FOREIGN KEY ("salonId") REFERENCES salon (id) NOT VALID'
    sleep 1.1
    sc run snapshot
    expect_rc 0
    rm -rf drctl-audit
    sc run verify-backup
    expect_rc 1
    expect_in err "1 rows of booking point to no row of salon"
    expect_eq "$(branch_names | tr ',' '\n' | grep -c '^verify' || true)" 0 "test branches removed after the failure"
    stop_neon_local
}

for t in t_snapshot_then_retention_deletes_exactly_the_old_backups \
         t_verify_backup_passes_on_a_good_backup_and_fails_on_an_orphan; do
    run_test "$t"
done

t_export_then_total_loss_into_a_new_project() {
    salons_project
    # Three exports (keep 2): the oldest goes, with its manifest.
    for i in 1 2 3; do
        sc run export -p "dest=$PWD/exports" -p keep=2 --approve retention
        expect_rc 0
        [ "$i" = 3 ] || rm -rf drctl-audit
        sleep 1.1
    done
    run=$(run_id)
    expect_eq "$(ls exports | grep -c '\.dump$')" 2 "dumps kept"
    expect_eq "$(ls exports | grep -c '\.json$')" 2 "manifests kept"
    manifest=$(ls exports/*.json | sort | tail -1)
    expect_eq "$(jq -r .sha256 "$manifest")" "$(sha256sum "exports/$(jq -r .dump "$manifest")" | cut -d' ' -f1)" "sha256"
    expect_eq "$(jq -r .rows.booking "$manifest")" 2000 "rows in the manifest"
    expect_eq "$(jq -r .database "$manifest")" neondb "database in the manifest"
    expect_in "$(rundir drctl-audit "$run")/report.md" "sha256"
    rm -rf drctl-audit
    # The project is lost; the newest export goes into a new project.
    sc run total-loss -p "source=$PWD/exports" -p new_project=salons-reborn --approve restore
    expect_rc 0
    run=$(run_id)
    new_project=$(jq -r '.steps[] | select(.name == "target") | .outputs.project' "$(rundir drctl-audit "$run")/state.json")
    [ "$new_project" != "$project" ] || fail "restored into the old project"
    api GET "/projects/$new_project" "$key"
    expect_eq "$(jq -r .project.name body.json)" salons-reborn "the new project"
    curl -s -o conn.json -H "Authorization: Bearer $key" \
        "$URL/projects/$new_project/connection_uri?database_name=neondb&role_name=neondb_owner"
    new_uri=$(jq -r .uri conn.json)
    for t in salon staff client booking; do
        expect_eq "$(count_on "$new_uri" "select count(*) from $t")" "$(count_on "$uri" "select count(*) from $t")" "rows of $t"
    done
    expect_in err "set its DATABASE_URL to postgresql://neondb_owner:<redacted>@"
    pw=$(echo "$new_uri" | sed -E 's|^[^:]+://[^:]+:([^@]+)@.*|\1|')
    ! grep -rqF "$pw" drctl-audit out err || fail "the new password leaked"
    # A damaged dump is refused before anything is restored.
    rm -rf drctl-audit
    printf 'x' >> "exports/$(jq -r .dump "$manifest")"
    sc run total-loss -p "dump=$manifest" -p new_project=never-made --approve restore
    expect_rc 1
    expect_in err "the dump is damaged"
    api GET /projects "$key"
    expect_eq "$(jq '[.projects[] | select(.name == "never-made")] | length' body.json)" 0 "no project made"
    stop_neon_local
}

run_test t_export_then_total_loss_into_a_new_project

t_corruption_found_by_bisection_then_rebuilt_with_salvage() {
    salons_project
    start=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    sleep 3
    # The corruption's transaction began at now() and committed before psql
    # returned: a sound instant is before the commit, and within the
    # search's precision of the transaction's start.
    corrupted_at=$(psql "$uri" -XAtqc 'update booking set price = -1 where id % 7 = 0; select extract(epoch from now())')
    committed_by=$(date -u +%s.%N)
    sleep 3
    # Rows written after the corruption, to be salvaged.
    psql "$uri" -Xqc "insert into client (id, name, email) values (9001, 'After', 'after@example.org'), (9002, 'Later', 'later@example.org')"
    check='select count(*) = 0 from booking where price < 0'
    sc run corruption -p "check_sql=$check" -p "search_from=$start" -p salvage=client -p precision=1s --approve apply
    expect_rc 0
    run=$(run_id)
    state="$(rundir drctl-audit "$run")/state.json"
    good=$(jq -r '.steps[] | select(.name == "last-good") | .outputs.at' "$state")
    probes=$(jq -r '.steps[] | select(.name == "last-good") | .outputs.probes' "$state")
    gap=$(awk -v c="$corrupted_at" -v g="$(date -u -d "$good" +%s.%N)" 'BEGIN { printf "%.3f", c - g }')
    echo "corrupted at $corrupted_at, last good found $good ($gap s before), $probes probes" >&2
    awk -v d="$gap" -v c="$corrupted_at" -v e="$committed_by" -v g="$(date -u -d "$good" +%s.%N)" \
        'BEGIN { exit !(g < e && d <= 1.5) }' || fail "the last good instant is $gap s before the corruption"
    [ "$probes" -ge 3 ] || fail "only $probes probes"
    expect_in "$(rundir drctl-audit "$run")/report.md" "probe 2 at"
    expect_eq "$(count_on "$uri" 'select count(*) from booking where price < 0')" 0 "main is sound again"
    expect_eq "$(count_on "$uri" 'select count(*) from client where id in (9001, 9002)')" 2 "salvaged clients"
    expect_eq "$(jq -r '.steps[] | select(.name == "rebuild") | .outputs.copied.client' "$state")" 2 "rows salvaged"
    kept="main-corrupted-$(echo "$run" | tr 'A-Z' 'a-z')"
    expect_eq "$(branch_names)" "main,$kept" "branches left: probes and the rebuilt branch removed"
    stop_neon_local
}

run_test t_corruption_found_by_bisection_then_rebuilt_with_salvage

# Runs a scenario, kills it (-9) KILL_AFTER seconds (default 0.4) after STEP
# started, resumes it with the same approvals; rc is the resume's.
kill_in_step_then_resume() { # STEP APPROVE drctl-run-args...
    local step=$1 approve=$2
    shift 2
    set +e
    "$DRCTL" --runbooks "$SCENARIOS" run "$@" --approve "$approve" >out 2>err </dev/null &
    local pid=$!
    set -e
    for _ in $(seq 1 400); do
        grep -qs "\"step-started\",\"step\":\"$step\"" drctl-audit/runs/*/*/*/*/journal.jsonl && break
        sleep 0.05
    done
    sleep "${KILL_AFTER:-0.4}"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    grep -qs "\"step-started\",\"step\":\"$step\"" drctl-audit/runs/*/*/*/*/journal.jsonl || fail "$step never started"
    ! grep -qs "\"step-done\",\"step\":\"$step\"" drctl-audit/runs/*/*/*/*/journal.jsonl || fail "$step ended before the kill"
    sc resume "$(run_id)" --approve "$approve"
}

t_every_scenario_survives_a_kill_in_its_slowest_step() {
    salons_project 100 # 200,000 bookings: the dump and the restore take a while
    sleep 1.5
    # snapshot, killed while the backup is made: one backup in the end.
    kill_in_step_then_resume backup backup snapshot
    expect_rc 0
    expect_eq "$(branch_names | tr ',' '\n' | grep -c '^backup-' || true)" 1 "backup branches after a killed snapshot"
    rm -rf drctl-audit
    # verify-backup, killed while its test branches are made: none left.
    kill_in_step_then_resume test-branches check verify-backup
    expect_rc 0
    expect_eq "$(branch_names | tr ',' '\n' | grep -c '^verify' || true)" 0 "test branches after a killed verify"
    rm -rf drctl-audit
    # export, killed while dumping: one dump and one manifest, and the
    # killed pg_dump's passfile (a password) gone once the resume dumps.
    mkdir tmp
    export TMPDIR=$PWD/tmp
    kill_in_step_then_resume dump retention export -p "dest=$PWD/exports"
    expect_rc 0
    expect_eq "$(ls tmp | grep -c pgpass || true)" 0 "passfiles left after a killed export"
    unset TMPDIR
    expect_eq "$(ls exports | grep -c '\.dump$')" 1 "dumps after a killed export"
    expect_eq "$(ls exports | grep -c '\.json$')" 1 "manifests after a killed export"
    rm -rf drctl-audit
    # total-loss, killed while restoring: one new project, the counts right.
    KILL_AFTER=0.1 kill_in_step_then_resume restore restore total-loss -p "source=$PWD/exports" -p new_project=reborn
    expect_rc 0
    api GET /projects "$key"
    expect_eq "$(jq '[.projects[] | select(.name == "reborn")] | length' body.json)" 1 "new projects after a killed restore"
    rm -rf drctl-audit
    # retention, killed while deleting six backups: the same end state.
    for i in 1 2 3 4 5; do
        curl -s -o b.json -X POST -H "Authorization: Bearer $key" -d "{\"branch\":{\"name\":\"backup-k$i\"}}" \
            "$URL/projects/$project/branches"
        for op in $(jq -r '.operations[].id' b.json); do wait_operation "$project" "$op" "$key"; done
    done
    KILL_AFTER=0.15 kill_in_step_then_resume delete delete retention -p keep_days=0 -p keep_last=0
    expect_rc 0
    expect_eq "$(branch_names)" main "branches after a killed retention"
    stop_neon_local
}

t_corruption_killed_while_bisecting_resumes() {
    salons_project
    start=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    sleep 2
    psql "$uri" -Xqc 'update booking set price = -1 where id % 7 = 0'
    sleep 2
    kill_in_step_then_resume last-good apply corruption -p "check_sql=select count(*) = 0 from booking where price < 0" \
        -p "search_from=$start"
    expect_rc 0
    expect_eq "$(count_on "$uri" 'select count(*) from booking where price < 0')" 0 "main is sound again"
    run=$(run_id)
    expect_eq "$(branch_names)" "main,main-corrupted-$(echo "$run" | tr 'A-Z' 'a-z')" "no probe branch left"
    stop_neon_local
}

for t in t_every_scenario_survives_a_kill_in_its_slowest_step t_corruption_killed_while_bisecting_resumes; do
    run_test "$t"
done

t_scenario_plans_say_what_each_step_does_and_what_is_lost() {
    salons_project
    sc plan accidental-deletion -p incident_time=2026-01-11T14:30:00Z
    expect_rc 0
    expect_in out "create branch check-<run-id> at 2026-01-11T14:29:59Z"
    expect_in out "Lost from it: every row written after that instant"
    sc plan accidental-deletion -p incident_time=2026-01-11T14:30:00Z -p strategy=promote
    expect_in out "the application's connection string changes"
    sc plan corruption -p "check_sql=select true" -p salvage=client
    expect_rc 0
    expect_in out "copy the rows of client written after it"
    sc plan total-loss -p new_project=reborn -p "source=$PWD/none"
    expect_rc 0
    expect_in out "new: nothing there is lost"
    # Plans act on nothing.
    expect_eq "$(branch_names)" main "branches after the plans"
    [ ! -e drctl-audit ] || fail "a plan wrote an audit trail"
    stop_neon_local
}

run_test t_scenario_plans_say_what_each_step_does_and_what_is_lost
