# neon-local: the server itself (address, key, errors, shutdown).

NEON_LOCAL=$BIN_DIR/neon-local

# Starts neon-local on a free port; sets URL, and PID for the test to stop.
start_neon_local() { # extra args...
    # A restart must not read the previous instance's ready line before the
    # new one has truncated the file.
    rm -f nl.out nl.err
    "$NEON_LOCAL" --data "$PWD/nl" --listen 127.0.0.1:0 "$@" > nl.out 2> nl.err &
    PID=$!
    # A restart starts every branch's server again first: seconds, under load.
    for _ in $(seq 1 600); do
        kill -0 $PID 2>/dev/null || break
        grep -q "^neon-local: http://" nl.out 2>/dev/null && break
        sleep 0.05
    done
    URL=$(sed -n 's/^neon-local: //p' nl.out)
    [ -n "$URL" ] || { tail -5 nl.err >&2; fail "neon-local did not print its ready line"; }
}

# Stops it and checks it exited cleanly; its stderr is shown when not.
stop_neon_local() { # [signal]
    kill -"${1:-TERM}" "$PID"
    local code=0
    wait "$PID" || code=$?
    if [ "$code" -ne 0 ]; then
        sed 's/^/    nl.err| /' nl.err | tail -40 >&2
        fail "neon-local exited with $code"
    fi
}

api() { # METHOD PATH [KEY]: body in body.json, status in status
    status=$(curl -s -o body.json -w '%{http_code}' -X "$1" ${3:+-H "Authorization: Bearer $3"} "$URL$2")
}

t_neon_local_generates_a_private_key_and_checks_it() {
    start_neon_local
    expect_eq "$(stat -c %a nl/api-key)" 600 "api-key mode"
    key=$(cat nl/api-key)
    api GET /projects
    expect_eq "$status" 401 "no key"
    expect_eq "$(jq -r 'has("code") and has("message") and has("request_id")' body.json)" true "error shape"
    api GET /projects wrong-key
    expect_eq "$status" 401 "wrong key"
    api GET /projects "$key"
    expect_eq "$status" 200 "right key"
    expect_eq "$(jq -c .projects body.json)" "[]"
    api GET /no-such-thing "$key"
    expect_eq "$status" 404
    expect_eq "$(jq -r .message body.json)" "neon-local does not serve GET /no-such-thing"
    kill -TERM $PID
    set +e; wait $PID; code=$?; set -e
    expect_eq "$code" 0 "exit code on SIGTERM"
    # The same key on restart.
    start_neon_local
    api GET /projects "$key"
    expect_eq "$status" 200 "key kept across restarts"
    kill -INT $PID
    set +e; wait $PID; code=$?; set -e
    expect_eq "$code" 0 "exit code on SIGINT"
}

t_neon_local_takes_the_key_given() {
    NEON_LOCAL_API_KEY=from-env start_neon_local
    api GET /projects from-env
    expect_eq "$status" 200
    [ ! -e nl/api-key ] || fail "a key file was written although a key was given"
    kill $PID
    wait $PID || true
    start_neon_local --api-key from-flag
    api GET /projects from-flag
    expect_eq "$status" 200
    kill $PID
    wait $PID || true
}

t_faults_are_injected_by_kind_and_reproducibly_by_seed() {
    start_neon_local --faults rate=1,kinds=503
    key=$(cat nl/api-key)
    api GET /projects "$key"
    expect_eq "$status" 503 "503 fault"
    expect_in body.json "fault injected"
    kill $PID; wait $PID || true
    start_neon_local --faults rate=1,kinds=429
    headers=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $key" "$URL/projects")
    echo "$headers" | grep -qi '^retry-after: 1' || fail "no Retry-After on 429: $headers"
    kill $PID; wait $PID || true
    start_neon_local --faults rate=1,kinds=reset
    set +e; curl -s -o /dev/null -H "Authorization: Bearer $key" "$URL/projects"; code=$?; set -e
    expect_eq "$code" 52 "curl: empty reply (connection dropped)"
    kill $PID; wait $PID || true
    # The same seed gives the same faults, request after request.
    for run in 1 2; do
        start_neon_local --faults rate=0.5,kinds=500+503,seed=7
        for i in $(seq 1 20); do api GET /projects "$key"; echo "$status"; done > "statuses.$run"
        kill $PID; wait $PID || true
    done
    expect_eq "$(cat statuses.1 | tr '\n' ' ')" "$(cat statuses.2 | tr '\n' ' ')" "sequences"
    grep -q 200 statuses.1 && grep -qE '50[03]' statuses.1 || fail "rate 0.5 gave no mix: $(cat statuses.1 | tr '\n' ' ')"
    set +e; "$NEON_LOCAL" --data nl --listen 127.0.0.1:0 --faults rate=2 >out 2>err; rc=$?; set -e
    expect_rc 2
    expect_in err "rate must be a number from 0 to 1"
}

t_neon_local_refuses_anything_but_loopback() {
    for addr in 0.0.0.0:4444 192.168.1.10:4444 example.org:80 4444; do
        set +e; "$NEON_LOCAL" --data nl --listen "$addr" >out 2>err; rc=$?; set -e
        expect_rc 2
        expect_in err "neon-local"
    done
    expect_in err "must be 127.0.0.1:PORT"
    set +e; "$NEON_LOCAL" --data nl --listen 0.0.0.0:4444 >out 2>err; set -e
    expect_in err "loopback address only"
}

