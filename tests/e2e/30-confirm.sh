# The confirmation gate, through a real pseudo-terminal.

hold_run() { # extra args...
    set +e
    "$PTYDRIVE" "$@" >out 2>err
    rc=$?
    set -e
}

t_a_destructive_step_with_nothing_to_do_is_skipped_without_asking() {
    # No terminal and no --approve: only a skip lets the run end.
    "$DRCTL" --runbooks "$TEST_RUNBOOKS" run skip -p dir="$PWD" -p answer=skip >out 2>err </dev/null && rc=0 || rc=$?
    expect_rc 0
    [ ! -e destroyed ] || fail "the skipped step ran"
    id=$(run_id)
    expect_eq "$(jq -r 'select(.kind == "step-done" and .step == "destroy") | .data.outputs.skipped' \
        "$(rundir drctl-audit "$id")/journal.jsonl")" "nothing to destroy" "the skipped step's outputs"
    expect_eq "$(count_events "$id" confirmation-given destroy)" 0 "confirmations asked"
    expect_in err "skipped: nothing to destroy"
    rm -rf drctl-audit
    # The same step with something to do stops for its confirmation.
    "$DRCTL" --runbooks "$TEST_RUNBOOKS" run skip -p dir="$PWD" >out 2>err </dev/null && rc=0 || rc=$?
    expect_rc 3
    [ ! -e destroyed ] || fail "the unconfirmed step ran"
    rm -rf drctl-audit
    # An empty answer is neither: the step fails before it starts.
    "$DRCTL" --runbooks "$TEST_RUNBOOKS" run skip -p dir="$PWD" -p answer=empty >out 2>err </dev/null && rc=0 || rc=$?
    expect_rc 1
    expect_in err 'or { skip = "why" }'
    [ ! -e destroyed ] || fail "the step with an empty confirmation ran"
}

t_the_right_challenge_on_the_terminal_proceeds() {
    hold_run --expect "Type 'main' to proceed" --send main -- \
        "$DRCTL" --runbooks "$TEST_RUNBOOKS" run hold -p dir="$PWD"
    expect_rc 0
    expect_in out "make the copy the new main; writes after the snapshot are lost"
    id=$(run_id)
    expect_eq "$(run_status "$id")" done
    expect_eq "$(jq -r 'select(.kind == "confirmation-given") | .data.operator' "$(rundir drctl-audit "$id")/journal.jsonl")" \
              "Test Operator <test@example.org>"
    expect_eq "$(jq -r 'select(.kind == "confirmation-given") | .data.answer' "$(rundir drctl-audit "$id")/journal.jsonl")" main
}

t_a_wrong_answer_refuses_and_pauses_exit_3() {
    hold_run --expect "Type 'main' to proceed" --send mian -- \
        "$DRCTL" --runbooks "$TEST_RUNBOOKS" run hold -p dir="$PWD"
    expect_rc 3
    id=$(run_id)
    expect_eq "$(run_status "$id")" paused
    expect_eq "$(step_state "$id" promote)" pending
    expect_eq "$(count_events "$id" confirmation-refused promote)" 1
    [ ! -e promote.started ] || fail "the refused step ran"
    [ ! -e cleanup.started ] || fail "cleanup ran on a paused run"
    # Then the right answer on resume goes on from there.
    hold_run --expect "Type 'main' to proceed" --send main -- \
        "$DRCTL" --runbooks "$TEST_RUNBOOKS" resume "$id"
    expect_rc 0
    expect_eq "$(grep -c snapshot log)" 1 "snapshot ran once"
    expect_eq "$(run_status "$id")" done
}

t_without_a_terminal_only_approve_lets_it_go() {
    dr_notty run hold -p dir="$PWD"
    expect_rc 3
    expect_in err "no terminal to ask on"
    expect_in err "--approve promote"
    id=$(run_id)
    expect_eq "$(count_events "$id" confirmation-missing promote)" 1
    [ ! -e promote.started ] || fail "the step ran without approval"
    dr_notty resume "$id" --approve promote
    expect_rc 0
    expect_eq "$(count_events "$id" confirmation-preapproved promote)" 1
    expect_eq "$(run_status "$id")" done
}

t_an_answer_on_stdin_is_never_read() {
    # A terminal is there, and stdin holds the right challenge (as a pipe or
    # a script would); the terminal closes without an answer (^D). The gate
    # reads the terminal only, so the step is refused.
    printf 'main\n' >answer
    hold_run --expect "Type 'main' to proceed" --send $'\004' -- \
        sh -c 'exec "$@" <answer' sh "$DRCTL" --runbooks "$TEST_RUNBOOKS" run hold -p dir="$PWD"
    expect_rc 3
    id=$(run_id)
    expect_eq "$(count_events "$id" confirmation-given promote)" 0
    expect_eq "$(jq -r 'select(.kind == "confirmation-refused") | .data.answer' "$(rundir drctl-audit "$id")/journal.jsonl")" \
              "(end of input)"
    expect_eq "$(step_state "$id" promote)" pending
    [ ! -e promote.started ] || fail "an answer on stdin approved the step"
}

t_end_of_input_on_the_terminal_refuses() {
    # The terminal closes without an answer (ptydrive sends ^D).
    hold_run --expect "Type 'main' to proceed" --send $'\004' -- \
        "$DRCTL" --runbooks "$TEST_RUNBOOKS" run hold -p dir="$PWD"
    expect_rc 3
    [ ! -e promote.started ] || fail "the step ran"
}

for t in t_a_destructive_step_with_nothing_to_do_is_skipped_without_asking t_the_right_challenge_on_the_terminal_proceeds t_a_wrong_answer_refuses_and_pauses_exit_3 \
         t_without_a_terminal_only_approve_lets_it_go t_an_answer_on_stdin_is_never_read \
         t_end_of_input_on_the_terminal_refuses; do
    run_test "$t"
done
