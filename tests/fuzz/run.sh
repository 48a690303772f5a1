#!/usr/bin/env bash
# Runs each libFuzzer harness named on the command line for FUZZ_RUNS
# executions (default 1,000,000; -1: no count) or FUZZ_SECONDS, whichever
# comes first, two at a time (FUZZ_JOBS), on a copy of its seed corpus in
# build-fuzz/corpus/ (which grows from run to run), and prints harness |
# executions | seconds | crashes. Fails when any harness found a crash, a
# leak, a timeout or a failed invariant (the input is kept in
# build-fuzz/artifacts/<harness>/); the table marks a harness that the time
# bound stopped short of FUZZ_RUNS (a busy machine), without failing.
set -uo pipefail

cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-360}
runs=${FUZZ_RUNS:-1000000}
jobs=${FUZZ_JOBS:-2}
work=build-fuzz/run
mkdir -p "$work"

# UBSan stops at the first report (the objects are built with
# -fno-sanitize-recover=undefined); ASan's leak check is on, as libFuzzer
# runs it after every input whose allocations do not balance.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
    local h=$1
    local corpus=build-fuzz/corpus/$h artifacts=build-fuzz/artifacts/$h
    mkdir -p "$corpus" "$artifacts"
    cp -n tests/fuzz/corpus/"$h"/* "$corpus"/ 2>/dev/null
    local started=$SECONDS
    touch "$work/$h.start" # what an earlier run found stays, and is not counted again
    nice -n 10 bin-fuzz/fuzz-"$h" -runs="$runs" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts"/ "$corpus" > "$work/$h.log" 2>&1
    local rc=$?
    echo "$rc $((SECONDS - started))" > "$work/$h.status"
    # A harness that stops on a finding exits without its own clean-up.
    rm -rf /dev/shm/drctl-fuzz-"$h"-* /tmp/drctl-fuzz-"$h"-*
}
export -f run_one
export seconds runs work

printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'run_one {}'

failed=0
printf '%-10s | %12s | %7s | %7s\n' harness executions seconds crashes
printf '%s\n' '-----------|--------------|---------|--------'
for h in "$@"; do
    read -r rc took < "$work/$h.status"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$h.log" | tail -1)
    crashes=$(find build-fuzz/artifacts/"$h" -type f -newer "$work/$h.start" | wc -l)
    note=""
    [ "$runs" -gt 0 ] && [ "${execs:-0}" -lt "$runs" ] && note=" (time bound reached first)"
    printf '%-10s | %12s | %7s | %7s%s\n' "$h" "${execs:-?}" "$took" "$crashes" "$note"
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed=1
        echo "  $h: exit $rc; see $work/$h.log and build-fuzz/artifacts/$h/" >&2
    fi
done
exit $failed