# Polls an operation until it leaves `running` (or 30 s pass).
wait_operation() { # PROJECT OPERATION KEY
    for _ in $(seq 1 120); do
        api GET "/projects/$1/operations/$2" "$3"
        [ "$(jq -r .operation.status body.json)" != running ] && return 0
        sleep 0.25
    done
    fail "operation $2 is still running"
}

# Waits for each operation listed in FILE, and checks that it finished.
operations_finish() { # PROJECT FILE KEY WHAT
    local op
    for op in $(jq -r '.operations[].id' "$2"); do
        wait_operation "$1" "$op" "$3"
        expect_eq "$(jq -r .operation.status body.json)" finished "$4 ($(jq -r .operation.error body.json))"
    done
}

t_a_project_is_a_real_postgresql_that_survives_a_restart() {
    chmod 755 .
    start_neon_local
    key=$(cat nl/api-key)
    status=$(curl -s -o created.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d '{"project":{"name":"salons","history_retention_seconds":86400}}' "$URL/projects")
    expect_eq "$status" 201 "create"
    for field in project connection_uris roles databases operations branch endpoints; do
        expect_eq "$(jq "has(\"$field\")" created.json)" true "response has $field"
    done
    expect_eq "$(jq -r '[.operations[].status] | unique | join(",")' created.json)" running "operations at first"
    expect_eq "$(jq -r .branch.current_state created.json)" init
    expect_eq "$(jq -r .project.history_retention_seconds created.json)" 86400
    expect_eq "$(stat -c %a nl/state.json)" 600 "state.json mode"
    project=$(jq -r .project.id created.json)
    for op in $(jq -r '.operations[].id' created.json); do
        wait_operation "$project" "$op" "$key"
        expect_eq "$(jq -r .operation.status body.json)" finished "operation $op"
    done
    uri=$(jq -r '.connection_uris[0].connection_uri' created.json)
    expect_eq "$(psql "$uri" -XAtc 'select current_user || 1')" neondb_owner1 "connected as the owner"
    psql "$uri" -Xqc "create table salon (id int primary key); insert into salon select generate_series(1, 20)"
    api GET "/projects/$project" "$key"
    expect_eq "$status" 200
    expect_eq "$(jq -r .project.name body.json)" salons
    ! jq -e '.project | has("_branches")' body.json >/dev/null || fail "internal fields are shown"
    stop_neon_local
    ! psql "$uri" -XAtc 'select 1' >/dev/null 2>&1 || fail "PostgreSQL still runs after neon-local stopped"
    start_neon_local
    expect_eq "$(psql "$uri" -XAtc 'select count(*) from salon')" 20 "rows after a restart"
    api GET /projects "$key"
    expect_eq "$(jq -r '.projects | length' body.json)" 1
    stop_neon_local
}

# Creates a project and waits for it; sets project, key, uri.
ready_project() {
    key=$(cat nl/api-key)
    curl -s -o created.json -X POST -H "Authorization: Bearer $key" -d '{"project":{"name":"p"}}' "$URL/projects"
    project=$(jq -r .project.id created.json)
    for op in $(jq -r '.operations[].id' created.json); do wait_operation "$project" "$op" "$key"; done
    uri=$(jq -r '.connection_uris[0].connection_uri' created.json)
}

t_a_branch_at_head_is_a_real_copy() {
    chmod 755 .
    start_neon_local
    ready_project
    psql "$uri" -Xqc "create table booking (id int primary key); insert into booking select generate_series(1, 100)"
    status=$(curl -s -o branch.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d '{"branch":{"name":"backup-2026-01-11-143000"},"endpoints":[{"type":"read_write"}]}' \
             "$URL/projects/$project/branches")
    expect_eq "$status" 201 "create branch"
    expect_eq "$(jq -r .branch.current_state branch.json)" init
    expect_eq "$(jq -r .branch.parent_id branch.json)" "$(jq -r .branch.id created.json)" "parent"
    operations_finish "$project" branch.json "$key" "operation"
    branch_uri=$(jq -r '.connection_uris[0].connection_uri' branch.json)
    [ "$branch_uri" != "$uri" ] || fail "the branch has the parent's connection string"
    expect_eq "$(psql "$branch_uri" -XAtc 'select count(*) from booking')" 100 "rows on the branch"
    psql "$branch_uri" -Xqc "delete from booking"
    expect_eq "$(psql "$uri" -XAtc 'select count(*) from booking')" 100 "rows on main after deleting on the branch"
    api GET "/projects/$project/branches" "$key"
    expect_eq "$(jq -r '[.branches[].name] | sort | join(",")' body.json)" "backup-2026-01-11-143000,main"
    api GET "/projects/$project/branches/$(jq -r .branch.id branch.json)" "$key"
    expect_eq "$(jq -r .branch.current_state body.json)" ready
    # The same name twice, an unknown parent, a point in time: refused.
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d '{"branch":{"name":"main"}}' "$URL/projects/$project/branches")
    expect_eq "$status" 409 "duplicate name"
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d '{"branch":{"parent_id":"br-nope"}}' "$URL/projects/$project/branches")
    expect_eq "$status" 404 "unknown parent"
    stop_neon_local
}

