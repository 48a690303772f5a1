# neon-local: deleted branches and projects stay recoverable for Neon's 7
# days (on neon-local's clock), as the Neon API spec says: listed with
# include_deleted / recoverable, brought back by .../recover with their ids
# and connection strings; hard_delete deletes at once. Helpers from
# 90-neon-local.sh and 91-branch-ttl.sh.

# An error in Neon's shape (GeneralError: code and message) with STATUS.
rec_expect_error() { # STATUS WHAT
    expect_eq "$status" "$1" "$2 ($(jq -r .message body.json))"
    expect_eq "$(jq -r '(.code | type) + " " + (.message | type)' body.json)" "string string" "error shape: $2"
}

# The deleted branch BRANCH_ID as GET .../branches?include_deleted=true
# lists it (empty when it is not listed).
rec_listed() { # BRANCH_ID
    call GET "/projects/$project/branches?include_deleted=true"
    expect_eq "$status" 200 "include_deleted list"
    jq -c --arg b "$1" '.branches[] | select(.id == $b)' body.json
}

# Starts an endpoint and waits for it to serve.
rec_start() { # ENDPOINT_ID
    call POST "/projects/$project/endpoints/$1/start"
    expect_eq "$status" 200 "start endpoint $1 ($(jq -r .message body.json))"
    cp body.json started.json
    operations_finish "$project" started.json "$key" "start of $1"
}

# Waits (up to 30 s) until the server behind URI no longer answers.
rec_wait_down() { # URI WHAT
    for _ in $(seq 1 120); do
        psql "$1" -XAtc 'select 1' >/dev/null 2>&1 || return 0
        sleep 0.25
    done
    fail "$2: its server still answers"
}

# The state a refused recovery must leave alone.
rec_state() {
    jq -cS 'del(.projects[]._operations)' nl/state.json
}

t_a_deleted_branch_is_kept_and_recovered_with_its_connection_string() {
    chmod 755 .
    start_neon_local
    ready_project
    psql "$uri" -Xqc "create table booking (id int primary key); insert into booking select generate_series(1, 30)"
    ready_branch '{"branch":{"name":"dev"},"endpoints":[{"type":"read_write"}]}'
    dev=$branch_id
    dev_uri=$branch_uri
    endpoint=$(jq -c '.endpoints[0] | {id, host}' branch.json)
    endpoint_id=$(jq -r '.endpoints[0].id' branch.json)
    psql "$dev_uri" -Xqc "insert into booking select generate_series(31, 42)"
    call DELETE "/projects/$project/branches/$dev"
    expect_eq "$status" 200 "delete ($(jq -r .message body.json))"
    cp body.json deleted.json
    expect_eq "$(jq -r .branch.recovery.deletion_method deleted.json)" user "deletion_method in the answer"
    expect_eq "$(jq -r '[.operations[].action] | sort | join(",")' deleted.json)" "delete_timeline,suspend_compute" "operations"
    operations_finish "$project" deleted.json "$key" "the deletion"
    # Gone for every ordinary read, its server stopped, its data kept.
    call GET "/projects/$project/branches/$dev"
    rec_expect_error 404 "GET the deleted branch"
    call GET "/projects/$project/branches"
    expect_eq "$(jq -r '[.branches[].name] | join(",")' body.json)" main "the list"
    call GET "/projects/$project/endpoints/$endpoint_id"
    expect_eq "$status" 404 "its endpoint"
    call GET "/projects/$project/branches/$dev/roles"
    expect_eq "$status" 404 "its roles"
    ! psql "$dev_uri" -XAtc 'select 1' >/dev/null 2>&1 || fail "the deleted branch's server still answers"
    [ -d "nl/pg/$dev/data" ] || fail "the deleted branch's data folder is gone"
    # Listed on request, with when and until when.
    listed=$(rec_listed "$dev")
    [ -n "$listed" ] || fail "not listed with include_deleted=true: $(cat body.json)"
    expect_eq "$(echo "$listed" | jq -r .recovery.deletion_method)" user "deletion_method"
    deleted_at=$(echo "$listed" | jq -r .recovery.deleted_at)
    until_at=$(echo "$listed" | jq -r .recovery.recoverable_until)
    expect_eq "$(( $(date -d "$until_at" +%s) - $(date -d "$deleted_at" +%s) ))" 604800 "recoverable for 7 days"
    [ $(( $(date -d "$deleted_at" +%s) - $(date +%s) )) -le 5 ] && [ $(( $(date +%s) - $(date -d "$deleted_at" +%s) )) -le 60 ] ||
        fail "deleted_at $deleted_at is not now"
    call GET "/projects/$project/branches?include_deleted=maybe"
    rec_expect_error 400 "include_deleted=maybe"
    # Recovered: same id, same endpoint (idle, on its host and port), no recovery info.
    call POST "/projects/$project/branches/$dev/recover"
    expect_eq "$status" 200 "recover ($(jq -r .message body.json))"
    cp body.json recovered.json
    expect_eq "$(jq -r .branch.id recovered.json)" "$dev" "the same id"
    expect_eq "$(jq -r '.branch | has("recovery")' recovered.json)" false "no recovery info once recovered"
    expect_eq "$(jq -c '.endpoints[0] | {id, host}' recovered.json)" "$endpoint" "the same endpoint"
    expect_eq "$(jq -r '.endpoints[0].current_state' recovered.json)" idle "the endpoint comes back idle"
    call GET "/projects/$project/branches/$dev"
    expect_eq "$status" 200 "GET after the recovery"
    expect_eq "$(jq -r .branch.name body.json)" dev "its name"
    [ -z "$(rec_listed "$dev" | jq -r '.recovery // empty')" ] || fail "still listed as deleted"
    call GET "/projects/$project/branches/$dev/roles"
    expect_eq "$(jq -r '[.roles[].name] | join(",")' body.json)" neondb_owner "its roles are back"
    # Its old connection string reads its rows once the endpoint is started.
    rec_start "$endpoint_id"
    expect_eq "$(psql "$dev_uri" -XAtc 'select count(*) from booking')" 42 "rows through the old connection string"
    # What was never deleted, or never was, is not recoverable.
    before=$(rec_state)
    call POST "/projects/$project/branches/$dev/recover"
    rec_expect_error 404 "recover a branch that is not deleted"
    expect_in body.json "not deleted"
    call POST "/projects/$project/branches/br-never-was-00000000/recover"
    rec_expect_error 404 "recover an unknown branch"
    call POST "/projects/no-such-project-1234/branches/$dev/recover"
    rec_expect_error 404 "recover in an unknown project"
    expect_eq "$(rec_state)" "$before" "the state after refused recoveries"
    stop_neon_local
}

