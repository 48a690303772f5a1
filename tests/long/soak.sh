#!/usr/bin/env bash
# Every scenario runbook under API faults at many seeds (make soak): the
# tests of tests/e2e/98-scenario-faults.sh, each run at SOAK_SEEDS seeds
# (default 20: seeds 1..20, or SOAK_FIRST_SEED..), with the same checks.
# Ends with a table, runbook | seeds passed / seeds run, then each failing
# seed with its reason; exits 1 when any failed.
#   SOAK_TESTS="t_faults_export t_faults_undo"   only those
#   SOAK_TIMEOUT=900                             seconds one seed may take
#   SOAK_JOBS=2                                  seeds run at once
set -u
cd "$(dirname "$0")/../.."
source tests/lib.sh

# The helpers and FAULT_TESTS of the end-to-end files, without their tests.
eval "real_$(declare -f run_test)"
run_test() { :; }
for f in tests/e2e/*.sh; do source "$f"; done
eval "$(declare -f real_run_test | sed 1s/real_run_test/run_test/)"

# One test at one seed, in a fresh directory: exit 0 when it passed; its log
# in DIR/.log; a seed whose faults never reached drctl passes (the table
# says how many faults each seed injected).
if [ "${1:-}" = --one ]; then
    test_name=$2 dir=$4
    export FAULT_SEED=$3 FAULTS_REQUIRED=0 TEST_DIR=$dir
    # A test that failed half-way leaves its neon-local running: stopped
    # by its pid (SIGTERM stops its PostgreSQL servers too).
    trap 'status=$?; [ -n "${PID:-}" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
          if [ "$status" -eq 0 ] && [ ! -e "$TEST_DIR/.failed" ]; then exit 0; else exit 1; fi' EXIT
    cd "$dir" && exec >"$dir/.log" 2>&1
    set -e
    "$test_name"
    exit
fi

tests=(${SOAK_TESTS:-${FAULT_TESTS[@]}})
seeds=${SOAK_SEEDS:-20}
first=${SOAK_FIRST_SEED:-1}
results=$(mktemp)
failures=$(mktemp)
started=$SECONDS

# One seed of one test, its verdict into OUTDIR/<test>.<seed>: status,
# faults injected, reason.
one_seed() { # TEST SEED OUTDIR
    local dir status injected reason
    dir=$(mktemp -d "${TMPDIR:-/tmp}/drctl-soak-XXXXXX")
    timeout -k 10 "${SOAK_TIMEOUT:-900}" bash "$0" --one "$1" "$2" "$dir"
    status=$?
    injected=$(faults_injected "$dir/faulty-nl.err" 2>/dev/null || echo 0)
    reason=
    if [ "$status" -eq 0 ]; then
        echo "ok   $1 seed $2 ($injected faults)"
    else
        reason=$(grep -m1 'FAILED:' "$dir/.log" | sed 's/^ *FAILED: //')
        [ "$status" -ge 124 ] && reason="timed out after ${SOAK_TIMEOUT:-900} s${reason:+; $reason}"
        reason=${reason:-exit $status}
        echo "FAIL $1 seed $2: $reason"
        cp "$dir/.log" "${TMPDIR:-/tmp}/drctl-soak-$1-seed$2.log" 2>/dev/null || true
    fi
    printf '%s\t%s\t%s\n' "$status" "${injected:-0}" "$reason" > "$3/$1.$2"
    rm -rf "$dir"
}

# SOAK_JOBS seeds at once (default 2: each test is mostly waiting).
verdicts=$(mktemp -d)
for t in "${tests[@]}"; do
    for seed in $(seq "$first" $((first + seeds - 1))); do
        while [ "$(jobs -rp | wc -l)" -ge "${SOAK_JOBS:-2}" ]; do wait -n; done
        one_seed "$t" "$seed" "$verdicts" &
    done
done
wait
for t in "${tests[@]}"; do
    passed=0 run=0 faults=0
    for seed in $(seq "$first" $((first + seeds - 1))); do
        IFS=$'\t' read -r status injected reason < "$verdicts/$t.$seed" || { status=1 injected=0 reason="no verdict"; }
        run=$((run + 1))
        faults=$((faults + injected))
        if [ "$status" -eq 0 ]; then passed=$((passed + 1))
        else printf '%s\t%s\t%s\n' "${t#t_faults_}" "$seed" "$reason" >> "$failures"; fi
    done
    printf '%s\t%s\t%s\t%s\n' "${t#t_faults_}" "$passed" "$run" "$faults" >> "$results"
done
rm -rf "$verdicts"

echo
echo "soak: API faults rate=0.3,kinds=429+500+503+reset+slow, seeds $first..$((first + seeds - 1)) ($((SECONDS - started)) s)"
printf '%-34s | %-22s | %s\n' runbook "seeds passed / run" "faults injected"
printf '%-34s-+-%-22s-+-%s\n' "$(printf '%.0s-' {1..34})" "$(printf '%.0s-' {1..22})" "---------------"
total_failed=0
while IFS=$'\t' read -r name passed run faults; do
    printf '%-34s | %-22s | %s\n' "$name" "$passed / $run" "$faults"
    total_failed=$((total_failed + run - passed))
done < "$results"
if [ -s "$failures" ]; then
    echo
    echo "failing seeds (logs in ${TMPDIR:-/tmp}/drctl-soak-<test>-seed<N>.log):"
    while IFS=$'\t' read -r name seed reason; do
        echo "  $name seed $seed: $reason"
    done < "$failures"
fi
rm -f "$results" "$failures"
[ "$total_failed" -eq 0 ]
