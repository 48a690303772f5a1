# The neon module and target safety, against neon-local and its real
# PostgreSQL servers (helpers from 90-neon-local.sh).

# Points drctl at a neon-local the test started, as at any Neon API.
use_api() {
    export NEON_API_KEY=$(cat nl/api-key) NEON_API_HOST=$URL
}

# A project made over HTTP; sets project.
make_project() {
    curl -s -o created.json -X POST -H "Authorization: Bearer $NEON_API_KEY" -d '{"project":{"name":"p"}}' "$URL/projects"
    project=$(jq -r .project.id created.json)
    for op in $(jq -r '.operations[].id' created.json); do wait_operation "$project" "$op" "$NEON_API_KEY"; done
}

t_every_neon_function_against_neon_local() {
    chmod 755 .
    start_neon_local
    use_api
    dr run neon-tour
    expect_rc 0
    head -1 err | grep -q "^target: Neon API at $URL" || fail "the first line does not name the target: $(head -1 err)"
    run=$(run_id)
    expect_eq "$(jq -r .target.kind "$(rundir drctl-audit "$run")/run.json")" cloud "run.json target"
    expect_eq "$(jq -r .target.api_host "$(rundir drctl-audit "$run")/run.json")" "$URL" "run.json api_host"
    # Every call journaled with its status, waits with their polls.
    [ "$(count_events "$run" neon)" -gt 40 ] || fail "neon events: $(count_events "$run" neon)"
    [ "$(count_events "$run" neon-wait)" -gt 5 ] || fail "neon-wait events: $(count_events "$run" neon-wait)"
    made=$(journal "$run" | jq -c 'select(.kind == "neon" and .data.method == "POST" and .data.path == "/projects")
                                   | [.data.status, (.data.operations | length)]')
    [ "$made" = "[201,2]" ] ||
        fail "the project creation is not journaled with its operations"
    # The key and the role passwords are nowhere in the trail.
    ! grep -rqF "$NEON_API_KEY" drctl-audit out err || fail "the API key leaked"
    grep -ho 'npg_[A-Za-z0-9]*\|"password":"[^"]*"' nl/state.json | sed 's/.*"password":"//; s/"$//' | sort -u > passwords
    while read -r pw; do
        [ -n "$pw" ] && ! grep -rqF "$pw" drctl-audit out err || fail "a role password leaked into the trail"
    done < passwords
    # The project is gone, as the runbook asked.
    api GET /projects "$NEON_API_KEY"
    expect_eq "$(jq '.projects | length' body.json)" 0 "projects left"
    stop_neon_local
}

t_fifty_changes_under_faults_end_exactly_as_intended() {
    chmod 755 .
    start_neon_local
    use_api
    make_project
    stop_neon_local
    start_neon_local --faults rate=0.15,kinds=429+500+503+reset+slow,seed=11
    use_api
    dr run neon-churn -p "project=$project"
    expect_rc 0
    grep -q "fault:" nl.err || fail "no fault was injected"
    run=$(run_id)
    retried=$(journal "$run" | jq -s '[.[] | select(.kind == "neon") | .data.retries] | add')
    [ "$retried" -gt 5 ] || fail "retries recorded: $retried"
    stop_neon_local
    # Checked on the state itself, with no faults in the way.
    start_neon_local
    use_api
    for _ in $(seq 1 100); do
        api GET "/projects/$project/branches" "$NEON_API_KEY"
        [ "$(jq '[.branches[] | select(.current_state != "ready")] | length' body.json)" = 0 ] && break
        sleep 0.2
    done
    expected="c21,c22,c23,c24,c25,c26,c27,c28,c29,c30,main"
    expect_eq "$(jq -r '[.branches[].name] | sort | join(",")' body.json)" "$expected" "branches after the churn"
    expect_eq "$(jq '[.branches[].name] | length' body.json)" 11 "no duplicates"
    stop_neon_local
}

t_api_failures_are_clear_and_leave_the_run_resumable() {
    chmod 755 .
    start_neon_local
    use_api
    # Unknown project: named, exit 1, the run failed and resumable.
    dr run neon-get -p project=no-such-project
    expect_rc 1
    expect_in err "project no-such-project not found"
    expect_eq "$(run_status "$(run_id)")" failed
    expect_eq "$(journal "$(run_id)" | jq -s '[.[] | select(.kind == "neon")][0].data.status')" 404 "the 404 journaled"
    rm -rf drctl-audit
    # A refused key: said so, not retried.
    NEON_API_KEY=not-the-key dr run neon-get -p project=x
    expect_rc 1
    expect_in err "the API key was refused"
    expect_eq "$(journal "$(run_id)" | jq -s '[.[] | select(.kind == "neon")][0].data.retries')" 0 "retries on 401"
    ! grep -rqF not-the-key drctl-audit out err || fail "the refused key leaked"
    rm -rf drctl-audit
    stop_neon_local
    # Malformed JSON: an error naming the call, no crash.
    start_neon_local --faults rate=1,kinds=garbage,seed=1
    use_api
    dr run neon-get -p project=x
    expect_rc 1
    expect_in err "GET /projects/x answered 200 with malformed JSON"
    rm -rf drctl-audit
    stop_neon_local
    # Nobody listening: a clear message after the retries.
    NEON_API_HOST=http://127.0.0.1:9/api/v2 dr run neon-get -p project=x
    expect_rc 1
    expect_in err "cannot reach the Neon API at http://127.0.0.1:9/api/v2"
}

t_plan_reads_but_never_writes() {
    chmod 755 .
    start_neon_local
    use_api
    make_project
    dr plan neon-get -p "project=$project"
    expect_rc 0
    expect_in out "read project p"
    dr plan neon-get -p "project=$project" -p mode=post
    expect_rc 1
    expect_in out "refused in plan mode"
    api GET /projects "$NEON_API_KEY"
    expect_eq "$(jq -r '[.projects[].name] | join(",")' body.json)" p "projects after the plans"
    stop_neon_local
}

t_no_target_is_refused_and_nothing_is_done() {
    unset NEON_API_KEY NEON_API_HOST DRCTL_LOCAL
    dr run neon-get -p project=x
    expect_rc 2
    expect_in err "no target was chosen"
    expect_in err "--local"
    expect_in err "NEON_API_KEY"
    [ ! -e drctl-audit ] || fail "the refused run created the audit trail"
    [ ! -e .drctl ] || fail "the refused run started neon-local"
    # Runbooks that do not use Neon need no target.
    mkdir d
    dr run hold -p dir="$PWD/d" --approve promote
    expect_rc 0
}

t_local_starts_neon_local_once_and_resume_keeps_the_target() {
    chmod 755 .
    unset NEON_API_KEY NEON_API_HOST
    dr --local run neon-get -p project=nope
    expect_rc 1
    expect_in err "starting neon-local in $PWD/.drctl/neon-local"
    head -1 <(grep -v '^starting neon-local' err) | grep -q "^target: neon-local (rehearsal), http://127.0.0.1:" ||
        fail "no target line: $(head -3 err)"
    pid=$(cat .drctl/neon-local.pid)
    kill -0 "$pid" || fail "neon-local is not running after the command"
    run=$(run_id)
    expect_eq "$(jq -r .target.kind "$(rundir drctl-audit "$run")/run.json")" local "run.json target"
    # Reused, not started again.
    DRCTL_LOCAL=1 dr resume "$run"
    expect_rc 1
    expect_not_in err "starting neon-local"
    expect_eq "$(cat .drctl/neon-local.pid)" "$pid" "the same neon-local"
    # A resume must not switch to the cloud silently.
    NEON_API_KEY=k dr resume "$run"
    expect_rc 2
    expect_in err "this run was started on neon-local (--local)"
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    ! kill -0 "$pid" 2>/dev/null || fail "neon-local did not stop"
}

for t in t_every_neon_function_against_neon_local t_fifty_changes_under_faults_end_exactly_as_intended \
         t_api_failures_are_clear_and_leave_the_run_resumable t_plan_reads_but_never_writes \
         t_no_target_is_refused_and_nothing_is_done t_local_starts_neon_local_once_and_resume_keeps_the_target; do
    run_test "$t"
done