t_a_branch_its_ttl_deleted_is_recoverable_and_loses_its_ttl() {
    chmod 755 .
    start_neon_local
    ready_project
    psql "$uri" -Xqc "create table t (id int primary key); insert into t select generate_series(1, 7)"
    due=$(ttl_in 6)
    ready_branch "{\"branch\":{\"name\":\"preview\",\"expires_at\":\"$due\"},\"endpoints\":[{\"type\":\"read_write\"}]}"
    preview=$branch_id
    preview_uri=$branch_uri
    endpoint_id=$(jq -r '.endpoints[0].id' branch.json)
    ttl_wait_gone "$preview"
    listed=$(rec_listed "$preview")
    expect_eq "$(echo "$listed" | jq -r .recovery.deletion_method)" ttl "deletion_method of an expired branch"
    expect_eq "$(echo "$listed" | jq -r .expires_at)" "$due" "listed with the expires_at it had"
    [ -d "nl/pg/$preview/data" ] || fail "the expired branch's data folder is gone"
    rec_wait_down "$preview_uri" "the expired branch"
    call POST "/projects/$project/branches/$preview/recover"
    expect_eq "$status" 200 "recover ($(jq -r .message body.json))"
    expect_eq "$(jq -r '.branch | has("expires_at") or has("ttl_interval_seconds")' body.json)" false "no TTL in the answer"
    call GET "/projects/$project/branches/$preview"
    expect_eq "$(jq -r '.branch | has("expires_at") or has("ttl_interval_seconds")' body.json)" false "no TTL after"
    rec_start "$endpoint_id"
    expect_eq "$(psql "$preview_uri" -XAtc 'select count(*) from t')" 7 "rows through the old connection string"
    # Not deleted again by its old expiry.
    sleep 2
    call GET "/projects/$project/branches/$preview"
    expect_eq "$status" 200 "still there"
    stop_neon_local
}

