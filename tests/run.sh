#!/usr/bin/env bash
# Runs every test: the C unit tests, then each tests/e2e/*.sh file, and ends
# with the summary line "N passed, N failed".
#   tests/run.sh [FILE...]   only those end-to-end files (no unit tests);
#   ONLY=NAME tests/run.sh FILE   only the test function NAME in it.
set -u
cd "$(dirname "$0")/.."
source tests/lib.sh

command -v jq >/dev/null || { echo "tests need jq (make deps installs it)"; exit 2; }

files=("$@")
if [ ${#files[@]} -gt 0 ]; then
    # Files share helper functions: define them all without running tests.
    eval "real_$(declare -f run_test)"
    run_test() { :; }
    for file in tests/e2e/*.sh; do source "$file"; done
    eval "$(declare -f real_run_test | sed 1s/real_run_test/run_test/)"
    SKIP_UNIT=1
else
    files=(tests/e2e/*.sh)
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
echo "unit tests: $unit_passed passed, $unit_failed failed"
fi

for file in "${files[@]}"; do
    echo "== $file"
    file_started=$SECONDS
    source "$file"
    echo "   ($file: $((SECONDS - file_started)) s)" # where the suite's time goes
done

passed=$((unit_passed + TESTS_PASSED))
failed=$((unit_failed + TESTS_FAILED))
if [ "$TESTS_FAILED" -gt 0 ]; then
    echo "failed end-to-end tests: ${FAILED_NAMES[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
