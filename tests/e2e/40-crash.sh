# Crashes, signals and locks: kill -9 inside each step, then resume.

# Starts `drctl run hold` in the background, holding STEP open.
start_held() { # STEP [extra args]
    local step=$1
    shift
    touch "hold-$step"
    setsid "$DRCTL" --runbooks "$TEST_RUNBOOKS" run hold -p dir="$PWD" --approve promote --run-id crash "$@" \
        >bg.out 2>bg.err </dev/null &
    echo $! > bg.pid
    wait_for "$step.started"
}

runs_of() { # STEP: how many times the step began
    grep -cx "$1" log || true
}

# kill -9 inside STEP, then resume; checks what ran again and what survived.
crash_inside() { # STEP IDEMPOTENT
    local step=$1 idempotent=$2
    start_held "$step"
    kill -9 "$(cat bg.pid)"
    wait "$(cat bg.pid)" 2>/dev/null || true
    rm -f "hold-$step"
    expect_eq "$(step_state crash "$step")" started "state after kill -9"
    token_before=$(jq -r '.steps[0].outputs.token // ""' $(rundir drctl-audit "crash")/state.json)
    if [ "$idempotent" = no ]; then
        dr_notty resume crash
        expect_rc 3
        expect_in err "--approve $step"
        expect_eq "$(runs_of "$step")" 1 "a half-done non-idempotent step re-ran without approval"
        expect_eq "$(jq -r 'select(.kind == "confirmation-missing") | .data.reason' $(rundir drctl-audit "crash")/journal.jsonl | tail -1)" rerun
        dr_notty resume crash --approve "$step" --approve promote
    else
        dr_notty resume crash --approve promote
    fi
    expect_rc 0
    expect_eq "$(run_status crash)" done
    # Steps done before the crash did not run again; the held one ran twice.
    for s in snapshot copy promote cleanup; do
        if [ "$s" = "$step" ]; then
            expect_eq "$(runs_of "$s")" 2 "runs of $s"
        else
            expect_eq "$(runs_of "$s")" 1 "runs of $s"
        fi
    done
    # Outputs of earlier steps survived and reached the later ones.
    token=$(jq -r '.steps[0].outputs.token' $(rundir drctl-audit "crash")/state.json)
    [ "$step" = snapshot ] || expect_eq "$token" "$token_before" "snapshot token"
    expect_eq "$(jq -r '.steps[1].outputs.from' $(rundir drctl-audit "crash")/state.json)" "$token"
    expect_eq "$(jq -r '.steps[2].outputs.promoted' $(rundir drctl-audit "crash")/state.json)" "$token"
    expect_eq "$(count_events crash lock-takeover)" 2 "run and target locks taken over"
}

t_kill_9_inside_an_idempotent_step_reruns_it() { crash_inside snapshot yes; }
t_kill_9_inside_a_non_idempotent_step_asks_first() { crash_inside copy no; }
t_kill_9_inside_a_destructive_step_asks_first() { crash_inside promote no; }
t_kill_9_inside_the_cleanup_step_reruns_it() { crash_inside cleanup yes; }