t_when_the_period_ends_the_data_goes_for_good() {
    chmod 755 .
    # A week of the schedule clock in about twelve seconds.
    start_neon_local --clock-speed 50000
    ready_project
    ready_branch '{"branch":{"name":"brief"},"endpoints":[{"type":"read_write"}]}'
    brief=$branch_id
    call DELETE "/projects/$project/branches/$brief"
    expect_eq "$status" 200 "delete ($(jq -r .message body.json))"
    [ -n "$(rec_listed "$brief")" ] || fail "not recoverable at first"
    for _ in $(seq 1 240); do
        [ -e "nl/pg/$brief" ] || break
        sleep 0.25
    done
    [ ! -e "nl/pg/$brief" ] || fail "the data of the branch is still there after its period"
    [ -z "$(rec_listed "$brief")" ] || fail "still listed after its period"
    expect_eq "$(jq -r --arg b "$brief" '[.projects[]._deleted_branches[]? | select(.id == $b)] | length' nl/state.json)" 0 \
        "its record"
    call POST "/projects/$project/branches/$brief/recover"
    rec_expect_error 404 "recover after the period"
    # A project too: its record and every data folder go.
    main_id=$(jq -r .branch.id created.json)
    call DELETE "/projects/$project"
    expect_eq "$status" 200 "delete the project"
    call GET "/projects?recoverable=true"
    expect_eq "$(jq -r '[.projects[].id] | join(",")' body.json)" "$project" "recoverable at first"
    for _ in $(seq 1 240); do
        [ "$(jq -r '.projects | length' nl/state.json)" = 0 ] && [ ! -e "nl/pg/$main_id" ] && break
        sleep 0.25
    done
    expect_eq "$(jq -r '.projects | length' nl/state.json)" 0 "the project's record after its period"
    [ ! -e "nl/pg/$main_id" ] || fail "the project's data is still there after its period"
    call GET "/projects?recoverable=true"
    expect_eq "$(jq -r '.projects | length' body.json)" 0 "the recoverable list"
    call POST "/projects/$project/recover"
    rec_expect_error 404 "recover the project after its period"
    stop_neon_local
}

t_hard_delete_deletes_at_once_and_deleted_children_follow_their_rules() {
    chmod 755 .
    start_neon_local
    ready_project
    ready_branch '{"branch":{"name":"gone"},"endpoints":[{"type":"read_write"}]}'
    gone=$branch_id
    call DELETE "/projects/$project/branches/$gone?hard_delete=yes"
    rec_expect_error 400 "hard_delete=yes"
    call GET "/projects/$project/branches/$gone"
    expect_eq "$status" 200 "the branch after a refused delete"
    call DELETE "/projects/$project/branches/$gone?hard_delete=true"
    expect_eq "$status" 200 "hard delete ($(jq -r .message body.json))"
    cp body.json deleted.json
    operations_finish "$project" deleted.json "$key" "the hard delete"
    [ ! -e "nl/pg/$gone" ] || fail "the hard-deleted branch's data is still there"
    [ -z "$(rec_listed "$gone")" ] || fail "a hard-deleted branch is listed as recoverable"
    call POST "/projects/$project/branches/$gone/recover"
    rec_expect_error 404 "recover a hard-deleted branch"
    # A deleted child does not keep its parent from being deleted; it comes
    # back only once its parent is back.
    ready_branch '{"branch":{"name":"parent"}}'
    parent=$branch_id
    ready_branch "{\"branch\":{\"name\":\"child\",\"parent_id\":\"$parent\"}}"
    child=$branch_id
    call DELETE "/projects/$project/branches/$parent"
    rec_expect_error 400 "delete a parent with a live child"
    call DELETE "/projects/$project/branches/$child"
    expect_eq "$status" 200 "delete the child"
    cp body.json deleted.json
    operations_finish "$project" deleted.json "$key" "the child's deletion"
    call DELETE "/projects/$project/branches/$parent"
    expect_eq "$status" 200 "delete the parent of a deleted child ($(jq -r .message body.json))"
    cp body.json deleted.json
    operations_finish "$project" deleted.json "$key" "the parent's deletion"
    before=$(rec_state)
    call POST "/projects/$project/branches/$child/recover"
    rec_expect_error 409 "recover a child whose parent is deleted"
    expect_in body.json "recover $parent first"
    expect_eq "$(rec_state)" "$before" "the state after the refusal"
    call POST "/projects/$project/branches/$parent/recover"
    expect_eq "$status" 200 "recover the parent ($(jq -r .message body.json))"
    call POST "/projects/$project/branches/$child/recover"
    expect_eq "$status" 200 "then the child ($(jq -r .message body.json))"
    expect_eq "$(jq -r .branch.parent_id body.json)" "$parent" "the child's parent"
    # A parent deleted for good takes its deleted child with it.
    call DELETE "/projects/$project/branches/$child"
    cp body.json deleted.json
    operations_finish "$project" deleted.json "$key" "the child's deletion"
    call DELETE "/projects/$project/branches/$parent?hard_delete=true"
    expect_eq "$status" 200 "hard delete the parent ($(jq -r .message body.json))"
    for _ in $(seq 1 120); do
        [ -e "nl/pg/$child" ] || [ -e "nl/pg/$parent" ] || break
        sleep 0.25
    done
    [ ! -e "nl/pg/$child" ] && [ ! -e "nl/pg/$parent" ] || fail "the data of the parent or its deleted child is still there"
    call POST "/projects/$project/branches/$child/recover"
    rec_expect_error 404 "recover the child of a parent deleted for good"
    # A name taken meanwhile: the deleted branch does not come back over it.
    ready_branch '{"branch":{"name":"reports"}}'
    old_reports=$branch_id
    call DELETE "/projects/$project/branches/$old_reports"
    cp body.json deleted.json
    operations_finish "$project" deleted.json "$key" "the deletion of reports"
    ready_branch '{"branch":{"name":"reports"}}'
    expect_eq "$(jq -r .branch.name branch.json)" reports "a new branch takes the deleted one's name"
    new_reports=$branch_id
    before=$(rec_state)
    call POST "/projects/$project/branches/$old_reports/recover"
    rec_expect_error 409 "recover over a name taken since"
    expect_in body.json "named reports"
    expect_eq "$(rec_state)" "$before" "the state after the refusal"
    call DELETE "/projects/$project/branches/$new_reports?hard_delete=true"
    cp body.json deleted.json
    operations_finish "$project" deleted.json "$key" "the deletion of the new reports"
    call POST "/projects/$project/branches/$old_reports/recover"
    expect_eq "$status" 200 "recover once the name is free ($(jq -r .message body.json))"
    stop_neon_local
}

