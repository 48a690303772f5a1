# Hostile Lua: code that tries to outrun the deadlines and signals from
# inside one C call or a finalizer, and metamethods that run where the
# engine turns a result or an error into text. Each must end the step (or
# the process) with a clear message, a consistent journal, and a run that
# resumes. drctl calls that could hang before are bounded by `timeout`, so
# a regression fails the test instead of hanging the suite.

hostile() { # ATTACK [extra args]: runs hostile-steps with --run-id h
    local attack=$1
    shift
    set +e
    timeout -s KILL ${HOSTILE_LIMIT:-120} setsid -w "$DRCTL" --runbooks "$TEST_RUNBOOKS" run hostile-steps -p attack="$attack" \
        -p dir="$PWD" --run-id h --approve promote "$@" >out 2>err </dev/null
    rc=$?
    set -e
}

# Starts hostile-steps in the background and waits until its step is inside
# the long C call (timeout --foreground passes each signal on once).
start_stuck() { # ATTACK MARKER
    setsid timeout --foreground -s KILL "${HOSTILE_LIMIT:-120}" "$DRCTL" --runbooks "$TEST_RUNBOOKS" run hostile-steps -p attack="$1" -p dir="$PWD" --run-id h \
        --approve promote >bg.out 2>bg.err </dev/null &
    echo $! > bg.pid
    wait_for "$2"
    wait_inside_the_c_call
}

# The marker is touched just before the long C call; a signal sent at once
# could still be honoured by Lua on its way in. drctl is inside the call
# once it has burnt a second of CPU (its start takes far less).
wait_inside_the_c_call() {
    local pid ticks
    for _ in $(seq 1 400); do
        pid=$(pgrep -P "$(cat bg.pid)" | head -1)
        ticks=$(awk '{ print $14 }' "/proc/${pid:-0}/stat" 2>/dev/null || echo 0)
        [ "${ticks:-0}" -ge 100 ] && return 0
        sleep 0.05
    done
}

wait_bg() {
    set +e; wait "$(cat bg.pid)"; code=$?; set -e
    cp bg.err err
}

expect_interrupted_and_resumable() { # STEP
    expect_eq "$(step_state h "$1")" interrupted "state of $1"
    expect_eq "$(run_status h)" interrupted "run status"
    expect_eq "$(count_events h step-interrupted "$1")" 1 "step-interrupted events"
    dr status h
    expect_rc 0
    expect_in out "interrupted"
    expect_eq "$(git -C drctl-audit status --porcelain)" "" "git status after the hard stop"
}

t_a_long_c_call_is_stopped_past_its_deadline_and_the_run_resumes() {
    hostile find-once
    expect_rc 130
    expect_in err "ran 10s past its deadline inside one C call"
    expect_in err "drctl resume h"
    expect_interrupted_and_resumable attack
    # The step is not idempotent: resume asks first, as after any interruption.
    dr_notty resume h
    expect_rc 3
    expect_in err "was interrupted"
    expect_in err "--approve attack"
    dr_notty resume h --approve attack --approve promote
    expect_rc 0
    expect_eq "$(run_status h)" done
    expect_eq "$(count_events h lock-takeover)" 0 "locks left to take over"
}

t_a_second_signal_stops_a_drctl_stuck_in_c_at_once() {
    start_stuck find-forever inside-hang
    # Signals sent back to back may arrive as one: repeat until it is gone
    # (the grace after one unhonoured signal is far longer than this).
    for _ in $(seq 1 100); do
        kill -TERM "$(cat bg.pid)" 2>/dev/null || break
        sleep 0.2
    done
    wait_bg
    expect_eq "$code" 130 "exit code"
    expect_in err "a second signal (SIGTERM) came while the first was being handled"
    expect_interrupted_and_resumable hang
}

# The stop of a stuck run is told to the team like any interruption, and
# the journal says so in the same commit as the end.
t_a_hard_stop_is_notified_and_recorded() {
    notify_receiver_start 200
    dr config set notify.webhook "http://127.0.0.1:$RECV_PORT/hook"
    start_stuck find-forever inside-hang
    for _ in $(seq 1 100); do
        kill -TERM "$(cat bg.pid)" 2>/dev/null || break
        sleep 0.2
    done
    wait_bg
    notify_receiver_stop
    expect_eq "$code" 130 "exit code"
    expect_eq "$(notify_body_to /hook | jq -r '[.event, .run_id, .step] | @tsv')" "run-interrupted	h	hang"
    expect_eq "$(count_events h notify)" 1 "notify events"
    expect_interrupted_and_resumable hang
    dr audit verify
    expect_rc 0
}