t_a_branch_at_a_past_instant_is_real_pitr() {
    chmod 755 .
    start_neon_local
    ready_project
    psql "$uri" -Xqc "create table booking (id int primary key); insert into booking select generate_series(1, 100)"
    sleep 1
    before_incident=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    sleep 1
    psql "$uri" -Xqc "delete from booking where id <= 40"      # the incident
    psql "$uri" -Xqc "insert into booking values (1000)"       # a write after it
    status=$(curl -s -o branch.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d "{\"branch\":{\"name\":\"restore\",\"parent_timestamp\":\"$before_incident\"},\"endpoints\":[{\"type\":\"read_write\"}]}" \
             "$URL/projects/$project/branches")
    expect_eq "$status" 201 "create a branch in the past"
    # While its operations run, a change to it is refused with 423, as on Neon.
    call DELETE "/projects/$project/branches/$(jq -r .branch.id branch.json)"
    expect_eq "$status" 423 "delete while the branch is being made"
    expect_in body.json "operation in progress"
    operations_finish "$project" branch.json "$key" "operation"
    branch_uri=$(jq -r '.connection_uris[0].connection_uri' branch.json)
    expect_eq "$(psql "$branch_uri" -XAtc 'select count(*) from booking')" 100 "rows at the instant"
    expect_eq "$(psql "$branch_uri" -XAtc 'select count(*) from booking where id = 1000')" 0 "the later write"
    expect_eq "$(psql "$uri" -XAtc 'select count(*) from booking')" 61 "main is untouched"
    psql "$branch_uri" -Xqc "insert into booking values (2000)" || fail "the branch is not writable (not promoted)"
    # Instants that cannot be reached are refused with a message.
    for body in '{"branch":{"parent_timestamp":"2999-01-01T00:00:00Z"}}' \
                '{"branch":{"parent_timestamp":"2001-01-01T00:00:00Z"}}' \
                '{"branch":{"parent_timestamp":"yesterday"}}' \
                '{"branch":{"parent_lsn":"nope"}}'; do
        status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" -d "$body" \
                 "$URL/projects/$project/branches")
        expect_eq "$status" 400 "status for $body"
    done
    expect_eq "$(jq -r .message body.json)" "parent_lsn must be an LSN like 0/1A2B3C4"
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d '{"branch":{"parent_lsn":"FF/0"}}' "$URL/projects/$project/branches")
    expect_eq "$status" 400 "an LSN beyond the end of WAL"
    expect_in body.json "is beyond the end of branch"
    # An LSN that exists: the branch has the rows written before it.
    lsn=$(psql "$uri" -XAtc "select pg_current_wal_lsn()")
    psql "$uri" -Xqc "insert into booking values (3000)"
    ready_branch "{\"branch\":{\"name\":\"at-lsn\",\"parent_lsn\":\"$lsn\"},\"endpoints\":[{\"type\":\"read_write\"}]}"
    expect_eq "$(psql "$branch_uri" -XAtc 'select count(*) from booking where id = 3000')" 0 "the write after the LSN"
    expect_eq "$(psql "$branch_uri" -XAtc 'select count(*) from booking where id = 1000')" 1 "the write before the LSN"
    stop_neon_local
}

# Creates a branch and waits for it; sets branch_id and branch_uri.
ready_branch() { # JSON body
    curl -s -o branch.json -X POST -H "Authorization: Bearer $key" -d "$1" "$URL/projects/$project/branches"
    for op in $(jq -r '.operations[].id' branch.json); do wait_operation "$project" "$op" "$key"; done
    branch_id=$(jq -r .branch.id branch.json)
    branch_uri=$(jq -r '.connection_uris[0].connection_uri // empty' branch.json)
}

call() { # METHOD PATH: status and body.json
    status=$(curl -s -o body.json -w '%{http_code}' -X "$1" -H "Authorization: Bearer $key" "$URL$2")
}

t_branch_deletion_rules_and_set_as_default() {
    chmod 755 .
    start_neon_local
    ready_project
    main_id=$(jq -r .branch.id created.json)
    ready_branch '{"branch":{"name":"b1"},"endpoints":[{"type":"read_write"}]}'
    b1=$branch_id
    ready_branch "{\"branch\":{\"name\":\"b2\",\"parent_id\":\"$b1\"},\"endpoints\":[{\"type\":\"read_write\"}]}"
    b2=$branch_id
    b2_uri=$branch_uri
    call DELETE "/projects/$project/branches/$main_id"
    expect_eq "$status" 400 "delete the default branch"
    expect_in body.json "default branch and cannot be deleted"
    call DELETE "/projects/$project/branches/$b1"
    expect_eq "$status" 400 "delete a branch with children"
    expect_in body.json "has child branches"
    # Deleted for good at once (without hard_delete it is kept for recovery: 88-neon-local-recover.sh).
    call DELETE "/projects/$project/branches/$b2?hard_delete=true"
    expect_eq "$status" 200 "delete a leaf"
    expect_eq "$(jq -r '[.operations[].status] | unique | join(",")' body.json)" running
    operations_finish "$project" body.json "$key" "operation"
    call GET "/projects/$project/branches/$b2"
    expect_eq "$status" 404 "the deleted branch"
    [ ! -e "nl/pg/$b2" ] || fail "the deleted branch's files are still there"
    ! psql "$b2_uri" -XAtc 'select 1' >/dev/null 2>&1 || fail "the deleted branch's server still answers"
    call POST "/projects/$project/branches/$b1/set_as_default"
    expect_eq "$status" 200 "set as default"
    call GET "/projects/$project/branches"
    expect_eq "$(jq -r '[.branches[] | select(.default) | .name] | join(",")' body.json)" b1 "the default now"
    call DELETE "/projects/$project/branches/nope"
    expect_eq "$status" 404
    stop_neon_local
}