t_a_deleted_project_is_recovered_with_its_connection_string() {
    chmod 755 .
    start_neon_local
    ready_project
    psql "$uri" -Xqc "create table salon (id int primary key); insert into salon select generate_series(1, 25)"
    ready_branch '{"branch":{"name":"dev"},"endpoints":[{"type":"read_write"}]}'
    dev=$branch_id
    endpoints=$(curl -s -H "Authorization: Bearer $key" "$URL/projects/$project/endpoints" | jq -c '[.endpoints[] | {id, host, branch_id}] | sort_by(.id)')
    call DELETE "/projects/$project"
    expect_eq "$status" 200 "delete the project"
    deleted_at=$(jq -r .project.deleted_at body.json)
    until_at=$(jq -r .project.recoverable_until body.json)
    expect_eq "$(( $(date -d "$until_at" +%s) - $(date -d "$deleted_at" +%s) ))" 604800 "recoverable for 7 days"
    call GET "/projects/$project"
    rec_expect_error 404 "GET the deleted project"
    call GET "/projects"
    expect_eq "$(jq -r '.projects | length' body.json)" 0 "the list of live projects"
    call GET "/projects?recoverable=true"
    expect_eq "$(jq -r '[.projects[].id] | join(",")' body.json)" "$project" "the recoverable list"
    expect_eq "$(jq -r '.projects[0].deleted_at + " " + .projects[0].recoverable_until' body.json)" "$deleted_at $until_at" \
        "deleted_at and recoverable_until listed"
    call GET "/projects?recoverable=perhaps"
    rec_expect_error 400 "recoverable=perhaps"
    rec_wait_down "$uri" "the deleted project's main"
    [ -d "nl/pg/$(jq -r .branch.id created.json)/data" ] || fail "the project's data is gone"
    call POST "/projects/$project/branches/$dev/recover"
    rec_expect_error 409 "recover a branch of a deleted project"
    expect_in body.json "recover the project first"
    # 423 while its endpoints' suspensions finish: retried, as Neon's clients do.
    for _ in $(seq 1 100); do
        call POST "/projects/$project/recover"
        [ "$status" = 423 ] || break
        sleep 0.1
    done
    expect_eq "$status" 200 "recover ($(jq -r .message body.json))"
    expect_eq "$(jq -r .project.id body.json)" "$project" "the same id"
    expect_eq "$(jq -r '.project | has("deleted_at") or has("recoverable_until")' body.json)" false "no deletion times"
    expect_eq "$(jq -r '[.branches[].name] | sort | join(",")' body.json)" "dev,main" "its branches in the answer"
    call GET "/projects/$project"
    expect_eq "$status" 200 "GET after the recovery"
    call GET "/projects/$project/endpoints"
    expect_eq "$(jq -c '[.endpoints[] | {id, host, branch_id}] | sort_by(.id)' body.json)" "$endpoints" "the same endpoints"
    expect_eq "$(jq -r '[.endpoints[].current_state] | unique | join(",")' body.json)" idle "they come back idle"
    rec_start "$(jq -r '.endpoints[0].id' created.json)"
    expect_eq "$(psql "$uri" -XAtc 'select count(*) from salon')" 25 "rows through the old connection string"
    call POST "/projects/$project/recover"
    rec_expect_error 404 "recover a project that is not deleted"
    call POST "/projects/no-such-project-1234/recover"
    rec_expect_error 404 "recover an unknown project"
    stop_neon_local
}

