#!/usr/bin/env bash
# Benchmarks, each as a ratio to a baseline measured in the same run, on the
# same disk (these machines are noisy: absolute times mean little).
#
# engine: a runbook of 200 no-op steps. The cost of one step transition is
# the time between two consecutive checkpoint events in the journal
# (microsecond timestamps): journal append + fsync, state.json rewrite
# (write, fsync, rename, fsync of the directory), the Lua call and the
# progress line. The floor is what any durable checkpoint must pay: write +
# fsync + rename of a file of state.json's size in the same directory.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=${DRCTL_BIN_DIR:-$PWD/bin}
STEPS=${BENCH_STEPS:-200}
work=$(mktemp -d "${BENCH_DIR:-$PWD/bench}/out.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/runbooks"

{
    echo 'return runbook { name = "noop", version = "1", summary = "benchmark: no-op steps", steps = {'
    for i in $(seq 1 "$STEPS"); do
        echo "  { name = \"step-$i\", run = function(ctx) return { i = $i } end },"
    done
    echo '} }'
} > "$work/runbooks/noop.lua"

source bench/stats.sh

"$BIN_DIR/drctl" --runbooks "$work/runbooks" --audit "$work/audit" -q run noop --run-id bench >/dev/null
run_folder=$(find "$work/audit/runs" -mindepth 4 -maxdepth 4 -type d -name bench)
transition_gaps "$run_folder/journal.jsonl" > "$work/engine.ms"

size=$(stat -c %s "$run_folder/state.json")
"$BIN_DIR/fsync-floor" "$run_folder" "$size" "$((STEPS * 2))" > "$work/floor.ms"

engine_median=$(percentile "$work/engine.ms" 50)
engine_p99=$(percentile "$work/engine.ms" 99)
floor_median=$(percentile "$work/floor.ms" 50)
floor_p99=$(percentile "$work/floor.ms" 99)
ratio=$(awk -v a="$engine_median" -v b="$floor_median" 'BEGIN { printf "%.2f", a / b }')

echo "engine: $STEPS no-op steps, $(wc -l < "$work/engine.ms") transitions, state.json of $size bytes"
printf "  %-34s median %8s ms   p99 %8s ms\n" "drctl step transition" "$engine_median" "$engine_p99"
printf "  %-34s median %8s ms   p99 %8s ms\n" "floor: write+fsync+rename" "$floor_median" "$floor_p99"
echo "  ratio (median): ${ratio}x the floor (each transition is also a git commit)   goals: median <= 5 ms and <= 3x the floor"
awk -v m="$engine_median" -v r="$ratio" 'BEGIN { exit !(m <= 5 && r <= 3) }' &&
    echo "  goal: met" || echo "  goal: NOT met"

# audit: the same transitions, each a git commit, in trails that already
# hold RUNS and BIG_RUNS runs (built with git fast-import, runs filed by
# day as drctl files them: bench/make_audit_repo.sh), next to the fresh
# trail's above: the sharded trail keeps a commit's cost flat as the trail
# grows. Then `drctl audit verify` over RUNS runs, and status and audit log
# over BIG_RUNS runs.
RUNS=${BENCH_RUNS:-10000}
BIG_RUNS=${BENCH_BIG_RUNS:-100000}
AUDIT_STEPS=${BENCH_AUDIT_STEPS:-50}
{
    echo 'return runbook { name = "noop50", version = "1", summary = "benchmark", steps = {'
    for i in $(seq 1 "$AUDIT_STEPS"); do echo "  { name = \"step-$i\", run = function() return { i = $i } end },"; done
    echo '} }'
} > "$work/runbooks/noop50.lua"

# transitions_in TRAIL ID: the run's transitions, in ms, into $work/ID.ms.
transitions_in() {
    "$BIN_DIR/drctl" --runbooks "$work/runbooks" --audit "$1" -q run noop50 --run-id "$2" >/dev/null
    transition_gaps "$(find "$1/runs" -mindepth 1 -maxdepth 4 -type d -name "$2" | head -1)/journal.jsonl" \
        > "$work/$2.ms"
}

# seconds_of COMMAND...: the wall time of one run of it, in seconds.
seconds_of() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}

