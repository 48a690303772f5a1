# A kill at every transition, in a sample: every journal line of a small
# runbook, and two lines of a scenario on neon-local (the last, run-done,
# and one inside its destructive step). make crash-test kills every line
# of every scenario (tests/crash/crash.sh). Needs the test build
# (bin-hooks/drctl: make hooks).

source "$ROOT/tests/crash/cases.sh"
source "$ROOT/tests/crash/kill.sh"

# hold's run, killed after journal line K, then resumed as cron would
# (approvals given when asked): each step ran once, the killed one at most
# twice, and the end is the uninterrupted run's.
hold_killed_at() { # K
    rm -rf drctl-audit log ./*.started
    set +e
    DRCTL_TEST_KILL_AT_SEQ=$1 "$CRASH_DRCTL" --runbooks "$TEST_RUNBOOKS" run hold -p dir="$PWD" --approve promote \
        --run-id crash >out 2>err </dev/null
    rc=$?
    set -e
    [ "$rc" = 0 ] && return 3
    expect_eq "$rc" 137 "drctl's exit (SIGKILL after line $1)"
    expect_eq "$(wc -l < $(rundir drctl-audit "crash")/journal.jsonl)" "$1" "journal lines at the kill"
    SCENARIOS=$TEST_RUNBOOKS resume_to_end crash
    SCENARIOS=$TEST_RUNBOOKS crash_end_checks crash
    local s
    for s in snapshot copy promote cleanup; do
        [ "$(grep -cx "$s" log)" -le 2 ] || fail "$s ran $(grep -cx "$s" log) times after a kill at line $1"
        expect_eq "$(jq -r --arg s "$s" '.steps[] | select(.name == $s) | .state' $(rundir drctl-audit "crash")/state.json)" \
            done "$s after a kill at line $1"
    done
    expect_eq "$(jq -r '.steps[2].outputs.promoted' $(rundir drctl-audit "crash")/state.json)" \
        "$(jq -r '.steps[0].outputs.token' $(rundir drctl-audit "crash")/state.json)" "the promoted snapshot"
}

t_a_kill_after_every_journal_line_of_a_run_resumes_to_its_end() {
    [ -x "$CRASH_DRCTL" ] || fail "no $CRASH_DRCTL (make hooks)"
    "$CRASH_DRCTL" --runbooks "$TEST_RUNBOOKS" run hold -p dir="$PWD" --approve promote --run-id crash >out 2>err </dev/null
    local lines k covered=0
    lines=$(wc -l < $(rundir drctl-audit "crash")/journal.jsonl)
    [ "$lines" -gt 10 ] || fail "the uninterrupted run wrote only $lines lines"
    for k in $(seq 1 "$lines"); do
        hold_killed_at "$k" && covered=$((covered + 1))
    done
    expect_eq "$covered" "$lines" "lines killed at and resumed"
}

# Killed after its last line (run-done or run-aborted) is durable, before
# its commit: verify names the run as not yet in the trail, and resume or
# abort then commits the end, state.json and report.md.
t_a_run_killed_after_its_end_is_committed_by_the_next_resume() {
    "$CRASH_DRCTL" --runbooks "$TEST_RUNBOOKS" run hold -p dir="$PWD" --approve promote --run-id whole >out 2>err </dev/null
    local lines
    lines=$(wc -l < $(rundir drctl-audit "whole")/journal.jsonl)
    rm -rf drctl-audit log
    set +e
    DRCTL_TEST_KILL_AT_SEQ=$lines "$CRASH_DRCTL" --runbooks "$TEST_RUNBOOKS" run hold -p dir="$PWD" --approve promote \
        --run-id ended >out 2>err </dev/null
    rc=$?
    set -e
    expect_eq "$rc" 137 "killed after run-done"
    [ ! -e $(rundir drctl-audit "ended")/report.md ] || fail "report.md was written before the kill"
    [ -n "$(git -C drctl-audit status --porcelain)" ] || fail "the kill left nothing uncommitted"
    dr audit verify
    expect_rc 0
    expect_in out "not yet in the trail: 1 run with events past the last commit"
    expect_in out "ended"
    dr resume ended
    expect_rc 0
    expect_in err "a crash had kept its end from the audit trail"
    expect_eq "$(git -C drctl-audit status --porcelain)" "" "the audit folder after the resume"
    [ -s $(rundir drctl-audit "ended")/report.md ] || fail "no report.md after the resume"
    expect_eq "$(git -C drctl-audit log -1 --format=%s)" "ended: run done" "the last commit"
    git -C drctl-audit show HEAD:$(runrel "ended")/state.json | cmp -s - $(rundir drctl-audit "ended")/state.json ||
        fail "state.json differs from its commit"
    dr audit verify
    expect_rc 0
    expect_not_in out "not yet in the trail"
    dr resume ended
    expect_rc 2
    expect_in err "already done; there is nothing left to do"
    # The same for an abort killed after run-aborted: the next abort commits it.
    dr run hold -p dir="$PWD" --run-id paused
    expect_rc 3
    cp -a drctl-audit trial
    "$CRASH_DRCTL" --runbooks "$TEST_RUNBOOKS" --audit trial abort paused >/dev/null 2>&1 </dev/null || true
    lines=$(wc -l < $(rundir trial "paused")/journal.jsonl)
    set +e
    DRCTL_TEST_KILL_AT_SEQ=$lines "$CRASH_DRCTL" --runbooks "$TEST_RUNBOOKS" abort paused >out 2>err </dev/null
    rc=$?
    set -e
    expect_eq "$rc" 137 "killed after run-aborted"
    expect_eq "$(jq -r .kind $(rundir drctl-audit "paused")/journal.jsonl | tail -1)" run-aborted "the journal's last line"
    dr abort paused
    expect_rc 0
    expect_in err "was already aborted, but a crash had kept its end"
    expect_eq "$(git -C drctl-audit status --porcelain)" "" "the audit folder after the abort"
    dr audit verify
    expect_rc 0
}

# The normal build has no kill point: the variable changes nothing.
t_the_normal_build_ignores_the_kill_variable() {
    # (make coverage runs the suite on a test build)
    if "$DRCTL" --version | grep -q "test build"; then echo "    skipped: $DRCTL is a test build" >&2; return; fi
    DRCTL_TEST_KILL_AT_SEQ=1 dr run hold -p dir="$PWD" --approve promote --run-id normal
    expect_rc 0
    expect_eq "$(jq -r .status $(rundir drctl-audit "normal")/state.json)" done "the run"
}

# A line inside the destructive step, and the last line: the run killed
# after run-done is durable but before its commit (it once stayed so,
# resume answering "already done").
t_a_scenario_killed_inside_its_restore_and_after_its_end_resumes_the_same() {
    local here=$PWD
    chmod 755 . # the branches' servers run as postgres, inside it
    mkdir run
    (cd run && crash_template accidental-deletion)
    cp -a run template
    (cd run && crash_baseline accidental-deletion "$here/expected")
    local lines apply_line
    lines=$(head -1 expected)
    crash_reset "$here/template" "$here/run"
    (cd run && crash_kill_at accidental-deletion "$lines" "$here/expected")
    # the line after apply's confirmation: the restore under way
    apply_line=$(grep -n '"kind":"confirmation-preapproved"' run/drctl-audit/runs/*/*/*/*-accidental-deletion-*/journal.jsonl |
                 cut -d: -f1 | head -1)
    [ -n "$apply_line" ] || fail "no confirmation in the journal"
    crash_reset "$here/template" "$here/run"
    (cd run && crash_kill_at accidental-deletion "$((apply_line + 2))" "$here/expected")
}