t_what_is_deleted_stays_recoverable_across_a_restart() {
    chmod 755 .
    start_neon_local
    ready_project
    first=$project first_uri=$uri
    psql "$uri" -Xqc "create table t (id int primary key); insert into t select generate_series(1, 11)"
    ready_branch '{"branch":{"name":"side"},"endpoints":[{"type":"read_write"}]}'
    side=$branch_id side_uri=$branch_uri
    side_endpoint=$(jq -r '.endpoints[0].id' branch.json)
    call DELETE "/projects/$first/branches/$side"
    cp body.json deleted.json
    operations_finish "$first" deleted.json "$key" "the branch's deletion"
    ready_project
    second=$project second_uri=$uri
    psql "$uri" -Xqc "create table u (id int primary key); insert into u select generate_series(1, 5)"
    call DELETE "/projects/$second"
    expect_eq "$status" 200 "delete the second project"
    rec_wait_down "$second_uri" "the deleted project"
    stop_neon_local
    start_neon_local
    ! psql "$side_uri" -XAtc 'select 1' >/dev/null 2>&1 || fail "the deleted branch's server came back with neon-local"
    ! psql "$second_uri" -XAtc 'select 1' >/dev/null 2>&1 || fail "the deleted project's server came back with neon-local"
    project=$first
    [ -n "$(rec_listed "$side")" ] || fail "the deleted branch is not listed after a restart"
    call GET "/projects?recoverable=true"
    expect_eq "$(jq -r '[.projects[].id] | join(",")' body.json)" "$second" "the deleted project after a restart"
    call POST "/projects/$first/branches/$side/recover"
    expect_eq "$status" 200 "recover the branch after a restart ($(jq -r .message body.json))"
    rec_start "$side_endpoint"
    expect_eq "$(psql "$side_uri" -XAtc 'select count(*) from t')" 11 "the branch's rows"
    call POST "/projects/$second/recover"
    expect_eq "$status" 200 "recover the project after a restart ($(jq -r .message body.json))"
    project=$second
    rec_start "$(jq -r '.endpoints[0].id' created.json)"
    expect_eq "$(psql "$second_uri" -XAtc 'select count(*) from u')" 5 "the project's rows"
    expect_eq "$(psql "$first_uri" -XAtc 'select count(*) from t')" 11 "the first project was not touched"
    stop_neon_local
}

t_a_restore_that_preserves_makes_the_backup_the_parent() {
    chmod 755 .
    start_neon_local
    ready_project
    main_id=$(jq -r .branch.id created.json)
    ready_branch '{"branch":{"name":"work"},"endpoints":[{"type":"read_write"}]}'
    work=$branch_id
    ttl_send POST "/projects/$project/branches/$work/restore" \
        "{\"source_branch_id\":\"$main_id\",\"preserve_under_name\":\"work-backup\"}"
    expect_eq "$status" 200 "restore with preserve_under_name ($(jq -r .message body.json))"
    cp body.json restore.json
    operations_finish "$project" restore.json "$key" "the restore"
    call GET "/projects/$project/branches"
    backup=$(jq -r '.branches[] | select(.name == "work-backup") | .id' body.json)
    [ -n "$backup" ] || fail "no backup branch: $(cat body.json)"
    call GET "/projects/$project/branches/$work"
    expect_eq "$(jq -r .branch.parent_id body.json)" "$backup" "the restored branch's parent is its backup"
    call GET "/projects/$project/branches/$backup"
    expect_eq "$(jq -r .branch.parent_id body.json)" "$main_id" "the backup's parent is the branch's old parent"
    # As on Neon, the backup cannot be deleted while the restored branch is its child.
    call DELETE "/projects/$project/branches/$backup"
    rec_expect_error 400 "delete the backup"
    expect_in body.json "has child branches"
    stop_neon_local
}

for t in t_a_deleted_branch_is_kept_and_recovered_with_its_connection_string \
         t_a_branch_its_ttl_deleted_is_recoverable_and_loses_its_ttl t_when_the_period_ends_the_data_goes_for_good \
         t_hard_delete_deletes_at_once_and_deleted_children_follow_their_rules \
         t_a_deleted_project_is_recovered_with_its_connection_string \
         t_what_is_deleted_stays_recoverable_across_a_restart t_a_restore_that_preserves_makes_the_backup_the_parent; do
    run_test "$t"
done
