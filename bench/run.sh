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

# percentile FILE P: the P-th percentile of the numbers in FILE (one a line).
percentile() {
    sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int((NR - 1) * p / 100) + 1; printf "%.3f", v[i] }'
}

"$BIN_DIR/drctl" --runbooks "$work/runbooks" --audit "$work/audit" -q run noop --run-id bench >/dev/null
journal="$work/audit/runs/bench/journal.jsonl"
# Gaps between consecutive step events, in milliseconds.
jq -r 'select(.kind | test("^step-")) | .time' "$journal" |
    while read -r t; do date -d "$t" +%s.%N; done |
    awk 'NR > 1 { printf "%.4f\n", ($1 - prev) * 1000 } { prev = $1 }' > "$work/engine.ms"

size=$(stat -c %s "$work/audit/runs/bench/state.json")
"$BIN_DIR/fsync-floor" "$work/audit/runs/bench" "$size" "$((STEPS * 2))" > "$work/floor.ms"

engine_median=$(percentile "$work/engine.ms" 50)
engine_p99=$(percentile "$work/engine.ms" 99)
floor_median=$(percentile "$work/floor.ms" 50)
floor_p99=$(percentile "$work/floor.ms" 99)
ratio=$(awk -v a="$engine_median" -v b="$floor_median" 'BEGIN { printf "%.2f", a / b }')

echo "engine: $STEPS no-op steps, $(wc -l < "$work/engine.ms") transitions, state.json of $size bytes"
printf "  %-34s median %8s ms   p99 %8s ms\n" "drctl step transition" "$engine_median" "$engine_p99"
printf "  %-34s median %8s ms   p99 %8s ms\n" "floor: write+fsync+rename" "$floor_median" "$floor_p99"
echo "  ratio (median): ${ratio}x the floor   goals: median <= 5 ms and <= 3x the floor"
awk -v m="$engine_median" -v r="$ratio" 'BEGIN { exit !(m <= 5 && r <= 3) }' &&
    echo "  goal: met" || echo "  goal: NOT met"
