#!/usr/bin/env bash
# Runs every test: the C unit tests, then each tests/e2e/*.sh file, and ends
# with the summary line "N passed, N failed".
#   tests/run.sh [FILE...]   only those end-to-end files (no unit tests);
#   ONLY=NAME tests/run.sh FILE   only the test function NAME in it;
#   TEST_LANES=N   how many files run at once (default 3: the tests mostly wait
#                  on servers and fsync, so three fit two cores; 1 runs them in order).
set -u
cd "$(dirname "$0")/.."
source tests/lib.sh

command -v jq >/dev/null || { echo "tests need jq (make deps installs it)"; exit 2; }

# Files share helper functions: define them all first without running tests,
# so that any file can run alone, or beside another.
eval "real_$(declare -f run_test)"
run_test() { :; }
for file in tests/e2e/*.sh; do source "$file"; done
eval "$(declare -f real_run_test | sed 1s/real_run_test/run_test/)"

files=("$@")
if [ ${#files[@]} -gt 0 ]; then
    SKIP_UNIT=1
    lanes=${TEST_LANES:-1}
else
    # The slowest files first, so that the lanes end together.
    slow=(tests/e2e/98-scenarios.sh tests/e2e/41-crash-transitions.sh tests/e2e/99-drill.sh tests/e2e/98-scenario-faults.sh
          tests/e2e/98-undo.sh tests/e2e/90-neon-local.sh
          tests/e2e/98-deleted.sh tests/e2e/93-runbook-fixes.sh tests/e2e/96-neon-module.sh tests/e2e/91-branch-ttl.sh
          tests/e2e/86-neon-local-schema.sh tests/e2e/85-sdk-contract.sh)
    files=("${slow[@]}")
    for file in tests/e2e/*.sh; do
        [[ " ${slow[*]} " == *" $file "* ]] || files+=("$file")
    done
    lanes=${TEST_LANES:-3}
fi

if [ -n "${SKIP_UNIT:-}" ]; then
    unit_passed=0 unit_failed=0
else
    unit_out=$(mktemp)
    "$BIN_DIR/unit-tests" | tee "$unit_out" | grep -v '^ok' || true
    unit_line=$(grep '^unit: ' "$unit_out" | tail -1)
    unit_passed=$(echo "$unit_line" | sed -E 's/unit: ([0-9]+) passed.*/\1/')
    unit_failed=$(echo "$unit_line" | sed -E 's/.* ([0-9]+) failed/\1/')
    rm -f "$unit_out"
    if [ -z "$unit_line" ]; then
        echo "the unit tests did not finish"
        unit_passed=0
        unit_failed=1
    fi
    # The fault-injection tests (the Nth allocation, write or fsync failing)
    # need the test build's fault points: bin-hooks/unit-tests (make hooks).
    hooks_unit=${DRCTL_HOOKS_BIN_DIR:-$ROOT/bin-hooks}/unit-tests
    if [ -x "$hooks_unit" ]; then
        fault_out=$(mktemp)
        "$hooks_unit" fault_injection_ >"$fault_out" 2>/dev/null
        grep -v '^ok\|^unit: ' "$fault_out" || true
        fault_line=$(grep '^unit: ' "$fault_out" | tail -1)
        rm -f "$fault_out"
        fault_passed=$(echo "$fault_line" | sed -E 's/unit: ([0-9]+) passed.*/\1/')
        fault_failed=$(echo "$fault_line" | sed -E 's/.* ([0-9]+) failed/\1/')
        [ -n "$fault_line" ] || { fault_passed=0; fault_failed=1; echo "the fault-injection tests did not finish"; }
        unit_passed=$((unit_passed + fault_passed))
        unit_failed=$((unit_failed + fault_failed))
    else
        echo "no $hooks_unit (make hooks): the fault-injection tests did not run"
        unit_failed=$((unit_failed + 1))
    fi
    echo "unit tests: $unit_passed passed, $unit_failed failed"
fi

run_file() { # FILE
    echo "== $1"
    local started=$SECONDS
    source "$1"
    echo "   ($1: $((SECONDS - started)) s)" # where the suite's time goes
}

work=$(mktemp -d)
echo 0 > "$work/next"

# Takes the next file off the shared queue (its index on stdout).
claim() {
    local n
    {
        flock 9
        n=$(cat "$work/next")
        echo $((n + 1)) > "$work/next"
    } 9>>"$work/lock"
    [ "$n" -lt ${#files[@]} ] && echo "$n"
}

# A lane runs files off the queue until it is empty; each file's output is
# printed whole when the file ends, so lanes never interleave lines.
lane() { # N
    local n
    while n=$(claim); do
        run_file "${files[$n]}" > "$work/file-$n.log" 2>&1
        { flock 9; cat "$work/file-$n.log"; } 9>>"$work/lock"
    done
    echo "$TESTS_PASSED $TESTS_FAILED" > "$work/lane-$1.counts"
    printf '%s\n' "${FAILED_NAMES[@]}" > "$work/lane-$1.failed"
}

if [ "$lanes" -le 1 ]; then
    for file in "${files[@]}"; do run_file "$file"; done
else
    for i in $(seq 1 "$lanes"); do lane "$i" & done
    wait
    for i in $(seq 1 "$lanes"); do
        read -r p f < "$work/lane-$i.counts"
        TESTS_PASSED=$((TESTS_PASSED + p))
        TESTS_FAILED=$((TESTS_FAILED + f))
        while read -r name; do [ -n "$name" ] && FAILED_NAMES+=("$name"); done < "$work/lane-$i.failed"
    done
fi
rm -rf "$work"

passed=$((unit_passed + TESTS_PASSED))
failed=$((unit_failed + TESTS_FAILED))
if [ "$TESTS_FAILED" -gt 0 ]; then
    echo "failed end-to-end tests: ${FAILED_NAMES[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