echo
echo "audit: building trails of $RUNS and $BIG_RUNS runs (git fast-import)..."
bash bench/make_audit_repo.sh "$work/big" "$RUNS"
bash bench/make_audit_repo.sh "$work/huge" "$BIG_RUNS"
transitions_in "$work/fresh" fresh-bench
transitions_in "$work/big" big-bench
transitions_in "$work/huge" huge-bench
fresh_median=$(percentile "$work/fresh-bench.ms" 50)
echo "audit: $AUDIT_STEPS no-op steps, each transition a commit"
for t in fresh:0 big:$RUNS huge:$BIG_RUNS; do
    name=${t%%:*} n=${t#*:}
    median=$(percentile "$work/$name-bench.ms" 50)
    p99=$(percentile "$work/$name-bench.ms" 99)
    ratio=$(awk -v a="$median" -v b="$fresh_median" 'BEGIN { printf "%.2f", a / b }')
    printf "  %-34s median %8s ms   p99 %8s ms   %sx the fresh trail's\n" "transition + commit, $n runs" \
        "$median" "$p99" "$ratio"
    [ "$name" = fresh ] && continue
    awk -v m="$median" -v r="$ratio" 'BEGIN { exit !(m <= 5 && r <= 1.2) }' &&
        echo "    goal (<= 5 ms and <= 1.2x the fresh trail's): met" ||
        echo "    goal (<= 5 ms and <= 1.2x the fresh trail's): NOT met"
done
# The git CLI doing the same job on the 10,000-run trail: add the changed
# file, commit.
target=$(find "$work/big/runs" -mindepth 4 -maxdepth 4 -type d | sort | sed -n 1p)
for i in $(seq 1 $((AUDIT_STEPS * 2))); do
    echo "{\"seq\":$i}" >> "$target/journal.jsonl"
    t0=$(date +%s%N)
    git -C "$work/big" add "${target#"$work/big/"}/journal.jsonl"
    git -C "$work/big" -c user.name=bench -c user.email=b@x commit -q -m "$(basename "$target"): step done"
    t1=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000 ))" | awk '{ printf "%.4f\n", $1 / 1000 }'
done > "$work/cli.ms"
git -C "$work/big" reset -q --hard HEAD~$((AUDIT_STEPS * 2))
printf "  %-34s median %8s ms   p99 %8s ms\n" "git add && git commit (CLI), $RUNS" "$(percentile "$work/cli.ms" 50)" \
    "$(percentile "$work/cli.ms" 99)"

verify_s=$(seconds_of "$BIN_DIR/drctl" --audit "$work/big" audit verify)
echo "  drctl audit verify over $RUNS runs ($(git -C "$work/big" rev-list --count HEAD) commits): ${verify_s} s" \
     "(goal <= 3 s)"
huge_verify_s=$(seconds_of "$BIN_DIR/drctl" --audit "$work/huge" audit verify)
echo "  drctl audit verify over $BIG_RUNS runs ($(git -C "$work/huge" rev-list --count HEAD) commits): ${huge_verify_s} s"
# status and audit log: the first call builds the cache of runs not ended
# (reading every state.json once), the next ones read it.
first_status_s=$(seconds_of "$BIN_DIR/drctl" --audit "$work/huge" status)
status_s=$(seconds_of "$BIN_DIR/drctl" --audit "$work/huge" status)
log_s=$(seconds_of "$BIN_DIR/drctl" --audit "$work/huge" audit log)
echo "  drctl status over $BIG_RUNS runs: ${status_s} s (${first_status_s} s the first time, building its cache);" \
     "audit log ${log_s} s (goal <= 0.3 s)"