t_restore_in_place_keeps_the_connection_string_and_preserves() {
    chmod 755 .
    start_neon_local
    ready_project
    main_id=$(jq -r .branch.id created.json)
    psql "$uri" -Xqc "create table booking (id int primary key); insert into booking select generate_series(1, 50)"
    sleep 1
    before=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    sleep 1
    psql "$uri" -Xqc "delete from booking"
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d "{\"source_branch_id\":\"$main_id\",\"source_timestamp\":\"$before\",\"preserve_under_name\":\"main-before-restore\"}" \
             "$URL/projects/$project/branches/$main_id/restore")
    expect_eq "$status" 200 "restore (error: $(jq -r .message body.json))"
    operations_finish "$project" body.json "$key" "restore operation"
    expect_eq "$(psql "$uri" -XAtc 'select count(*) from booking')" 50 "rows back, same connection string"
    call GET "/projects/$project/branches"
    expect_eq "$(jq -r '[.branches[].name] | sort | join(",")' body.json)" "main,main-before-restore"
    expect_eq "$(jq -r '.branches[] | select(.name == "main") | .id' body.json)" "$main_id" "main keeps its id"
    kept=$(jq -r '.branches[] | select(.name == "main-before-restore") | .id' body.json)
    expect_eq "$(jq -r '.branches[] | select(.name == "main-before-restore") | .current_state' body.json)" ready
    [ -d "nl/pg/$kept/data" ] || fail "the preserved state's data is not kept"
    psql "$uri" -Xqc "insert into booking values (51)" || fail "the restored branch is not writable"
    # Restoring from itself without preserving is refused.
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d "{\"source_branch_id\":\"$main_id\",\"source_timestamp\":\"$before\"}" \
             "$URL/projects/$project/branches/$main_id/restore")
    expect_eq "$status" 400 "restore from itself without preserve_under_name"
    stop_neon_local
}

t_a_data_only_backup_branch_can_be_branched_and_restored_from() {
    chmod 755 .
    start_neon_local
    ready_project
    main_id=$(jq -r .branch.id created.json)
    psql "$uri" -Xqc "create table salon (id int primary key); insert into salon select generate_series(1, 12)"
    ready_branch '{"branch":{"name":"backup-2026-01-11-143000"}}'
    backup=$branch_id
    expect_eq "$(jq -r '.endpoints | length' branch.json)" 0 "a backup has no compute"
    psql "$uri" -Xqc "delete from salon"
    ready_branch "{\"branch\":{\"name\":\"verify\",\"parent_id\":\"$backup\"},\"endpoints\":[{\"type\":\"read_write\"}]}"
    expect_eq "$(psql "$branch_uri" -XAtc 'select count(*) from salon')" 12 "rows on a branch of the backup"
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d "{\"source_branch_id\":\"$backup\",\"preserve_under_name\":\"main-old\"}" \
             "$URL/projects/$project/branches/$main_id/restore")
    expect_eq "$status" 200 "restore main from the backup ($(jq -r .message body.json))"
    operations_finish "$project" body.json "$key" "restore"
    expect_eq "$(psql "$uri" -XAtc 'select count(*) from salon')" 12 "rows on main after the restore"
    stop_neon_local
}

t_branch_lists_search_sort_page_count_and_update() {
    chmod 755 .
    start_neon_local
    ready_project
    for name in backup-3 backup-1 other backup-4 backup-2; do
        ready_branch "{\"branch\":{\"name\":\"$name\"}}"
    done
    call GET "/projects/$project/branches?search=backup-&sort_by=name&sort_order=asc"
    expect_eq "$(jq -r '[.branches[].name] | join(",")' body.json)" "backup-1,backup-2,backup-3,backup-4" "search, sorted"
    # Two at a time, following the cursor to the end.
    names="" cursor=""
    for page in 1 2 3 4; do
        call GET "/projects/$project/branches?search=backup-&sort_by=name&sort_order=desc&limit=2${cursor:+&cursor=$cursor}"
        names="$names$(jq -r '[.branches[].name] | join(",")' body.json),"
        cursor=$(jq -r '.pagination.next // empty' body.json)
        [ -n "$cursor" ] || break
    done
    expect_eq "$names" "backup-4,backup-3,backup-2,backup-1," "pages"
    expect_eq "$page" 2 "pages needed"
    call GET "/projects/$project/branches/count?search=backup-"
    expect_eq "$(jq -r .count body.json)" 4 "count"
    call GET "/projects/$project/branches?sort_by=size"
    expect_eq "$status" 400 "bad sort_by"
    b1=$(curl -s -H "Authorization: Bearer $key" "$URL/projects/$project/branches?search=backup-1" | jq -r '.branches[0].id')
    status=$(curl -s -o body.json -w '%{http_code}' -X PATCH -H "Authorization: Bearer $key" \
             -d '{"branch":{"protected":true}}' "$URL/projects/$project/branches/$b1")
    expect_eq "$status" 200 "protect"
    call DELETE "/projects/$project/branches/$b1"
    expect_eq "$status" 400 "delete a protected branch"
    expect_in body.json "is protected"
    status=$(curl -s -o body.json -w '%{http_code}' -X PATCH -H "Authorization: Bearer $key" \
             -d '{"branch":{"name":"other"}}' "$URL/projects/$project/branches/$b1")
    expect_eq "$status" 409 "rename to a taken name"
    status=$(curl -s -o body.json -w '%{http_code}' -X PATCH -H "Authorization: Bearer $key" \
             -d '{"branch":{"name":"kept-forever"}}' "$URL/projects/$project/branches/$b1")
    expect_eq "$(jq -r .branch.name body.json)" kept-forever "renamed"
    stop_neon_local
}