t_a_signal_a_stuck_step_does_not_honour_stops_it_after_the_grace() {
    start_stuck find-forever inside-hang
    kill -INT "$(cat bg.pid)"
    wait_bg
    expect_eq "$code" 130 "exit code"
    expect_in err "did not stop within 10s of SIGINT"
    expect_interrupted_and_resumable hang
}

t_a_gc_metatable_in_a_step_is_refused() {
    hostile gc
    expect_rc 1
    expect_in err "a metatable with a __gc field is refused"
    expect_eq "$(step_state h attack)" failed
    # a __gc added after setmetatable is never called: the run ends
    hostile gc-later --run-id h2
    expect_rc 0
}

# drctl list over a good runbook and FILE (its text on stdin): it must
# return (exit 2, naming FILE) and still list the good one.
list_beside_a_good_runbook() { # FILE
    mkdir rb
    cp "$TEST_RUNBOOKS/hostile-steps.lua" rb/
    cat > "rb/$1"
    set +e; timeout -s KILL 60 "$DRCTL" --runbooks rb list >out 2>err </dev/null; rc=$?; set -e
    expect_rc 2
    expect_in out "hostile-steps"
    expect_in err "some runbooks do not load"
}

t_list_is_not_hung_by_a_runbook_with_a_finalizer() {
    list_beside_a_good_runbook finalizer.lua <<'EOF'
setmetatable({}, { __gc = function() while true do end end })
return runbook { name = "finalizer", version = "1.0.0", summary = "a finalizer that never ends",
                 steps = { { name = "a", run = function() end } } }
EOF
    expect_in out "rb/finalizer.lua:1: setmetatable: a metatable with a __gc field is refused"
}

t_list_reports_a_runbook_stuck_in_c_and_lists_the_others() {
    list_beside_a_good_runbook a-stuck.lua <<'EOF'
string.find(("a"):rep(20000), ".-.-.-.-b")
return runbook { name = "stuck", version = "1.0.0", summary = "never loads",
                 steps = { { name = "a", run = function() end } } }
EOF
    expect_in out "rb/a-stuck.lua: did not load within 13 s (its top-level code never returns"
}

t_the_string_metatable_cannot_be_changed() {
    hostile string-index
    expect_rc 1
    expect_in err "the string metatable is locked"
    hostile string-tostring --run-id h2
    expect_rc 1
    expect_in err "the string metatable is locked"
}

t_an_error_object_whose_tostring_loops_or_fails_fails_its_step_clearly() {
    hostile error-tostring-loop
    expect_rc 1
    expect_in err "step 'attack' failed: (an error object that cannot be shown: turning it into text failed: it did not finish within 2s)"
    hostile error-tostring-fails --run-id h2
    expect_rc 1
    expect_in err "turning it into text failed:"
    expect_in err "tostring exploded"
    hostile error-index-loop --run-id h3
    expect_rc 1
    expect_in err "step 'attack' failed: the real failure"
}

t_an_output_with_hostile_metamethods_is_saved_raw() {
    hostile output-index-loop
    expect_rc 0
    expect_eq "$(jq -c '.steps[] | select(.name == "attack") | .outputs' $(rundir drctl-audit "h")/state.json)" '{"kept":1}'
}

t_a_log_argument_whose_tostring_fails_raises_in_the_step() {
    hostile log-tostring-fails
    expect_rc 0
    expect_eq "$(jq -c '.steps[] | select(.name == "attack") | .outputs' $(rundir drctl-audit "h")/state.json)" '{"logged":false}'
    expect_in $(rundir drctl-audit "h")/journal.jsonl "after: false"
    expect_in $(rundir drctl-audit "h")/journal.jsonl "log tostring exploded"
}

t_a_confirm_result_whose_index_fails_fails_the_step_clearly() {
    hostile confirm-index-fails
    expect_rc 1
    expect_in err "its confirm function failed"
    expect_in err "confirm index exploded"
    expect_eq "$(step_state h promote)" failed
}

for t in t_a_long_c_call_is_stopped_past_its_deadline_and_the_run_resumes \
         t_a_second_signal_stops_a_drctl_stuck_in_c_at_once \
         t_a_hard_stop_is_notified_and_recorded \
         t_a_signal_a_stuck_step_does_not_honour_stops_it_after_the_grace \
         t_a_gc_metatable_in_a_step_is_refused t_list_is_not_hung_by_a_runbook_with_a_finalizer \
         t_list_reports_a_runbook_stuck_in_c_and_lists_the_others \
         t_the_string_metatable_cannot_be_changed \
         t_an_error_object_whose_tostring_loops_or_fails_fails_its_step_clearly \
         t_an_output_with_hostile_metamethods_is_saved_raw t_a_log_argument_whose_tostring_fails_raises_in_the_step \
         t_a_confirm_result_whose_index_fails_fails_the_step_clearly; do
    run_test "$t"
done
