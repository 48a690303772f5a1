# The audit trail: a git repository, one commit per transition.

gitc() { git -C drctl-audit "$@"; }

t_every_transition_is_one_commit_by_the_operator() {
    dr_notty run hold -p dir="$PWD" --approve promote --run-id r1
    expect_rc 0
    # One commit per transition event of the journal (log/exec/figure ride along).
    transitions=$(jq -c 'select(.kind != "log" and .kind != "exec" and .kind != "figure")' \
                  $(rundir drctl-audit "r1")/journal.jsonl | wc -l)
    expect_eq "$(gitc rev-list --count HEAD)" "$transitions" "commits"
    expect_eq "$(gitc log --format=%s | tail -1)" "r1: run started"
    expect_eq "$(gitc log --format=%s -1)" "r1: run done"
    gitc log --format=%s | grep -qx "r1: promote confirmation-preapproved" || fail "no commit for the pre-approval"
    gitc log --format=%s | grep -qx "r1: copy done" || fail "no commit for a step done"
    expect_eq "$(gitc log --format='%an <%ae>' | sort -u)" "Test Operator <test@example.org>" "authors"
    expect_eq "$(gitc log --format='%cn <%ce>' | sort -u)" "Test Operator <test@example.org>" "committers"
    expect_eq "$(gitc status --porcelain)" "" "git status"
    expect_eq "$(gitc show --stat --format= HEAD | grep -c "$(runrel r1)/")" 3 "files in the last commit"
}

t_the_tree_is_clean_after_every_kind_of_ending() {
    dr_notty run hold -p dir="$PWD" --run-id paused
    expect_rc 3
    expect_eq "$(gitc status --porcelain)" "" "after a pause"
    dr_notty run flaky -p dir="$PWD" -p mode=fail --run-id failed
    expect_rc 1
    expect_eq "$(gitc status --porcelain)" "" "after a failure"
    dr_notty abort paused
    expect_rc 0
    expect_eq "$(gitc status --porcelain)" "" "after an abort"
    expect_eq "$(gitc log --format=%s -1)" "paused: run aborted"
}

t_a_second_operator_shows_in_the_history() {
    dr_notty run hold -p dir="$PWD" --run-id two
    expect_rc 3
    DRCTL_OPERATOR="Night Shift <night@example.org>" dr_notty resume two --approve promote
    expect_rc 0
    expect_eq "$(gitc log --format='%an' | sort -u | tr '\n' ,)" "Night Shift,Test Operator," "authors"
    expect_eq "$(gitc log --format='%an' -1)" "Night Shift"
}

t_report_md_tells_the_run() {
    mkdir rb
    cat > rb/restore.lua <<'LUA'
local dr = require "dr"
return runbook {
  name = "restore", version = "2.1.0", summary = "reports figures",
  steps = {
    { name = "count", run = function() dr.figure("rows restored in booking", 312); return { n = 312 } end },
    { name = "swap", destructive = true,
      confirm = function() return { summary = "main goes back to 14:29:59Z", challenge = "main" } end,
      run = function() dr.figure("restored to", "2026-01-11T14:29:59Z") end },
  },
}
LUA
    set +e; "$DRCTL" --runbooks rb run restore --approve swap --run-id rep >out 2>err </dev/null; rc=$?; set -e
    expect_rc 0
    r=$(rundir drctl-audit "rep")/report.md
    expect_in "$r" "# Run rep"
    expect_in "$r" "restore 2.1.0"
    expect_in "$r" "**done**"
    expect_in "$r" "| rows restored in booking | 312 |"
    expect_in "$r" "| restored to | 2026-01-11T14:29:59Z |"
    expect_in "$r" "main goes back to 14:29:59Z (challenge: \`main\`)"
    expect_in "$r" "| preapproved | Test Operator <test@example.org> |"
    expect_in "$r" "| count | done | 1 |"
    gitc cat-file -e HEAD:$(runrel "rep")/report.md || fail "report.md is not committed"
}

t_a_failed_run_report_shows_the_error() {
    dr_notty run flaky -p dir="$PWD" -p mode=fail --run-id f
    expect_rc 1
    expect_in $(rundir drctl-audit "f")/report.md "**failed**"
    expect_in $(rundir drctl-audit "f")/report.md "error: the cause is not fixed yet"
}

t_a_non_repository_folder_that_is_not_empty_is_refused() {
    mkdir drctl-audit
    echo "precious" > drctl-audit/notes.txt
    dr_notty run hold -p dir="$PWD" --approve promote
    expect_rc 2
    expect_in err "is not a git repository and not empty"
    expect_eq "$(ls drctl-audit)" notes.txt "the folder was left alone"
    [ ! -e log ] || fail "a step ran"
}

