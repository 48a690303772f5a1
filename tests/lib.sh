# Helpers for drctl's end-to-end tests. Each test is a function run in its
# own temporary directory (its cwd), in a subshell, with `set -e`; it passes
# when it returns 0. Assertions print what they expected and what they got.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN_DIR=${DRCTL_BIN_DIR:-$ROOT/bin}
DRCTL=$BIN_DIR/drctl
PTYDRIVE=$BIN_DIR/ptydrive
TEST_RUNBOOKS=$ROOT/tests/runbooks
export DRCTL_OPERATOR="Test Operator <test@example.org>"
# Times typed without an offset are read on the operator's clock: the
# tests' is UTC, whatever the machine's, unless a test sets another.
export TZ=UTC

# drctl with the test runbooks; stdout to out, stderr to err, exit code in rc.
dr() {
    set +e
    "$DRCTL" --runbooks "$TEST_RUNBOOKS" "$@" >out 2>err </dev/null
    rc=$?
    set -e
}

# The same without any controlling terminal (setsid), as under cron or CI.
dr_notty() {
    set +e
    setsid -w "$DRCTL" --runbooks "$TEST_RUNBOOKS" "$@" >out 2>err </dev/null
    rc=$?
    set -e
}

# drctl with the shipped runbooks (and lua/ beside them).
SCENARIOS=$ROOT/runbooks
sc() {
    set +e
    "$DRCTL" --runbooks "$SCENARIOS" "$@" >out 2>err </dev/null
    rc=$?
    set -e
}

fail() {
    # The marker makes the test fail even if a caller swallowed the status.
    [ -n "${TEST_DIR:-}" ] && touch "$TEST_DIR/.failed"
    echo "    FAILED: $*" >&2
    echo "    --- stdout:" >&2; sed 's/^/    | /' out 2>/dev/null | tail -20 >&2
    echo "    --- stderr:" >&2; sed 's/^/    | /' err 2>/dev/null | tail -20 >&2
    return 1
}

expect_rc() {
    [ "$rc" = "$1" ] || fail "exit code $rc, expected $1"
}

expect_in() { # FILE TEXT
    grep -qF -- "$2" "$1" || fail "$1 does not contain: $2"
}

expect_not_in() { # FILE TEXT
    ! grep -qF -- "$2" "$1" || fail "$1 contains: $2"
}

expect_eq() { # ACTUAL EXPECTED [WHAT]
    [ "$1" = "$2" ] || fail "${3:-value}: got '$1', expected '$2'"
}

# The folder of run ID in the trail AUDIT (default ./drctl-audit): where
# drctl files it, runs/YYYY/MM/DD/ID (the day its id begins with, else the
# day it was made), or runs/ID in a trail of the old layout. For a run not
# made yet, where drctl will put it.
rundir() { # [AUDIT] ID
    local audit=drctl-audit id d
    if [ $# -ge 2 ]; then audit=$1; shift; fi
    id=$1
    if [ -e "$audit/runs/$id/run.json" ] || [ -e "$audit/runs/$id/journal.jsonl" ]; then
        echo "$audit/runs/$id"
        return
    fi
    for d in "$audit"/runs/[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]/"$id"; do
        [ -d "$d" ] && { echo "$d"; return; }
    done
    if [[ $id =~ ^([0-9]{4})([0-9]{2})([0-9]{2})T ]]; then
        echo "$audit/runs/${BASH_REMATCH[1]}/${BASH_REMATCH[2]}/${BASH_REMATCH[3]}/$id"
    else
        echo "$audit/runs/$(date -u +%Y/%m/%d)/$id"
    fi
}

# The same, relative to the trail's root (for git show HEAD:...).
runrel() { # [AUDIT] ID
    local audit=drctl-audit
    if [ $# -ge 2 ]; then audit=$1; shift; fi
    local d
    d=$(rundir "$audit" "$1")
    echo "${d#"$audit"/}"
}

# Every run folder of the trail AUDIT (default ./drctl-audit), both layouts.
rundirs() { # [AUDIT]
    local audit=${1:-drctl-audit} d
    for d in "$audit"/runs/*/ "$audit"/runs/[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]/*/; do
        [ -d "$d" ] || continue
        d=${d%/}
        case ${d#"$audit"/runs/} in
            [0-9][0-9][0-9][0-9]) [ -e "$d/run.json" ] || [ -e "$d/journal.jsonl" ] || continue ;;
        esac
        echo "$d"
    done
}

# The ids of every run of the trail AUDIT (default ./drctl-audit), in the
# order of rundirs.
run_ids() { # [AUDIT]
    local d
    for d in $(rundirs "$@"); do basename "$d"; done
}

# The only run's id in ./drctl-audit.
run_id() {
    local d
    d=$(rundirs | head -1)
    [ -z "$d" ] || basename "$d"
}

# The run started last in ./drctl-audit, by its first event's time (to the
# microsecond): run ids have whole seconds, and two runs can start within one.
newest_run() {
    local d
    for d in $(rundirs); do
        printf '%s %s\n' "$(head -1 "$d/journal.jsonl" | jq -r .time)" "$(basename "$d")"
    done | sort | tail -1 | cut -d' ' -f2
}

journal() {
    cat "$(rundir "$1")/journal.jsonl"
}

# Number of journal events of a kind (for a step, when given).
count_events() { # RUN KIND [STEP]
    if [ -n "${3:-}" ]; then
        jq -c "select(.kind == \"$2\" and .step == \"$3\")" "$(rundir "$1")/journal.jsonl" | wc -l
    else
        jq -c "select(.kind == \"$2\")" "$(rundir "$1")/journal.jsonl" | wc -l
    fi
}

step_state() { # RUN STEP
    jq -r ".steps[] | select(.name == \"$2\") | .state" "$(rundir "$1")/state.json"
}

run_status() { # RUN
    jq -r .status "$(rundir "$1")/state.json"
}

# Waits (up to 20 s) for a file to exist.
wait_for() {
    for _ in $(seq 1 400); do
        [ -e "$1" ] && return 0
        sleep 0.05
    done
    fail "timed out waiting for $1"
}

TESTS_PASSED=0
TESTS_FAILED=0
FAILED_NAMES=()

# run_test NAME: runs the function NAME in a fresh directory. The test runs
# outside any `if`, so that `set -e` really stops it at the first failed
# assertion (bash ignores set -e in a condition, subshells included), and a
# failed assertion also leaves a marker that is checked afterwards.
run_test() {
    local name=$1 dir status
    [ -n "${ONLY:-}" ] && [ "$name" != "$ONLY" ] && return 0
    dir=$(mktemp -d "${TMPDIR:-/tmp}/drctl-e2e-XXXXXX")
    (export TEST_DIR="$dir"; cd "$dir" && set -e && "$name") >"$dir/.log" 2>&1
    status=$?
    if [ "$status" -eq 0 ] && [ ! -e "$dir/.failed" ]; then
        TESTS_PASSED=$((TESTS_PASSED + 1))
        echo "ok   $name"
    else
        TESTS_FAILED=$((TESTS_FAILED + 1))
        FAILED_NAMES+=("$name")
        echo "FAIL $name"
        sed 's/^/  /' "$dir/.log"
    fi
    # Stop anything a test left running in its directory.
    pkill -9 -f "$dir" 2>/dev/null || true
    rm -rf "$dir"
}
