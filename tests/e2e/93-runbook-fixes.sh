# Fixes to the scenario runbooks and the engine's modules, each tested end
# to end: retention waiting for deletions under way, verify-backup at the
# backup's LSN, corruption's search window, pg.connect on a redacted
# connection string, the variable named for a secret param on resume.
# Helpers from 90-neon-local.sh; the scenario helpers of 96 and 98 come
# after this file, so the ones needed are here, prefixed fx_.

t_a_secret_param_missing_on_resume_names_the_variable_that_works() {
    dr run secret-resume -p "dir=$PWD" -p api_token=tok-s3cret-4711
    expect_rc 1
    run=$(run_id)
    touch go
    # Not given again: refused, naming the variable drctl reads.
    dr resume "$run"
    expect_rc 2
    expect_in err "DRCTL_PARAM_API_TOKEN"
    expect_not_in err "DRCTL_PARAM_api_token"
    # Exactly that variable makes the resume work.
    set +e
    DRCTL_PARAM_API_TOKEN=tok-s3cret-4711 "$DRCTL" --runbooks "$TEST_RUNBOOKS" resume "$run" >out 2>err </dev/null
    rc=$?
    set -e
    expect_rc 0
    expect_eq "$(jq '.steps[] | select(.name == "use") | .outputs.token_length' "$(rundir drctl-audit "$run")/state.json")" 15 \
        "the token's length, as the resumed step saw it"
    ! grep -rqF tok-s3cret-4711 drctl-audit out err || fail "the secret leaked"
}

run_test t_a_secret_param_missing_on_resume_names_the_variable_that_works


# neon-local and a project on it, drctl pointed at it as at any Neon API;
# sets project, key, uri and exports NEON_PROJECT_ID.
fx_project() {
    chmod 755 .
    start_neon_local
    ready_project
    export NEON_API_KEY=$key NEON_API_HOST=$URL NEON_PROJECT_ID=$project
}

# The same with the guide's schema and generated rows (scale 1).
fx_salons_project() {
    fx_project
    psql "$uri" -Xq -f "$ROOT/demo/schema.sql"
    psql "$uri" -Xq -v scale=1 -f "$ROOT/demo/generate.sql"
}

# The branches' names, once no deletion is under way.
fx_branch_names() {
    for _ in $(seq 1 200); do
        api GET "/projects/$project/operations" "$key"
        jq -e '[.operations[] | select(.status == "running")] | length == 0' body.json >/dev/null && break
        sleep 0.1
    done
    api GET "/projects/$project/branches" "$key"
    jq -r '[.branches[].name] | sort | join(",")' body.json
}

t_retention_deletes_a_backup_whose_child_was_deleted_and_skips_live_children() {
    fx_project
    ready_branch '{"branch":{"name":"backup-old"}}'
    old_id=$branch_id
    ready_branch "{\"branch\":{\"name\":\"verify-x\",\"parent_id\":\"$old_id\"},\"endpoints\":[{\"type\":\"read_write\"}]}"
    child_id=$branch_id
    ready_branch '{"branch":{"name":"backup-parent"}}'
    ready_branch "{\"branch\":{\"name\":\"feature\",\"parent_id\":\"$branch_id\"}}"
    # The child deleted (as verify-backup's cleanup does): gone for the API,
    # recoverable for 7 days, and no longer a child that keeps its parent.
    call DELETE "/projects/$project/branches/$child_id"
    expect_eq "$status" 200 "the child's deletion accepted"
    call GET "/projects/$project/branches/$child_id"
    expect_eq "$status" 404 "the deleted child"
    call GET "/projects/$project/branches?include_deleted=true"
    expect_eq "$(jq -r --arg id "$child_id" '.branches[] | select(.id == $id) | .recovery.deletion_method' body.json)" \
        user "the deleted child, recoverable"
    # The plan says which backup goes, which stays and why.
    sc plan retention -p keep_days=0 -p keep_last=0
    expect_rc 0
    expect_in out "would delete 1: branch backup-old (0.0 days old)"
    expect_in out "skipped, though old enough: branch backup-parent (has a child branch: feature)"
    sc run retention -p keep_days=0 -p keep_last=0 --approve delete
    expect_rc 0
    run=$(run_id)
    expect_eq "$(fx_branch_names)" "backup-parent,feature,main" "branches left"
    state="$(rundir drctl-audit "$run")/state.json"
    expect_eq "$(jq -r '.steps[] | select(.name == "delete") | .outputs.deleted | join(",")' "$state")" backup-old "deleted"
    expect_in "$(rundir drctl-audit "$run")/report.md" "skipped backup-parent"
    expect_in "$(rundir drctl-audit "$run")/report.md" "has a child branch: feature"
    stop_neon_local
}

run_test t_retention_deletes_a_backup_whose_child_was_deleted_and_skips_live_children