t_projects_update_and_delete() {
    chmod 755 .
    start_neon_local
    ready_project
    ready_branch '{"branch":{"name":"b1"},"endpoints":[{"type":"read_write"}]}'
    status=$(curl -s -o body.json -w '%{http_code}' -X PATCH -H "Authorization: Bearer $key" \
             -d '{"project":{"name":"renamed","history_retention_seconds":2592000}}' "$URL/projects/$project")
    expect_eq "$status" 200 "update"
    expect_eq "$(jq -r '.project.name + " " + (.project.history_retention_seconds|tostring)' body.json)" "renamed 2592000"
    status=$(curl -s -o body.json -w '%{http_code}' -X PATCH -H "Authorization: Bearer $key" \
             -d '{"project":{"history_retention_seconds":-1}}' "$URL/projects/$project")
    expect_eq "$status" 400 "bad retention"
    call DELETE "/projects/$project"
    expect_eq "$status" 200 "delete"
    call GET "/projects/$project"
    expect_eq "$status" 404 "gone at once"
    # Its servers stop; its data and record stay for the recovery period
    # (their end is 88-neon-local-recover.sh's).
    for _ in $(seq 1 100); do
        ! psql "$uri" -XAtc 'select 1' >/dev/null 2>&1 && ! psql "$branch_uri" -XAtc 'select 1' >/dev/null 2>&1 && break
        sleep 0.1
    done
    ! psql "$uri" -XAtc 'select 1' >/dev/null 2>&1 || fail "the project's server still answers"
    ! psql "$branch_uri" -XAtc 'select 1' >/dev/null 2>&1 || fail "a branch's server still answers"
    expect_eq "$(ls nl/pg | wc -l)" 2 "data kept for recovery"
    expect_eq "$(jq -r '.projects[0]._deleted' nl/state.json)" true "the project's record is kept, deleted"
    stop_neon_local
}

t_endpoints_suspend_and_start_for_real() {
    chmod 755 .
    start_neon_local
    ready_project
    endpoint=$(jq -r '.endpoints[0].id' created.json)
    psql "$uri" -Xqc "create table t (x int); insert into t values (7)"
    call POST "/projects/$project/endpoints/$endpoint/suspend"
    expect_eq "$status" 200 "suspend"
    for op in $(jq -r '.operations[].id' body.json); do wait_operation "$project" "$op" "$key"; done
    call GET "/projects/$project/endpoints/$endpoint"
    expect_eq "$(jq -r .endpoint.current_state body.json)" idle
    ! psql "$uri" -XAtc 'select 1' >/dev/null 2>&1 || fail "a suspended endpoint still answers"
    # Suspended stays suspended across a restart of neon-local.
    stop_neon_local
    start_neon_local
    ! psql "$uri" -XAtc 'select 1' >/dev/null 2>&1 || fail "the restart woke a suspended endpoint"
    call POST "/projects/$project/endpoints/$endpoint/start"
    for op in $(jq -r '.operations[].id' body.json); do wait_operation "$project" "$op" "$key"; done
    call GET "/projects/$project/endpoints/$endpoint"
    expect_eq "$(jq -r .endpoint.current_state body.json)" active
    expect_eq "$(psql "$uri" -XAtc 'select x from t')" 7 "data after start"
    call POST "/projects/$project/endpoints/ep-nope/start"
    expect_eq "$status" 404
    stop_neon_local
}

