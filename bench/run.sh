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
transition_gaps "$work/audit/runs/bench/journal.jsonl" > "$work/engine.ms"

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
echo "  ratio (median): ${ratio}x the floor (each transition is also a git commit)   goals: median <= 5 ms and <= 3x the floor"
awk -v m="$engine_median" -v r="$ratio" 'BEGIN { exit !(m <= 5 && r <= 3) }' &&
    echo "  goal: met" || echo "  goal: NOT met"

# audit: the same transitions, each a git commit, in an audit repository
# that already holds RUNS runs; next to `git add && git commit` by the git
# CLI on the same repository, and `drctl audit verify` over all of it.
RUNS=${BENCH_RUNS:-10000}
AUDIT_STEPS=${BENCH_AUDIT_STEPS:-50}
echo
echo "audit: building a repository of $RUNS runs (git fast-import)..."
bash bench/make_audit_repo.sh "$work/big" "$RUNS"
{
    echo 'return runbook { name = "noop50", version = "1", summary = "benchmark", steps = {'
    for i in $(seq 1 "$AUDIT_STEPS"); do echo "  { name = \"step-$i\", run = function() return { i = $i } end },"; done
    echo '} }'
} > "$work/runbooks/noop50.lua"
"$BIN_DIR/drctl" --runbooks "$work/runbooks" --audit "$work/big" -q run noop50 --run-id audit-bench >/dev/null
transition_gaps "$work/big/runs/audit-bench/journal.jsonl" > "$work/audit.ms"
# The git CLI doing the same job: add the changed file, commit.
target=$(ls "$work/big/runs" | sed -n 1p)
for i in $(seq 1 $((AUDIT_STEPS * 2))); do
    echo "{\"seq\":$i}" >> "$work/big/runs/$target/journal.jsonl"
    t0=$(date +%s%N)
    git -C "$work/big" add "runs/$target/journal.jsonl"
    git -C "$work/big" -c user.name=bench -c user.email=b@x commit -q -m "$target: step done"
    t1=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000 ))" | awk '{ printf "%.4f\n", $1 / 1000 }'
done > "$work/cli.ms"
git -C "$work/big" reset -q --hard HEAD~$((AUDIT_STEPS * 2))
verify_start=$(date +%s%N)
"$BIN_DIR/drctl" --audit "$work/big" audit verify >/dev/null
verify_end=$(date +%s%N)
verify_s=$(awk -v a="$verify_start" -v b="$verify_end" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')

audit_median=$(percentile "$work/audit.ms" 50)
audit_p99=$(percentile "$work/audit.ms" 99)
cli_median=$(percentile "$work/cli.ms" 50)
cli_p99=$(percentile "$work/cli.ms" 99)
echo "audit: $RUNS runs already in the repository, $(wc -l < "$work/audit.ms") transitions"
printf "  %-34s median %8s ms   p99 %8s ms\n" "drctl transition + commit" "$audit_median" "$audit_p99"
printf "  %-34s median %8s ms   p99 %8s ms\n" "git add && git commit (CLI)" "$cli_median" "$cli_p99"
echo "  goals: median <= 5 ms and below the CLI"
awk -v m="$audit_median" -v c="$cli_median" 'BEGIN { exit !(m <= 5 && m < c) }' &&
    echo "  goal: met" || echo "  goal: NOT met"
echo "  drctl audit verify over $RUNS runs ($(git -C "$work/big" rev-list --count HEAD) commits): ${verify_s}s (goal < 5 s)"