t_edits_outside_drctl_are_refused() {
    dr_notty run hold -p dir="$PWD" --run-id e1
    expect_rc 3
    sed -i 's/"copied":\(\s*\)3/"copied":\14/' $(rundir drctl-audit "e1")/state.json
    grep -q '"copied":.*4' $(rundir drctl-audit "e1")/state.json || fail "the test did not edit state.json"
    rm -f log
    dr_notty run hold -p dir="$PWD" -p target=other --approve promote
    expect_rc 2
    expect_in err "$(rundir drctl-audit "e1")/state.json was changed outside drctl"
    [ ! -e log ] || fail "a step ran"
    dr_notty resume e1 --approve promote
    expect_rc 2
    gitc checkout -q HEAD -- "$(runrel e1)"
    dr_notty resume e1 --approve promote
    expect_rc 0
}

t_a_crash_tail_is_drctls_own_and_is_committed_on_resume() {
    start_held() {
        touch "hold-$1"
        setsid "$DRCTL" --runbooks "$TEST_RUNBOOKS" run hold -p dir="$PWD" --approve promote --run-id crash \
            >bg.out 2>bg.err </dev/null &
        echo $! > bg.pid
        wait_for "$1.started"
    }
    start_held copy
    kill -9 "$(cat bg.pid)"
    wait "$(cat bg.pid)" 2>/dev/null || true
    rm -f hold-copy
    dr_notty resume crash --approve copy --approve promote
    expect_rc 0
    expect_eq "$(gitc status --porcelain)" "" "git status"
    expect_eq "$(gitc show HEAD:$(runrel "crash")/journal.jsonl | wc -l)" "$(wc -l < $(rundir drctl-audit "crash")/journal.jsonl)" \
              "journal lines committed"
}

# Killed inside a commit, drctl leaves git's lock files: the next command
# clears them instead of failing on them for ever.
t_git_locks_left_by_a_killed_commit_are_cleared() {
    dr_notty run hold -p dir="$PWD" --run-id locked
    expect_rc 3
    touch drctl-audit/.git/refs/heads/main.lock drctl-audit/.git/index.lock
    dr_notty resume locked --approve promote
    expect_rc 0
    expect_in err "drctl-audit/.git/refs/heads/main.lock, left by a drctl that was killed while it committed"
    [ ! -e drctl-audit/.git/index.lock ] || fail "index.lock is still there"
    dr audit verify
    expect_rc 0
}

# A disk that fills up in the middle of a step: drctl fails before the next
# action, never after it, and the half-done step is not re-run silently.
t_a_full_disk_fails_before_the_next_action() {
    mkdir fs
    mount -t tmpfs -o size=4m tmpfs fs
    trap 'umount -l "$PWD/fs" 2>/dev/null || true' RETURN
    touch hold-copy
    setsid "$DRCTL" --runbooks "$TEST_RUNBOOKS" --audit fs/audit run hold -p dir="$PWD" --approve promote \
        --run-id full >bg.out 2>bg.err </dev/null &
    pid=$!
    wait_for copy.started
    dd if=/dev/zero of=fs/filler bs=4k >/dev/null 2>&1 || true
    rm -f hold-copy
    set +e; wait $pid; code=$?; set -e
    expect_eq "$code" 1 "exit code"
    expect_in bg.err "No space left on device"
    [ ! -e promote.started ] || fail "the next step ran although nothing could be recorded"
    # Nothing is journaled past the event whose state or commit could not
    # be written: what is left is what a crash leaves, taken by resume.
    last=$(tail -1 $(rundir fs/audit "full")/journal.jsonl | jq -r .kind)
    rm -f fs/filler
    if [ "$last" = step-done ]; then
        dr_notty --audit fs/audit resume full --approve promote
        expect_rc 0
        expect_eq "$(grep -c copy log)" 1 "copy ran once: its end was journaled before the disk filled"
    else # the disk filled before copy's end could be journaled
        dr_notty --audit fs/audit resume full --approve copy --approve promote
        expect_rc 0
        expect_eq "$(grep -c copy log)" 2 "copy re-ran, after approval"
    fi
    expect_eq "$(grep -c promote log)" 1 "promote ran once"
    dr --audit fs/audit audit verify
    expect_rc 0
}

full_disk_test=t_a_full_disk_fails_before_the_next_action
if [ "$(id -u)" -ne 0 ]; then
    echo "skipped t_a_full_disk_fails_before_the_next_action: it mounts a small tmpfs, which needs root"
    full_disk_test=
fi

for t in $full_disk_test t_every_transition_is_one_commit_by_the_operator t_the_tree_is_clean_after_every_kind_of_ending \
         t_a_second_operator_shows_in_the_history t_report_md_tells_the_run t_a_failed_run_report_shows_the_error \
         t_a_non_repository_folder_that_is_not_empty_is_refused t_edits_outside_drctl_are_refused \
         t_a_crash_tail_is_drctls_own_and_is_committed_on_resume t_git_locks_left_by_a_killed_commit_are_cleared; do
    run_test "$t"
done