# The case CASE killed after the first journal line of its uninterrupted
# run that the jq filter SELECT matches, then resumed to the same end; one
# kill for each SELECT, each from the same starting point.
case_killed_after_line_matching() { # CASE SELECT...
    local here=$PWD line case=$1 journal select
    shift
    chmod 755 . # the branches' servers run as postgres, inside it
    mkdir run
    (cd run && crash_template "$case")
    cp -a run template
    (cd run && crash_baseline "$case" "$here/expected")
    journal="$here/expected.journal"
    cp "$(rundir run/drctl-audit "$(cd run && newest_run)")/journal.jsonl" "$journal"
    for select in "$@"; do
        line=$(jq -c "$select" "$journal" | grep -n true | cut -d: -f1 | head -1)
        [ -n "$line" ] || fail "no journal line of $case matches $select"
        crash_reset "$here/template" "$here/run"
        (cd run && crash_kill_at "$case" "$line" "$here/expected")
    done
}

# Killed once its check had asked for the endpoint it counts through: the
# resumed check found the endpoint still starting, and failed to connect.
# Killed once it had asked for that endpoint's deletion: the resumed check
# asked again, and took Neon's 404 for a failure.
t_an_undo_killed_after_its_check_made_an_endpoint_resumes_the_same() {
    case_killed_after_line_matching undo \
        '.kind == "neon" and .step == "check" and .data.method == "POST" and (.data.path | endswith("/endpoints"))' \
        '.kind == "neon" and .step == "check" and .data.method == "DELETE" and (.data.path | test("/endpoints/"))'
}

# Killed once the drill's incident had committed: the next attempt made a
# second incident, and the drill measured against the wrong state.
t_a_drill_killed_after_its_incident_resumes_the_same() {
    case_killed_after_line_matching drill '.kind == "pg-query" and (.data.sql | test("pg_advisory_unlock"))'
}

# Killed once its target step had asked for the new project: the resumed
# run found the project and restored into it while its server was still
# starting.
t_a_total_loss_killed_after_asking_for_its_project_resumes_the_same() {
    case_killed_after_line_matching total-loss \
        '.kind == "neon" and .step == "target" and .data.method == "POST" and (.data.path | endswith("/projects"))'
}

for t in t_a_kill_after_every_journal_line_of_a_run_resumes_to_its_end t_the_normal_build_ignores_the_kill_variable \
    t_a_run_killed_after_its_end_is_committed_by_the_next_resume \
    t_a_scenario_killed_inside_its_restore_and_after_its_end_resumes_the_same \
    t_an_undo_killed_after_its_check_made_an_endpoint_resumes_the_same \
    t_a_drill_killed_after_its_incident_resumes_the_same \
    t_a_total_loss_killed_after_asking_for_its_project_resumes_the_same; do
    run_test "$t"
done