t_snapshots_are_taken_listed_restored_and_deleted() {
    chmod 755 .
    start_neon_local
    ready_project
    main_id=$(jq -r .branch.id created.json)
    psql "$uri" -Xqc "create table client (id int primary key); insert into client select generate_series(1, 25)"
    sleep 1
    instant=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    sleep 1
    psql "$uri" -Xqc "insert into client select generate_series(26, 30)"
    call POST "/projects/$project/branches/$main_id/snapshot?name=nightly&expires_at=2999-01-01T00:00:00Z"
    expect_eq "$status" 200 "snapshot now ($(jq -r .message body.json))"
    snap=$(jq -r .snapshot.id body.json)
    for op in $(jq -r '.operations[].id' body.json); do wait_operation "$project" "$op" "$key"; done
    call POST "/projects/$project/branches/$main_id/snapshot?name=before&timestamp=$instant"
    expect_eq "$status" 200 "snapshot at an instant"
    before=$(jq -r .snapshot.id body.json)
    operations_finish "$project" body.json "$key" "snapshot at an instant"
    call GET "/projects/$project/snapshots"
    expect_eq "$(jq -r '[.snapshots[].name] | sort | join(",")' body.json)" "before,nightly" "snapshots"
    expect_eq "$(jq -r '.snapshots[] | select(.name == "nightly") | .expires_at' body.json)" 2999-01-01T00:00:00Z
    call GET "/projects/$project/branches"
    expect_eq "$(jq -r '[.branches[].name] | join(",")' body.json)" main "snapshots are not branches"
    psql "$uri" -Xqc "delete from client"
    # To a new branch.
    status=$(curl -s -o restored.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d '{"name":"from-nightly"}' "$URL/projects/$project/snapshots/$snap/restore")
    expect_eq "$status" 200 "restore to a new branch"
    for op in $(jq -r '.operations[].id' restored.json); do wait_operation "$project" "$op" "$key"; done
    expect_eq "$(psql "$(jq -r '.connection_uris[0].connection_uri' restored.json)" -XAtc 'select count(*) from client')" 30
    # Into main, finalized: same connection string, the instant's 25 rows.
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d "{\"target_branch_id\":\"$main_id\",\"finalize_restore\":true}" "$URL/projects/$project/snapshots/$before/restore")
    expect_eq "$status" 200 "restore into main ($(jq -r .message body.json))"
    operations_finish "$project" body.json "$key" "restore into main"
    expect_eq "$(psql "$uri" -XAtc 'select count(*) from client')" 25 "main after the restore"
    status=$(curl -s -o body.json -w '%{http_code}' -X PATCH -H "Authorization: Bearer $key" \
             -d '{"snapshot":{"name":"renamed"}}' "$URL/projects/$project/snapshots/$snap")
    expect_eq "$(jq -r .snapshot.name body.json)" renamed
    call DELETE "/projects/$project/snapshots/$snap"
    expect_eq "$status" 202 "delete"
    for op in $(jq -r '.operations[].id' body.json); do wait_operation "$project" "$op" "$key"; done
    call GET "/projects/$project/snapshots"
    expect_eq "$(jq -r '[.snapshots[].name] | join(",")' body.json)" before "after delete"
    [ ! -e "nl/pg/$snap" ] || fail "the deleted snapshot's data is still there"
    call POST "/projects/$project/branches/$main_id/snapshot?expires_at=2001-01-01T00:00:00Z"
    expect_eq "$status" 400 "expires_at in the past"
    stop_neon_local
}

