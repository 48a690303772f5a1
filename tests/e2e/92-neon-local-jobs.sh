# neon-local: the worker's jobs (restores, branches and snapshots being made,
# endpoint changes) and the branches they read, and branches left in error.
# Helpers from 90-neon-local.sh; sourced alone (after tests/lib.sh), this file
# loads them without running 90's tests.

if ! declare -F start_neon_local >/dev/null; then
    source <(sed '/^for t in/,$d' "$ROOT/tests/e2e/90-neon-local.sh")
fi

jobs_send() { # METHOD PATH JSON: status and body.json
    status=$(curl -s -o body.json -w '%{http_code}' -X "$1" -H "Authorization: Bearer $key" -d "$3" "$URL$2")
}

# Waits for every operation listed in FILE; each must end as EXPECTED.
jobs_wait_all() { # FILE EXPECTED WHAT
    local op
    for op in $(jq -r '.operations[].id' "$1"); do
        wait_operation "$project" "$op" "$key"
        expect_eq "$(jq -r .operation.status body.json)" "$2" "$3 (error: $(jq -r '.operation.error // empty' body.json))"
    done
}

# A 423 in Neon's error shape, saying an operation is in progress.
jobs_expect_locked() { # WHAT
    expect_eq "$status" 423 "$1"
    expect_eq "$(jq -r 'has("code") and has("message") and has("request_id")' body.json)" true "error shape: $1"
    expect_in body.json "operation in progress"
}

t_a_branch_a_restore_reads_cannot_be_deleted_until_it_is_done() {
    chmod 755 .
    start_neon_local
    ready_project
    psql "$uri" -Xqc "create table t (id int primary key); insert into t select generate_series(1, 10)"
    ready_branch '{"branch":{"name":"source"}}'      # data only: a restore copies its files
    source_id=$branch_id
    psql "$uri" -Xqc "insert into t select generate_series(11, 15)"
    ready_branch '{"branch":{"name":"target"},"endpoints":[{"type":"read_write"}]}'
    target=$branch_id
    target_uri=$branch_uri
    expect_eq "$(psql "$target_uri" -XAtc 'select count(*) from t')" 15 "the target before the restore"
    jobs_send POST "/projects/$project/branches/$target/restore" "{\"source_branch_id\":\"$source_id\"}"
    expect_eq "$status" 200 "restore ($(jq -r .message body.json))"
    cp body.json restore.json
    # At once, before the worker has copied the source: refused.
    call DELETE "/projects/$project/branches/$source_id"
    jobs_expect_locked "delete the source of a restore in progress"
    call GET "/projects/$project/branches/$source_id"
    expect_eq "$(jq -r .branch.current_state body.json)" ready "the source after the refused delete"
    jobs_wait_all restore.json finished "the restore"
    call GET "/projects/$project/branches/$target"
    expect_eq "$(jq -r .branch.current_state body.json)" ready "the target after the restore"
    expect_eq "$(psql "$target_uri" -XAtc 'select count(*) from t')" 10 "the target has the source's data"
    # The job is done: the source can go (for good, so that its files go now).
    call DELETE "/projects/$project/branches/$source_id?hard_delete=true"
    expect_eq "$status" 200 "delete the source after the restore ($(jq -r .message body.json))"
    cp body.json deleted.json
    jobs_wait_all deleted.json finished "the deletion"
    call GET "/projects/$project/branches/$source_id"
    expect_eq "$status" 404 "the deleted source"
    [ ! -e "nl/pg/$source_id" ] || fail "the deleted source's files are still there"
    stop_neon_local
}