t_sigint_saves_the_step_as_interrupted_exit_130() {
    for sig in INT TERM; do
        rm -rf drctl-audit log ./*.started
        start_held copy
        kill -"$sig" "$(cat bg.pid)"
        set +e; wait "$(cat bg.pid)"; code=$?; set -e
        rm -f hold-copy
        expect_eq "$code" 130 "exit code on SIG$sig"
        expect_eq "$(step_state crash copy)" interrupted
        expect_eq "$(run_status crash)" interrupted
        expect_in bg.err "drctl resume crash"
        dr_notty resume crash --approve copy --approve promote
        expect_rc 0
        expect_eq "$(runs_of snapshot)" 1 "snapshot ran once"
    done
}

t_a_second_process_on_the_same_run_gets_exit_4() {
    start_held copy
    dr_notty resume crash
    expect_rc 4
    expect_in err "run crash is held by run crash (pid $(cat bg.pid)"
    expect_in err "on $(hostname)"
    rm -f hold-copy
    wait "$(cat bg.pid)"
}

t_two_runs_on_the_same_target_cannot_be_active_at_once() {
    start_held copy
    dr_notty run hold -p dir="$PWD/other" --approve promote
    expect_rc 4
    expect_in err "the target 'branch/main' is held by run crash"
    [ ! -e other ] || fail "the locked-out run did something"
    # Another target is free.
    mkdir other
    dr_notty run hold -p dir="$PWD/other" -p target=staging --approve promote
    expect_rc 0
    rm -f hold-copy
    wait "$(cat bg.pid)"
}

t_a_torn_journal_line_is_repaired_on_resume() {
    dr_notty run hold -p dir="$PWD" --run-id torn
    expect_rc 3
    printf '{"seq":99,"time":"2026-' >> $(rundir drctl-audit "torn")/journal.jsonl
    dr_notty resume torn --approve promote
    expect_rc 0
    expect_eq "$(count_events torn journal-repaired)" 1
    jq -s '[.[].seq] == [range(1; length + 1)]' $(rundir drctl-audit "torn")/journal.jsonl | grep -q true ||
        fail "seq is not gapless after the repair"
}

t_a_corrupt_journal_is_refused_and_left_untouched() {
    dr_notty run hold -p dir="$PWD" --run-id bad
    expect_rc 3
    sed -i '3s/.*/garbage/' $(rundir drctl-audit "bad")/journal.jsonl
    before=$(sha256sum $(rundir drctl-audit "bad")/journal.jsonl $(rundir drctl-audit "bad")/state.json)
    dr_notty resume bad --approve promote
    expect_rc 2
    # The audit trail notices the edit first; either way nothing is touched.
    expect_in err "$(runrel bad)/journal.jsonl"
    expect_eq "$(sha256sum $(rundir drctl-audit "bad")/journal.jsonl $(rundir drctl-audit "bad")/state.json)" "$before" "files"
}

t_abort_runs_cleanup_and_closes_the_run() {
    dr_notty run hold -p dir="$PWD" --run-id ab
    expect_rc 3
    [ ! -e cleanup.started ] || fail "cleanup ran on pause"
    dr_notty abort ab
    expect_rc 0
    expect_eq "$(run_status ab)" aborted
    expect_eq "$(runs_of cleanup)" 1 "cleanup ran on abort"
    [ ! -e promote.started ] || fail "abort ran the destructive step"
    expect_eq "$(jq -r 'select(.kind == "run-aborted") | .data.reason' $(rundir drctl-audit "ab")/journal.jsonl)" \
              "aborted by Test Operator <test@example.org>"
    dr_notty resume ab --approve promote
    expect_rc 2
    expect_in err "already aborted"
}

t_a_run_whose_runbook_is_gone_can_still_be_aborted() {
    mkdir rb
    cp "$TEST_RUNBOOKS/hold.lua" rb/
    set +e; setsid -w "$DRCTL" --runbooks rb run hold -p dir="$PWD" --run-id orphan >out 2>err </dev/null; rc=$?; set -e
    expect_rc 3
    rm rb/hold.lua
    set +e; setsid -w "$DRCTL" --runbooks rb abort orphan >out 2>err </dev/null; rc=$?; set -e
    expect_rc 0
    expect_in err "WITHOUT its cleanup steps"
    expect_eq "$(run_status orphan)" aborted
    expect_in $(rundir drctl-audit "orphan")/report.md "its cleanup steps did not run"
    expect_eq "$(git -C drctl-audit status --porcelain)" "" "git status"
}

for t in t_a_run_whose_runbook_is_gone_can_still_be_aborted t_kill_9_inside_an_idempotent_step_reruns_it t_kill_9_inside_a_non_idempotent_step_asks_first \
         t_kill_9_inside_a_destructive_step_asks_first t_kill_9_inside_the_cleanup_step_reruns_it \
         t_sigint_saves_the_step_as_interrupted_exit_130 t_a_second_process_on_the_same_run_gets_exit_4 \
         t_two_runs_on_the_same_target_cannot_be_active_at_once t_a_torn_journal_line_is_repaired_on_resume \
         t_a_corrupt_journal_is_refused_and_left_untouched t_abort_runs_cleanup_and_closes_the_run; do
    run_test "$t"
done