t_scheduled_snapshots_are_taken_and_expire() {
    chmod 755 .
    # An hour of the schedule clock every second: hourly snapshots kept 2 h.
    start_neon_local --clock-speed 3600
    ready_project
    main_id=$(jq -r .branch.id created.json)
    status=$(curl -s -o body.json -w '%{http_code}' -X PUT -H "Authorization: Bearer $key" \
             -d '{"schedule":[{"frequency":"hourly","retention_seconds":7200}]}' \
             "$URL/projects/$project/branches/$main_id/backup_schedule")
    expect_eq "$status" 200 "put schedule"
    call GET "/projects/$project/branches/$main_id/backup_schedule"
    expect_eq "$(jq -c '.schedule' body.json)" '[{"frequency":"hourly","retention_seconds":7200}]' "schedule"
    # A snapshot is a base backup of main, made by neon-local's one worker,
    # which also deletes the expired ones. On a loaded machine making one
    # takes seconds (2 to 4 s measured here), more than the 1 s period and
    # the 2 s retention: the worker then takes the latest slot only, and a
    # snapshot is often due by the time it is made, so how many there are at
    # once depends on the machine's speed. What does not: slots are taken,
    # each with its retention, the first one expires, and there are never
    # more than retention / period + 1 at once (a slot is taken up to a
    # period after its instant, and its retention counts from then). The
    # loop waits for that, for about a minute at most.
    seen=() first_gone=false
    for _ in $(seq 1 240); do
        call GET "/projects/$project/snapshots"
        jq -c '[.snapshots[] | select(.manual == false)]' body.json > scheduled.json
        count=$(jq length scheduled.json)
        [ "$count" -le 3 ] || fail "$count scheduled snapshots at once: $(jq -c '[.[].name]' scheduled.json)"
        for name in $(jq -r '.[].name' scheduled.json); do
            [[ " ${seen[*]} " == *" $name "* ]] && continue
            seen+=("$name")
            # main-hourly-YYYY-MM-DD-HHMM: its slot on the schedule clock.
            slot=$(date -u -d "$(echo "${name#main-hourly-}" | sed -E 's/^(.{10})-(..)(..)$/\1 \2:\3/')" +%s) ||
                fail "scheduled snapshot name $name"
            expires=$(jq -r --arg n "$name" '.[] | select(.name == $n) | .expires_at' scheduled.json)
            [ "$(date -u -d "$expires" +%s)" -ge $((slot + 7200)) ] ||
                fail "snapshot $name expires at $expires, before its slot + 7200 s"
        done
        if [ "${#seen[@]}" -ge 1 ] && ! jq -e --arg n "${seen[0]}" 'any(.[]; .name == $n)' scheduled.json >/dev/null; then
            first_gone=true
        fi
        [ "${#seen[@]}" -ge 2 ] && $first_gone && break
        sleep 0.25
    done
    [ "${#seen[@]}" -ge 2 ] || fail "scheduled snapshots taken in a minute: ${seen[*]}"
    $first_gone || fail "the first scheduled snapshot, ${seen[0]}, did not expire in a minute"
    status=$(curl -s -o body.json -w '%{http_code}' -X PUT -H "Authorization: Bearer $key" \
             -d '{"schedule":[{"frequency":"every-minute"}]}' "$URL/projects/$project/branches/$main_id/backup_schedule")
    expect_eq "$status" 400 "bad frequency"
    stop_neon_local
}

t_roles_and_databases_are_real() {
    chmod 755 .
    start_neon_local
    ready_project
    main_id=$(jq -r .branch.id created.json)
    host=$(echo "$uri" | sed -E 's#.*@([^/]+)/.*#\1#') # the endpoint's own address
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d '{"role":{"name":"app"}}' "$URL/projects/$project/branches/$main_id/roles")
    expect_eq "$status" 201 "create role"
    expect_eq "$(jq -r '.operations[0].status' body.json)" finished
    first=$(jq -r .role.password body.json)
    expect_eq "$(psql "postgresql://app:$first@$host/neondb?sslmode=require" -XAtc 'select current_user')" app "log in"
    call POST "/projects/$project/branches/$main_id/roles/app/reset_password"
    expect_eq "$status" 200 "reset password"
    second=$(jq -r .role.password body.json)
    [ "$second" != "$first" ] || fail "the password did not change"
    ! psql "postgresql://app:$first@$host/neondb?sslmode=require" -XAtc 'select 1' >/dev/null 2>&1 || fail "the old password still works"
    api GET "/projects/$project/branches/$main_id/roles/app/reveal_password" "$key"
    expect_eq "$(jq -r .password body.json)" "$second" "revealed"
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d '{"database":{"name":"reports","owner_name":"app"}}' "$URL/projects/$project/branches/$main_id/databases")
    expect_eq "$status" 201 "create database"
    expect_eq "$(psql "postgresql://app:$second@$host/reports?sslmode=require" -XAtc 'select current_database()')" reports
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d '{"role":{"name":"x\"; drop table t; --"}}' "$URL/projects/$project/branches/$main_id/roles")
    expect_eq "$status" 400 "a name with a quote"
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d '{"role":{"name":"app"}}' "$URL/projects/$project/branches/$main_id/roles")
    expect_eq "$status" 409 "a role that exists"
    call DELETE "/projects/$project/branches/$main_id/roles/app"
    expect_eq "$status" 409 "delete a role that owns a database"
    expect_in body.json "owns database reports"
    call DELETE "/projects/$project/branches/$main_id/databases/reports"
    expect_eq "$status" 200 "delete the database ($(jq -r .message body.json))"
    expect_eq "$(jq -r .database.name body.json)" reports
    expect_eq "$(psql "$uri" -XAtc "select count(*) from pg_database where datname = 'reports'")" 0 "database dropped"
    call DELETE "/projects/$project/branches/$main_id/roles/app"
    expect_eq "$status" 200 "delete the role"
    ! psql "postgresql://app:$second@$host/neondb?sslmode=require" -XAtc 'select 1' >/dev/null 2>&1 || fail "the deleted role logs in"
    call GET "/projects/$project/branches/$main_id/roles"
    expect_eq "$(jq -r '[.roles[].name] | join(",")' body.json)" neondb_owner "roles left"
    call DELETE "/projects/$project/branches/$main_id/databases/reports"
    expect_eq "$status" 404 "delete it again"
    stop_neon_local
}

t_endpoints_are_created_and_deleted_on_data_only_branches() {
    chmod 755 .
    start_neon_local
    ready_project
    psql "$uri" -Xqc "create table t (x int); insert into t values (41)"
    ready_branch '{"branch":{"name":"cold"}}'
    cold=$branch_id
    [ -z "$branch_uri" ] || fail "a branch made without endpoints has a connection string"
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d "{\"endpoint\":{\"branch_id\":\"$cold\",\"type\":\"read_write\"}}" "$URL/projects/$project/endpoints")
    expect_eq "$status" 201 "create an endpoint ($(jq -r .message body.json))"
    endpoint=$(jq -r .endpoint.id body.json)
    expect_eq "$(jq -r '.operations[0].status' body.json)" running "its operation at first"
    operations_finish "$project" body.json "$key" "start"
    call GET "/projects/$project/connection_uri?branch_id=$cold&database_name=neondb&role_name=neondb_owner"
    cold_uri=$(jq -r .uri body.json)
    expect_eq "$(psql "$cold_uri" -XAtc 'select x from t')" 41 "the branch's data through its new endpoint"
    call GET "/projects/$project/branches/$cold/endpoints"
    expect_eq "$(jq -r '.endpoints[0].current_state' body.json)" active
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d "{\"endpoint\":{\"branch_id\":\"$cold\",\"type\":\"read_write\"}}" "$URL/projects/$project/endpoints")
    expect_eq "$status" 409 "a second read_write endpoint"
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d '{"endpoint":{"type":"read_write"}}' "$URL/projects/$project/endpoints")
    expect_eq "$status" 400 "no branch_id"
    call DELETE "/projects/$project/endpoints/$endpoint"
    expect_eq "$status" 200 "delete the endpoint"
    for op in $(jq -r '.operations[].id' body.json); do wait_operation "$project" "$op" "$key"; done
    call GET "/projects/$project/endpoints/$endpoint"
    expect_eq "$status" 404 "the deleted endpoint"
    ! psql "$cold_uri" -XAtc 'select 1' >/dev/null 2>&1 || fail "the deleted endpoint's server still answers"
    call GET "/projects/$project/branches/$cold"
    expect_eq "$(jq -r .branch.current_state body.json)" ready "the branch stays"
    [ -d "nl/pg/$cold/data" ] || fail "the branch's data went with its endpoint"
    stop_neon_local
}

