#!/usr/bin/env bash
# Runs every test: the C unit tests, then each tests/e2e/*.sh file, and ends
# with the summary line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
source tests/lib.sh

command -v jq >/dev/null || { echo "tests need jq (make deps installs it)"; exit 2; }

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

for file in tests/e2e/*.sh; do
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
