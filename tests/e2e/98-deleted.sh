# The deleted runbook, and total-loss offering a recovery, on neon-local:
# Neon keeps deleted branches and projects 7 days (helpers from 90, 96 and
# 98-scenarios).

# A branch "feature" of the salons project with an endpoint and rows of its
# own; sets feature_id and feature_uri (its connection string).
feature_branch() {
    curl -s -o made.json -X POST -H "Authorization: Bearer $key" \
        -d '{"branch":{"name":"feature"},"endpoints":[{"type":"read_write"}]}' "$URL/projects/$project/branches"
    feature_id=$(jq -r .branch.id made.json)
    for op in $(jq -r '.operations[].id' made.json); do wait_operation "$project" "$op" "$key"; done
    api GET "/projects/$project/connection_uri?branch_id=$feature_id&database_name=neondb&role_name=neondb_owner" "$key"
    feature_uri=$(jq -r .uri body.json)
    psql "$feature_uri" -Xqc "insert into client (id, name, email) values (9100, 'Feature', 'feature@example.org')"
}

delete_and_wait() { # PATH
    curl -s -o deleted.json -X DELETE -H "Authorization: Bearer $key" "$URL$1"
    for op in $(jq -r '.operations[]?.id' deleted.json); do wait_operation "$project" "$op" "$key"; done
}

t_a_deleted_branch_comes_back_on_its_old_connection_string() {
    salons_project
    feature_branch
    delete_and_wait "/projects/$project/branches/$feature_id"
    ! psql "$feature_uri" -XAtc 'select 1' >/dev/null 2>&1 || fail "the deleted branch still answers"
    # Without a terminal it stops at the confirmation, having said what was deleted.
    sc run deleted -p name=feature
    expect_rc 3
    expect_in err "branch feature ($feature_id) was deleted at"
    expect_in err "it can be recovered until"
    expect_in err "comes back with the same id and endpoints and connection strings"
    run=$(run_id)
    sc resume "$run" --approve recover
    expect_rc 0
    expect_eq "$(count_on "$feature_uri" 'select count(*) from client where id = 9100')" 1 \
        "the branch's own row, on its old connection string"
    api GET "/projects/$project/branches/$feature_id" "$key"
    expect_eq "$status" 200 "the branch by its old id"
    expect_in "$(rundir drctl-audit "$run")/report.md" "recoverable until"
    # Recovered once: a second run finds nothing deleted, and says it is there.
    sc run deleted -p name=feature --approve recover
    expect_rc 1
    expect_in err "the branch feature is not deleted: it is there ($feature_id)"
    stop_neon_local
}

t_a_deleted_project_comes_back_with_its_connection_strings() {
    salons_project
    name=$(jq -r .project.name created.json)
    before=$(count_on "$uri" 'select count(*) from booking')
    curl -s -o /dev/null -X DELETE -H "Authorization: Bearer $key" "$URL/projects/$project"
    sc run deleted -p what=project -p "name=$project" --approve recover
    expect_rc 0
    expect_in err "project $name ($project) was deleted at"
    expect_eq "$(count_on "$uri" 'select count(*) from booking')" "$before" "bookings on the old connection string"
    stop_neon_local
}

t_what_is_not_recoverable_is_refused_with_the_reason() {
    salons_project
    sc run deleted -p name=never-there --approve recover
    expect_rc 1
    expect_in err "no deleted branch named or with id never-there can be recovered in project $project"
    expect_in err "Recoverable now: none"
    sc run deleted -p what=project -p name=no-such-project --approve recover
    expect_rc 1
    expect_in err "no deleted project named or with id no-such-project can be recovered"
    stop_neon_local
}

t_a_recovery_killed_while_it_waits_resumes_without_asking_twice() {
    # every answer 1.5 s late: the recovery cannot be over before the kill
    SALONS_NEON_LOCAL_ARGS="--faults rate=1,kinds=slow" salons_project
    before=$(count_on "$uri" 'select count(*) from booking')
    curl -s -o /dev/null -X DELETE -H "Authorization: Bearer $key" "$URL/projects/$project"
    set +e
    "$DRCTL" --runbooks "$SCENARIOS" run deleted -p what=project -p "name=$project" --approve recover \
        >out 2>err </dev/null &
    local pid=$!
    set -e
    # Killed in its slowest step (the recovery and the wait for the servers).
    for _ in $(seq 1 400); do
        grep -qs '"step-started","step":"recover"' drctl-audit/runs/*/*/*/*/journal.jsonl && break
        sleep 0.02
    done
    sleep "${KILL_AFTER:-0.1}"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    run=$(run_id)
    grep -qs '"step-started","step":"recover"' "$(rundir drctl-audit "$run")/journal.jsonl" || fail "recover never started"
    ! grep -qs '"step-done","step":"recover"' "$(rundir drctl-audit "$run")/journal.jsonl" || fail "recover ended before the kill"
    # Not idempotent: the resume asks again before it goes on ...
    sc resume "$run"
    expect_rc 3
    expect_in err "recover"
    # ... and, approved, recovers once (or finds the project back already).
    sc resume "$run" --approve recover
    expect_rc 0
    expect_eq "$(count_on "$uri" 'select count(*) from booking')" "$before" "bookings after the resumed recovery"
    api GET "/projects?recoverable=true" "$key"
    expect_eq "$(jq '.projects | length' body.json)" 0 "projects still deleted"
    stop_neon_local
}

project_names() {
    api GET /projects "$key"
    jq -r '[.projects[].name] | sort | join(",")' body.json
}

t_total_loss_offers_the_recovery_of_a_deleted_project_before_its_export() {
    salons_project
    before=$(count_on "$uri" 'select count(*) from booking')
    sc run export -p "dest=$PWD/exports" --approve retention
    expect_rc 0
    curl -s -o /dev/null -X DELETE -H "Authorization: Bearer $key" "$URL/projects/$project"
    # The export's project is found recoverable: the recovery is offered first.
    sc run total-loss -p "source=$PWD/exports" -p new_project=salons-reborn --approve restore
    expect_rc 3
    expect_in err "can be recovered until"
    expect_in err "comes back with its branches, endpoints and connection strings"
    expect_in err "-p use_export=true"
    run=$(newest_run)
    sc resume "$run" --approve recover-project
    expect_rc 0
    expect_eq "$(count_on "$uri" 'select count(*) from booking')" "$before" "bookings on the old connection string"
    expect_eq "$(project_names)" p "projects after the recovery (no export restored)"
    expect_in "$(rundir drctl-audit "$run")/journal.jsonl" '"step-done","step":"restore","data":{"outputs":{"skipped"'
    # Told to use the export, it restores it and leaves the deleted project be.
    curl -s -o /dev/null -X DELETE -H "Authorization: Bearer $key" "$URL/projects/$project"
    sc run total-loss -p "source=$PWD/exports" -p new_project=salons-reborn -p use_export=true --approve restore
    expect_rc 0
    expect_eq "$(project_names)" salons-reborn "projects after the export's restore"
    api GET "/projects?recoverable=true" "$key"
    expect_eq "$(jq -r '.projects[0].id' body.json)" "$project" "the deleted project, still recoverable"
    stop_neon_local
}

for t in t_a_deleted_branch_comes_back_on_its_old_connection_string \
         t_a_deleted_project_comes_back_with_its_connection_strings \
         t_what_is_not_recoverable_is_refused_with_the_reason \
         t_a_recovery_killed_while_it_waits_resumes_without_asking_twice \
         t_total_loss_offers_the_recovery_of_a_deleted_project_before_its_export; do
    run_test "$t"
done