t_snapshots_and_servers_a_job_needs_are_locked_until_it_is_done() {
    chmod 755 .
    start_neon_local
    ready_project
    psql "$uri" -Xqc "create table t (id int primary key); insert into t select generate_series(1, 10)"
    ready_branch '{"branch":{"name":"src"},"endpoints":[{"type":"read_write"}]}'
    src=$branch_id
    src_uri=$branch_uri
    src_endpoint=$(jq -r '.endpoints[0].id' branch.json)
    # A snapshot of src being taken reads src's server.
    call POST "/projects/$project/branches/$src/snapshot?name=s1"
    expect_eq "$status" 200 "snapshot ($(jq -r .message body.json))"
    cp body.json snapshot.json
    snap=$(jq -r .snapshot.id snapshot.json)
    call DELETE "/projects/$project/branches/$src"
    jobs_expect_locked "delete a branch a snapshot is being taken of"
    call POST "/projects/$project/endpoints/$src_endpoint/suspend"
    jobs_expect_locked "suspend the server a snapshot is being taken from"
    jobs_wait_all snapshot.json finished "the snapshot"
    call GET "/projects/$project/endpoints/$src_endpoint"
    expect_eq "$(jq -r .endpoint.current_state body.json)" active "src's endpoint after the refused suspend"
    # A branch being restored from the snapshot reads the snapshot's files.
    jobs_send POST "/projects/$project/snapshots/$snap/restore" '{"name":"from-s1"}'
    expect_eq "$status" 200 "restore the snapshot ($(jq -r .message body.json))"
    cp body.json restored.json
    call DELETE "/projects/$project/snapshots/$snap"
    jobs_expect_locked "delete a snapshot being restored"
    jobs_wait_all restored.json finished "the snapshot restore"
    expect_eq "$(psql "$(jq -r '.connection_uris[0].connection_uri' restored.json)" -XAtc 'select count(*) from t')" 10 \
        "the branch restored from the snapshot"
    call DELETE "/projects/$project/snapshots/$snap"
    expect_eq "$status" 202 "delete the snapshot once restored ($(jq -r .message body.json))"
    cp body.json deleted.json
    jobs_wait_all deleted.json finished "the snapshot's deletion"
    # The other way round: while src's server is being started, a job that
    # would read it is refused rather than failing on a server not up yet.
    # (A snapshot of main keeps the worker busy meanwhile, so that a restore
    # accepted now would be run before the start.)
    call POST "/projects/$project/endpoints/$src_endpoint/suspend"
    expect_eq "$status" 200 "suspend src ($(jq -r .message body.json))"
    cp body.json suspend.json
    jobs_wait_all suspend.json finished "the suspend"
    main_id=$(jq -r .branch.id created.json)
    call POST "/projects/$project/branches/$main_id/snapshot?name=busy"
    expect_eq "$status" 200 "snapshot of main ($(jq -r .message body.json))"
    cp body.json busy.json
    call POST "/projects/$project/endpoints/$src_endpoint/start"
    expect_eq "$status" 200 "start src ($(jq -r .message body.json))"
    cp body.json start.json
    jobs_send POST "/projects/$project/branches/$(jq -r .branch.id restored.json)/restore" "{\"source_branch_id\":\"$src\"}"
    jobs_expect_locked "restore from a branch whose server is being started"
    jobs_send POST "/projects/$project/branches" "{\"branch\":{\"name\":\"child\",\"parent_id\":\"$src\"}}"
    jobs_expect_locked "branch from a branch whose server is being started"
    jobs_wait_all busy.json finished "the snapshot of main"
    jobs_wait_all start.json finished "the start"
    expect_eq "$(psql "$src_uri" -XAtc 'select count(*) from t')" 10 "src after its start"
    call DELETE "/projects/$project/branches/$src"
    expect_eq "$status" 200 "delete src once nothing needs it ($(jq -r .message body.json))"
    cp body.json deleted.json
    jobs_wait_all deleted.json finished "src's deletion"
    stop_neon_local
}

t_a_branch_in_error_can_be_deleted() {
    chmod 755 .
    start_neon_local
    ready_project
    psql "$uri" -Xqc "create table t (id int primary key); insert into t select generate_series(1, 10)"
    ready_branch '{"branch":{"name":"source"}}'
    source_id=$branch_id
    ready_branch '{"branch":{"name":"target"},"endpoints":[{"type":"read_write"}]}'
    target=$branch_id
    ready_branch '{"branch":{"name":"target2"},"endpoints":[{"type":"read_write"}]}'
    target2=$branch_id
    target2_uri=$branch_uri
    # The source's files go missing: what is made from them fails.
    mv "nl/pg/$source_id/data" "nl/pg/$source_id/data.lost"
    for b in "$target" "$target2"; do
        jobs_send POST "/projects/$project/branches/$b/restore" "{\"source_branch_id\":\"$source_id\"}"
        expect_eq "$status" 200 "restore ($(jq -r .message body.json))"
        cp body.json restore.json
        jobs_wait_all restore.json failed "the restore from missing files"
        call GET "/projects/$project/branches/$b"
        expect_eq "$(jq -r .branch.current_state body.json)" error "branch $b after the failed restore"
    done
    ready_branch "{\"branch\":{\"name\":\"broken\",\"parent_id\":\"$source_id\"},\"endpoints\":[{\"type\":\"read_write\"}]}"
    broken=$branch_id
    call GET "/projects/$project/branches/$broken"
    expect_eq "$(jq -r .branch.current_state body.json)" error "a branch made from missing files"
    # target's server dies, as in a crash or a reboot: its pid file stays.
    kill -9 "$(head -1 "nl/pg/$target/data/postmaster.pid")"
    # All three can be deleted: server stopped, files removed, gone from the lists.
    for gone in "$target" "$target2" "$broken"; do
        call DELETE "/projects/$project/branches/$gone?hard_delete=true"
        expect_eq "$status" 200 "delete branch $gone in error ($(jq -r .message body.json))"
        cp body.json deleted.json
        jobs_wait_all deleted.json finished "the deletion of $gone"
        call GET "/projects/$project/branches/$gone"
        expect_eq "$status" 404 "the deleted branch $gone"
        [ ! -e "nl/pg/$gone" ] && [ ! -e "nl/pg/$gone.restore" ] || fail "branch $gone's files are still there"
    done
    ! psql "$target2_uri" -XAtc 'select 1' >/dev/null 2>&1 || fail "the deleted target2's server still answers"
    call GET "/projects/$project/branches"
    expect_eq "$(jq -r '[.branches[].name] | sort | join(",")' body.json)" "main,source" "branches left"
    call GET "/projects/$project/endpoints"
    expect_eq "$(jq -r '.endpoints | length' body.json)" 1 "endpoints left (main's)"
    # With its files back, the source is a good source again.
    mv "nl/pg/$source_id/data.lost" "nl/pg/$source_id/data"
    ready_branch "{\"branch\":{\"name\":\"fine\",\"parent_id\":\"$source_id\"},\"endpoints\":[{\"type\":\"read_write\"}]}"
    expect_eq "$(psql "$branch_uri" -XAtc 'select count(*) from t')" 10 "a branch from the source"
    stop_neon_local
}

for t in t_a_branch_a_restore_reads_cannot_be_deleted_until_it_is_done \
         t_snapshots_and_servers_a_job_needs_are_locked_until_it_is_done t_a_branch_in_error_can_be_deleted; do
    run_test "$t"
done
