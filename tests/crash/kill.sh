# The crash harness's steps (tests/crash/crash.sh runs them for every
# line, tests/e2e/41-crash-transitions.sh for a sample): a case run
# uninterrupted, or killed after journal line k and resumed, then the
# checks every end must pass.

CRASH_DRCTL=${CRASH_DRCTL:-${DRCTL_HOOKS_BIN_DIR:-$ROOT/bin-hooks}/drctl}

# Resumes RUN until it is done, giving each approval drctl asks for (the
# steps a scheduled run approves, and a half-done step's re-run).
resume_to_end() { # RUN
    local approvals=() asked tries
    for tries in 1 2 3 4 5 6; do
        crash_dr resume "$1" "${approvals[@]}"
        [ "$rc" = 0 ] && return 0
        [ "$rc" = 3 ] || fail "resume of $1 exited $rc"
        asked=$(grep -o -- '--approve [a-z0-9_-]*' err | sort -u | sed 's/--approve //')
        [ -n "$asked" ] || fail "resume of $1 paused without naming an approval"
        local a new=0
        for a in $asked; do
            [[ " ${approvals[*]} " == *" --approve $a "* ]] && continue
            approvals+=(--approve "$a")
            new=1
        done
        [ "$new" = 1 ] || fail "resume of $1 asks again for what it was given: $asked"
    done
    fail "resume of $1 did not end in 6 tries"
}

# What every end must be, killed or not: the run done and committed, the
# journal gapless, the trail verified, nothing uncommitted, and a further
# resume with nothing to do.
crash_end_checks() { # RUN
    local run=$1 j=$(rundir drctl-audit "$1")/journal.jsonl
    expect_eq "$(jq -r .status "$(rundir drctl-audit "$run")/state.json")" done "state.json's status"
    jq -es '[.[].seq] == [range(1; length + 1)]' "$j" >/dev/null || fail "the journal's seq has a gap"
    expect_eq "$(jq -r .kind "$j" | tail -1)" run-done "the journal's last line"
    [ -s "$(rundir drctl-audit "$run")/report.md" ] || fail "no report.md"
    expect_eq "$(git -C drctl-audit status --porcelain)" "" "the audit folder is committed"
    git -C drctl-audit show "HEAD:$(runrel "$run")/journal.jsonl" | cmp -s - "$j" || fail "the journal is ahead of its commit"
    # No step done twice, and no destructive step done without its approval.
    expect_eq "$(jq -r 'select(.kind == "step-done") | .step' "$j" | sort | uniq -d)" "" "steps done twice"
    crash_dr audit verify
    expect_rc 0
    crash_dr resume "$run"
    expect_rc 2
    expect_in err "nothing left to do"
}

# A case's starting point, made once and copied for every kill: the
# setup, its shell variables saved to vars.sh, neon-local stopped. Every
# run then starts from the same project, rows and trail (a copy must stay
# at the path it was made at: neon-local's state names its folders).
crash_template() { # CASE
    "case_$1_setup"
    # The API's address too: a run is resumed, or undone, on the API it
    # started on.
    crash_port=${URL#http://127.0.0.1:}
    crash_port=${crash_port%%/*}
    # declared global, as sourcing happens inside a function
    { declare -p project key uri incident search_from undone feature_id NEON_PROJECT_ID crash_port 2>/dev/null ||
        true; } |
        sed 's/^declare /declare -g /' > vars.sh
    stop_neon_local
}

crash_restore() {
    source ./vars.sh
    start_neon_local --listen "127.0.0.1:$crash_port"
    use_api
}

# Copies the template folder TEMPLATE over the working folder DIR (both
# absolute), once whatever ran in DIR is stopped.
crash_reset() { # TEMPLATE DIR
    pkill -9 -f "$2/" 2>/dev/null || true
    rm -rf "$2"
    cp -a "$1" "$2"
}

# The case uninterrupted: its line count, its kinds of lines, and its end
# state into OUT.
crash_baseline() { # CASE OUT
    crash_restore
    "case_$1_run"
    expect_rc 0
    local run
    run=$(newest_run)
    crash_end_checks "$run"
    {
        wc -l < "$(rundir drctl-audit "$run")/journal.jsonl"
        jq -r .kind "$(rundir drctl-audit "$run")/journal.jsonl" | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}'
        echo
        "case_$1_state"
    } > "$2"
    stop_neon_local
}

# The case killed once journal line K is durable, then resumed; returns 3
# when the run ended before writing line K (nothing to test there).
crash_kill_at() { # CASE K EXPECTED
    crash_restore
    DRCTL_TEST_KILL_AT_SEQ=$2 "case_$1_run"
    local run
    if [ "$rc" = 0 ]; then
        stop_neon_local
        return 3
    fi
    expect_eq "$rc" 137 "drctl's exit (SIGKILL after line $2)"
    run=$(newest_run)
    expect_eq "$(wc -l < "$(rundir drctl-audit "$run")/journal.jsonl")" "$2" "journal lines at the kill"
    echo "killed after: $(sed -n "$2p" "$(rundir drctl-audit "$run")/journal.jsonl" | jq -c '[.kind, .step]')"
    resume_to_end "$run"
    crash_end_checks "$run"
    "case_$1_state" > state.now
    tail -n +3 "$3" > state.expected
    diff state.expected state.now >&2 || fail "the end state differs from the uninterrupted run's"
    stop_neon_local
}