t_a_snapshot_restore_is_previewed_then_finalized() {
    chmod 755 .
    start_neon_local
    ready_project
    main_id=$(jq -r .branch.id created.json)
    endpoint=$(jq -r '.endpoints[0].id' created.json)
    psql "$uri" -Xqc "create table client (id int primary key); insert into client select generate_series(1, 25)"
    call POST "/projects/$project/branches/$main_id/snapshot?name=good"
    snap=$(jq -r .snapshot.id body.json)
    for op in $(jq -r '.operations[].id' body.json); do wait_operation "$project" "$op" "$key"; done
    psql "$uri" -Xqc "delete from client where id > 5"
    status=$(curl -s -o restored.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d '{"name":"preview"}' "$URL/projects/$project/snapshots/$snap/restore")
    expect_eq "$status" 200 "restore for a preview"
    for op in $(jq -r '.operations[].id' restored.json); do wait_operation "$project" "$op" "$key"; done
    preview=$(jq -r .branch.id restored.json)
    expect_eq "$(psql "$(jq -r '.connection_uris[0].connection_uri' restored.json)" -XAtc 'select count(*) from client')" 25 "preview"
    expect_eq "$(psql "$uri" -XAtc 'select count(*) from client')" 5 "main untouched by the preview"
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d '{"name":"main-damaged"}' "$URL/projects/$project/branches/$preview/finalize_restore")
    expect_eq "$status" 200 "finalize ($(jq -r .message body.json))"
    operations_finish "$project" body.json "$key" "finalize"
    expect_eq "$(psql "$uri" -XAtc 'select count(*) from client')" 25 "main's connection string, the snapshot's data"
    call GET "/projects/$project/branches"
    expect_eq "$(jq -r '.branches[] | select(.name == "main") | .id' body.json)" "$preview" "main is the restored branch"
    expect_eq "$(jq -r '.branches[] | select(.default) | .name' body.json)" main "the default"
    expect_eq "$(jq -r '.branches[] | select(.name == "main-damaged") | .id' body.json)" "$main_id" "the original, renamed"
    call GET "/projects/$project/endpoints/$endpoint"
    expect_eq "$(jq -r .endpoint.branch_id body.json)" "$preview" "the endpoint moved"
    call POST "/projects/$project/branches/$preview/finalize_restore"
    expect_eq "$status" 400 "finalize twice"
    # The move survives a restart.
    stop_neon_local
    start_neon_local
    expect_eq "$(psql "$uri" -XAtc 'select count(*) from client')" 25 "after a restart"
    stop_neon_local
}

t_bad_project_requests_change_nothing() {
    start_neon_local
    key=$(cat nl/api-key)
    for body in '{"project":{"pg_version":14}}' '{"project":{"name":7}}' '{"nope":1}' '{not json' \
                '{"project":{"history_retention_seconds":99999999}}'; do
        status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" -d "$body" "$URL/projects")
        expect_eq "$status" 400 "status for $body"
        expect_eq "$(jq -r 'has("message")' body.json)" true "error shape for $body"
    done
    api GET /projects "$key"
    expect_eq "$(jq -r '.projects | length' body.json)" 0 "projects after bad requests"
    api GET /projects/no-such-project "$key"
    expect_eq "$status" 404
    expect_eq "$(jq -r .message body.json)" "project no-such-project not found"
    stop_neon_local
}

for t in t_endpoints_are_created_and_deleted_on_data_only_branches t_a_snapshot_restore_is_previewed_then_finalized t_roles_and_databases_are_real t_scheduled_snapshots_are_taken_and_expire t_snapshots_are_taken_listed_restored_and_deleted t_endpoints_suspend_and_start_for_real t_projects_update_and_delete t_branch_lists_search_sort_page_count_and_update t_faults_are_injected_by_kind_and_reproducibly_by_seed t_a_data_only_backup_branch_can_be_branched_and_restored_from t_restore_in_place_keeps_the_connection_string_and_preserves t_branch_deletion_rules_and_set_as_default t_a_branch_at_a_past_instant_is_real_pitr t_a_branch_at_head_is_a_real_copy t_a_project_is_a_real_postgresql_that_survives_a_restart t_bad_project_requests_change_nothing \
         t_neon_local_generates_a_private_key_and_checks_it t_neon_local_takes_the_key_given \
         t_neon_local_refuses_anything_but_loopback; do
    run_test "$t"
done