# Inserts a row into ticks every ~100 ms through one session, until killed;
# sets WRITER (its pid).
fx_start_writer() {
    psql "$uri" -Xqc "create table ticks (id bigserial primary key, at timestamptz not null default clock_timestamp())"
    (while :; do echo "insert into ticks default values;"; sleep 0.1; done | psql "$uri" -Xq >/dev/null 2>&1) &
    WRITER=$!
}

fx_stop_writer() {
    pkill -P "$WRITER" 2>/dev/null || true
    kill "$WRITER" 2>/dev/null || true
    wait "$WRITER" 2>/dev/null || true
}

t_verify_backup_compares_at_the_backups_lsn_under_constant_writes() {
    fx_project
    fx_start_writer
    sleep 1.5
    sc run snapshot
    expect_rc 0
    backup_lsn=$(jq -r '.steps[] | select(.name == "backup") | .outputs.lsn' drctl-audit/runs/*/*/*/*/state.json)
    rm -rf drctl-audit
    sleep 1
    sc run verify-backup
    rows_after=$(psql "$uri" -XAtc 'select count(*) from ticks')
    fx_stop_writer
    expect_rc 0
    run=$(run_id)
    check=$(jq -c '.steps[] | select(.name == "check") | .outputs' "$(rundir drctl-audit "$run")/state.json")
    echo "backup at LSN $backup_lsn; check: $check; rows at the end: $rows_after" >&2
    expect_eq "$(echo "$check" | jq -r .comparison)" pass "the comparison"
    expect_eq "$(echo "$check" | jq -r .source_rows.ticks)" "$(echo "$check" | jq -r .rows.ticks)" "ticks: source / backup"
    [ "$(echo "$check" | jq -r .rows.ticks)" -lt "$rows_after" ] || fail "the writer did not write after the backup"
    expect_in "$(rundir drctl-audit "$run")/report.md" "comparison with the source"
    expect_in "$(rundir drctl-audit "$run")/report.md" "pass (at LSN $backup_lsn)"
    stop_neon_local
}

t_verify_backup_reports_a_comparison_it_cannot_make_as_skipped() {
    fx_project
    psql "$uri" -Xqc "create table t (id int primary key); insert into t select generate_series(1, 50)"
    sleep 1.5
    sc run snapshot
    expect_rc 0
    rm -rf drctl-audit
    # The source's history no longer reaches back to the backup.
    curl -s -o /dev/null -X PATCH -H "Authorization: Bearer $key" -d '{"project":{"history_retention_seconds":1}}' \
        "$URL/projects/$project"
    sleep 2
    sc run verify-backup
    expect_rc 0
    run=$(run_id)
    state="$(rundir drctl-audit "$run")/state.json"
    report="$(rundir drctl-audit "$run")/report.md"
    expect_eq "$(jq -r '.steps[] | select(.name == "check") | .outputs.comparison' "$state")" skipped "the comparison"
    expect_eq "$(jq -r '.steps[] | select(.name == "check") | .outputs.source_rows' "$state")" null "source rows"
    expect_in "$report" "skipped: the backup ("
    expect_in "$report" "history no longer reaches back"
    expect_not_in "$report" "pass"
    expect_not_in "$report" "backup / source"
    expect_in err "comparison with the source: skipped"
    stop_neon_local
}

for t in t_verify_backup_compares_at_the_backups_lsn_under_constant_writes \
         t_verify_backup_reports_a_comparison_it_cannot_make_as_skipped; do
    run_test "$t"
done

# Corrupts the bookings; sets before and after (epoch seconds): the
# corruption committed between them.
fx_corrupt() {
    before=$(date -u +%s.%N)
    after=$(psql "$uri" -XAtq -c 'update booking set price = -1 where id % 7 = 0' \
        -c 'select extract(epoch from clock_timestamp())')
}

# The last good instant a corruption run found must be before the
# corruption committed, and within the precision (1 s, with a margin) of it.
fx_expect_last_good_just_before_the_corruption() { # RUN
    local good
    good=$(date -u -d "$(jq -r '.steps[] | select(.name == "last-good") | .outputs.at' "$(rundir drctl-audit "$1")/state.json")" +%s.%N)
    echo "corrupted between $before and $after; last good found: $good" >&2
    awk -v g="$good" -v b="$before" -v a="$after" 'BEGIN { exit !(g <= a && g >= b - 1.5) }' ||
        fail "the last good instant $good is not just before the corruption ($before to $after)"
}

t_corruption_on_a_branch_restored_in_place_searches_from_its_new_history() {
    fx_salons_project
    main_id=$(jq -r .branch.id created.json)
    sleep 1.5
    # main restored in place (from itself, a moment ago): its history starts again after that.
    at=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    sleep 0.5
    curl -s -o r.json -X POST -H "Authorization: Bearer $key" "$URL/projects/$project/branches/$main_id/restore" \
        -d "{\"source_branch_id\":\"$main_id\",\"source_timestamp\":\"$at\",\"preserve_under_name\":\"main-before\"}"
    for op in $(jq -r '.operations[].id' r.json); do wait_operation "$project" "$op" "$key"; done
    # Its new history is recorded a moment after the restore ends: until
    # then a branch in its past is answered 423, then 400 (before it starts).
    for _ in $(seq 1 200); do
        code=$(curl -s -o h.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
            -d "{\"branch\":{\"name\":\"never\",\"parent_id\":\"$main_id\",\"parent_timestamp\":\"$at\"}}" \
            "$URL/projects/$project/branches")
        [ "$code" = 423 ] || break
        sleep 0.1
    done
    expect_eq "$code" 400 "a branch before main's new history"
    sleep 2
    fx_corrupt
    sleep 2
    # Not approved: the run stops before the restore, the search and the
    # rebuild done (the restore itself is tested by 98).
    sc run corruption -p "check_sql=select count(*) = 0 from booking where price < 0"
    expect_rc 3
    run=$(run_id)
    fx_expect_last_good_just_before_the_corruption "$run"
    report="$(rundir drctl-audit "$run")/report.md"
    # The first probe, at the end of the restore, is before the new history:
    # refused, and the refusal says where the history starts.
    expect_in "$report" "refused (POST"
    expect_in "$report" "is before the history of branch $main_id starts"
    expect_in "$report" "the API's refusal says the branch's history starts then"
    expect_in "$report" "search window"
    expect_eq "$(step_state "$run" verify)" done "the rebuilt branch checked"
    stop_neon_local
}

t_corruption_searched_from_before_the_table_existed_finds_the_last_good_instant() {
    fx_project
    sleep 1
    start=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    sleep 1
    psql "$uri" -Xq -f "$ROOT/demo/schema.sql"
    psql "$uri" -Xq -v scale=1 -f "$ROOT/demo/generate.sql"
    sleep 2.5
    fx_corrupt
    sleep 2
    sc run corruption -p "check_sql=select count(*) = 0 from booking where price < 0" -p "search_from=$start"
    expect_rc 3
    run=$(run_id)
    fx_expect_last_good_just_before_the_corruption "$run"
    report="$(rundir drctl-audit "$run")/report.md"
    expect_in "$report" "before the data existed (SQL error 42P01"
    expect_in "$report" "relation \"booking\" does not exist"
    expect_eq "$(jq -r '.steps[] | select(.name == "last-good") | .outputs.trail[0].outcome' \
        "$(rundir drctl-audit "$run")/state.json")" before-data "the first probe's outcome"
    expect_eq "$(step_state "$run" verify)" done "the rebuilt branch checked"
    stop_neon_local
}

for t in t_corruption_on_a_branch_restored_in_place_searches_from_its_new_history \
         t_corruption_searched_from_before_the_table_existed_finds_the_last_good_instant; do
    run_test "$t"
done

t_pg_connect_gets_back_the_password_a_steps_outputs_redacted() {
    fx_project
    ready_branch '{"branch":{"name":"b"},"endpoints":[{"type":"read_write"}]}'
    psql "$uri" -Xqc "create table t (which text); insert into t values ('main')"
    psql "$branch_uri" -Xqc "create table t (which text); insert into t values ('b')"
    password=$(echo "$branch_uri" | sed -E 's|^[^:]+://[^:]+:([^@]+)@.*|\1|')
    for mode in search project; do
        rm -rf drctl-audit
        dr run redacted-uri -p "project=$project" -p mode=$mode
        expect_rc 0
        state="$(rundir drctl-audit "$(run_id)")/state.json"
        expect_eq "$(jq -r '.steps[] | select(.name == "connect") | .outputs.uri_seen' "$state")" \
            "$(echo "$branch_uri" | sed -E 's|^([^:]+://[^:]+:)[^@]+@|\1<redacted>@|')" "the string step 2 was given ($mode)"
        expect_eq "$(jq -r '.steps[] | select(.name == "connect") | .outputs.which' "$state")" b "the branch reached ($mode)"
        ! grep -rqF "$password" drctl-audit out err || fail "the password leaked ($mode)"
    done
    # Nothing on the target has that endpoint: the message says what happened and what to do.
    rm -rf drctl-audit
    dr run redacted-uri -p "project=$project" -p mode=unknown
    expect_rc 1
    expect_in err "the connection string's password was redacted (<redacted>)"
    expect_in err "no endpoint at 127.0.0.1:1 for role neondb_owner in any project of the target"
    expect_in err "neon.connection_uri"
    expect_not_in err "password authentication failed"
    stop_neon_local
}

run_test t_pg_connect_gets_back_the_password_a_steps_outputs_redacted
