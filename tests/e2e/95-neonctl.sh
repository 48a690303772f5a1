# Contract tests: the official Neon CLI (neonctl) against neon-local.

NEONCTL=$ROOT/tests/contract/node_modules/.bin/neonctl

neonctl() { # args...: JSON in neon.json, exit code in rc
    set +e
    timeout 120 "$NEONCTL" --api-host "$URL" --api-key "$key" --output json --no-analytics "$@" >neon.json 2>neon.err
    rc=$?
    set -e
}

# neonctl prints no operations: wait until every branch of the project is
# ready (or fail on one in error).
wait_branches_ready() { # PROJECT
    for _ in $(seq 1 240); do
        api GET "/projects/$1/branches" "$key"
        jq -e '[.branches[].current_state] | any(. == "error")' body.json >/dev/null &&
            fail "a branch is in error: $(jq -c '[.branches[] | {name, current_state}]' body.json)"
        jq -e '[.branches[].current_state] | all(. == "ready")' body.json >/dev/null && return 0
        sleep 0.25
    done
    fail "branches still not ready: $(jq -c '[.branches[] | {name, current_state}]' body.json)"
}

t_neonctl_drives_neon_local() {
    chmod 755 .
    start_neon_local
    key=$(cat nl/api-key)
    neonctl projects list
    expect_rc 0
    expect_eq "$(jq -c .projects neon.json)" "[]" "projects at first"
    neonctl projects create --name contract
    expect_rc 0
    project=$(jq -r .project.id neon.json)
    expect_eq "$(jq -r .project.name neon.json)" contract
    wait_branches_ready "$project"
    uri=$(jq -r '.connection_uris[0].connection_uri' neon.json)
    psql "$uri" -Xqc "create table booking (id int primary key); insert into booking select generate_series(1, 30)"
    neonctl projects list
    expect_eq "$(jq -r '.projects[].name' neon.json)" contract "projects list"
    # A branch at head, then listed and read back.
    neonctl branches create --project-id "$project" --name b1
    expect_rc 0
    wait_branches_ready "$project"
    neonctl branches list --project-id "$project"
    expect_eq "$(jq -r '[.[].name] | sort | join(",")' neon.json)" "b1,main" "branches list"
    neonctl branches get --project-id "$project" b1
    expect_eq "$(jq -r .name neon.json)" b1 "branches get"
    # A branch at a past instant.
    sleep 1
    instant=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    sleep 1
    psql "$uri" -Xqc "delete from booking"
    neonctl branches create --project-id "$project" --name at-instant --parent "$instant"
    expect_rc 0
    expect_eq "$(jq -r .branch.parent_timestamp neon.json)" "$instant" "parent_timestamp"
    at_instant=$(jq -r .branch.id neon.json)
    wait_branches_ready "$project"
    api GET "/projects/$project/connection_uri?branch_id=$at_instant&database_name=neondb&role_name=neondb_owner" "$key"
    expect_eq "$(psql "$(jq -r .uri body.json)" -XAtc 'select count(*) from booking')" 30 "rows at the instant"
    # Restore main in place to the instant from its own history, the damaged
    # state kept under another name; main's connection string still works.
    neonctl branches restore --project-id "$project" main "^self@$instant" --preserve-under-name main-damaged
    expect_rc 0
    # neonctl prints the backup branch from the restored branch's parent_id.
    cp neon.json restored.json
    expect_eq "$(jq -r '[.. | objects | select(.name? == "main-damaged") | .name] | first' restored.json)" main-damaged \
        "the backup branch neonctl printed"
    wait_branches_ready "$project"
    expect_eq "$(psql "$uri" -XAtc 'select count(*) from booking')" 30 "main restored, same connection string"
    neonctl branches get --project-id "$project" main-damaged
    expect_rc 0
    expect_eq "$(jq -r .name neon.json)" main-damaged "the preserved branch"
    # Set default, connection string, delete.
    neonctl branches set-default --project-id "$project" b1
    expect_rc 0
    api GET "/projects/$project/branches" "$key"
    expect_eq "$(jq -r '.branches[] | select(.default) | .name' body.json)" b1 "default branch"
    neonctl connection-string --project-id "$project" main
    expect_rc 0
    api GET "/projects/$project/branches/$(jq -r '.branches[] | select(.name == "main") | .id' body.json)/roles/neondb_owner/reveal_password" "$key"
    expect_in neon.json "neondb_owner:$(jq -r .password body.json)@"
    neonctl branches delete --project-id "$project" at-instant
    expect_rc 0
    sleep 1
    neonctl branches list --project-id "$project"
    expect_eq "$(jq -r '[.[].name] | sort | join(",")' neon.json)" "b1,main,main-damaged" "after delete"
    # neonctl has no --include-deleted: the API lists the deleted branch, recoverable.
    api GET "/projects/$project/branches?include_deleted=true" "$key"
    expect_eq "$(jq -r '.branches[] | select(.name == "at-instant") | .recovery.deletion_method' body.json)" user \
        "the deleted branch, listed with include_deleted"
    stop_neon_local
}

if [ -x "$NEONCTL" ]; then
    run_test t_neonctl_drives_neon_local
else
    echo "FAIL t_neonctl_drives_neon_local: neonctl is not installed (tests/contract/install.sh)"
    TESTS_FAILED=$((TESTS_FAILED + 1))
    FAILED_NAMES+=(t_neonctl_drives_neon_local)
fi
