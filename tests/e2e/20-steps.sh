# Step outcomes: retries, timeouts, outputs, failures and cleanup, resume.

t_a_transient_failure_is_retried_with_backoff() {
    dr run flaky -p dir="$PWD" -p mode=retry
    expect_rc 0
    id=$(run_id)
    expect_eq "$(cat work-attempts)" 3 "attempts"
    expect_eq "$(count_events "$id" step-retry work)" 2 "retry events"
    expect_eq "$(jq -r '.steps[0].outputs.attempts' "$(rundir drctl-audit "$id")/state.json")" 3
}

t_a_step_past_its_timeout_fails_exit_1() {
    dr run flaky -p dir="$PWD" -p mode=timeout
    expect_rc 1
    expect_in err "step 'work' failed: timed out after 1.0s"
    id=$(run_id)
    expect_eq "$(step_state "$id" work)" failed
    expect_eq "$(run_status "$id")" failed
}

t_outputs_that_json_cannot_carry_fail_the_step_by_name() {
    dr run flaky -p dir="$PWD" -p mode=badoutput
    expect_rc 1
    expect_in err "outputs.callback: a function cannot be saved as JSON"
}

t_a_sandbox_escape_fails_the_step_and_nothing_else() {
    dr run flaky -p dir="$PWD" -p mode=escape
    expect_rc 1
    expect_in err "'io' is not available to runbooks"
    expect_eq "$(step_state "$(run_id)" work)" failed
}

t_always_steps_run_after_a_failure_and_again_after_resume() {
    dr run flaky -p dir="$PWD" -p mode=fail
    expect_rc 1
    expect_in err "the cause is not fixed yet"
    expect_in err "drctl resume"
    id=$(run_id)
    expect_eq "$(cat cleanup-runs)" 1 "cleanup after the failure"
    expect_eq "$(step_state "$id" cleanup)" done
    touch fixed
    dr resume "$id"
    expect_rc 0
    expect_eq "$(run_status "$id")" done
    expect_eq "$(cat cleanup-runs)" 2 "cleanup runs again at its place"
    expect_eq "$(count_events "$id" step-reset cleanup)" 1
    # ctx.ending tells the cleanup why it runs: after the failure, then at
    # its place; and for an abort.
    expect_eq "$(tr '\n' , < cleanup-endings)" "failed,nil," "ctx.ending"
    rm -f fixed cleanup-endings
    dr run flaky -p dir="$PWD" -p mode=fail --run-id to-abort
    expect_rc 1
    dr abort to-abort
    expect_rc 0
    expect_eq "$(tr '\n' , < cleanup-endings)" "failed,aborted," "ctx.ending of an abort"
}

t_resume_of_a_finished_run_is_refused() {
    dr run flaky -p dir="$PWD" -p mode=retry
    expect_rc 0
    dr resume "$(run_id)"
    expect_rc 2
    expect_in err "is already done"
}

t_a_changed_runbook_is_refused_on_resume_unless_allowed() {
    mkdir rb
    cp "$TEST_RUNBOOKS/flaky.lua" rb/
    set +e; "$DRCTL" --runbooks rb run flaky -p dir="$PWD" -p mode=fail >out 2>err; rc=$?; set -e
    expect_rc 1
    id=$(run_id)
    echo "-- edited" >> rb/flaky.lua
    touch fixed
    set +e; "$DRCTL" --runbooks rb resume "$id" >out 2>err; rc=$?; set -e
    expect_rc 2
    expect_in err "changed since run $id started"
    expect_in err "--allow-runbook-change"
    expect_eq "$(count_events "$id" run-resumed)" 0 "nothing recorded by the refusal"
    set +e; "$DRCTL" --runbooks rb resume "$id" --allow-runbook-change >out 2>err; rc=$?; set -e
    expect_rc 0
    expect_eq "$(count_events "$id" runbook-changed)" 1
    expect_eq "$(jq -r 'select(.kind == "runbook-changed") | .data.allowed_by' "$(rundir drctl-audit "$id")/journal.jsonl")" \
              "Test Operator <test@example.org>"
}

t_secret_params_never_reach_terminal_or_files() {
    mkdir rb
    cat > rb/secretive.lua <<'LUA'
local dr = require "dr"
return runbook {
  name = "secretive", version = "1", summary = "uses a secret",
  params = { token = { type = "string", secret = true, required = true } },
  steps = {
    { name = "use", run = function(ctx)
        dr.log("calling with", ctx.params.token)
        dr.exec({ "echo", ctx.params.token })
        return { echoed = ctx.params.token, uri = "postgresql://u:pw-in-uri-77@h/db" }
      end },
    { name = "fail", run = function(ctx) dr.fail("bad token " .. ctx.params.token) end },
  },
}
LUA
    set +e
    "$DRCTL" --runbooks rb -v run secretive -p token=S3CR3T-d1stinct >out 2>err; rc=$?
    "$DRCTL" --runbooks rb plan secretive -p token=S3CR3T-d1stinct >>out 2>>err
    "$DRCTL" --runbooks rb status "$(run_id)" >>out 2>>err
    "$DRCTL" --runbooks rb status "$(run_id)" --json >>out 2>>err
    set -e
    expect_rc 1
    expect_in err "bad token <redacted>"
    ! grep -r "S3CR3T-d1stinct" out err drctl-audit || fail "the secret leaked"
    ! grep -r "pw-in-uri-77" out err drctl-audit || fail "a URI password leaked"
    expect_in drctl-audit/runs/*/*/*/*/run.json '"token":	"<redacted>"'
}

t_dr_exec_is_journaled_with_its_exit_code() {
    dr run flaky -p dir="$PWD" -p mode=retry
    id=$(run_id)
    expect_eq "$(jq -r 'select(.kind == "exec") | .data.code' "$(rundir drctl-audit "$id")/journal.jsonl" | sort -u)" 0
    expect_eq "$(jq -r 'select(.kind == "exec") | .data.argv[0]' "$(rundir drctl-audit "$id")/journal.jsonl" | sort -u)" sh
}

t_the_journal_is_gapless_and_state_matches_it() {
    dr run hold -p dir="$PWD" --approve promote
    expect_rc 0
    id=$(run_id)
    jq -s '[.[].seq] == [range(1; length + 1)]' "$(rundir drctl-audit "$id")/journal.jsonl" | grep -q true ||
        fail "seq is not gapless"
    expect_eq "$(jq -r .journal_seq "$(rundir drctl-audit "$id")/state.json")" \
              "$(jq -s 'map(select(.kind | test("^(step|run)-"))) | last | .seq' "$(rundir drctl-audit "$id")/journal.jsonl")"
    expect_eq "$(jq -r '[.steps[].state] | join(",")' "$(rundir drctl-audit "$id")/state.json")" done,done,done,done
}

for t in t_a_transient_failure_is_retried_with_backoff t_a_step_past_its_timeout_fails_exit_1 \
         t_outputs_that_json_cannot_carry_fail_the_step_by_name t_a_sandbox_escape_fails_the_step_and_nothing_else \
         t_always_steps_run_after_a_failure_and_again_after_resume t_resume_of_a_finished_run_is_refused \
         t_a_changed_runbook_is_refused_on_resume_unless_allowed t_secret_params_never_reach_terminal_or_files \
         t_dr_exec_is_journaled_with_its_exit_code t_the_journal_is_gapless_and_state_matches_it; do
    run_test "$t"
done
