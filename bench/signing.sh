#!/usr/bin/env bash
# Signing: the cost of an SSH signature per audit transition. The same
# runbook of no-op steps runs unsigned and signed (DRCTL_SIGNING_KEY, an
# ed25519 key signed in-process), alternately, in the same run; the
# difference of the median transitions is what signing adds (goal: at most
# 2 ms). Then drctl audit verify --allowed-signers over RUNS signed runs,
# next to the same verify without signatures.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=${DRCTL_BIN_DIR:-$PWD/bin}
STEPS=${BENCH_STEPS:-100}
RUNS=${BENCH_SIGNED_RUNS:-1000}
ROUNDS=${BENCH_ROUNDS:-3}
work=$(mktemp -d "${BENCH_DIR:-$PWD/bench}/out.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/runbooks"
{
    echo 'return runbook { name = "noop", version = "1", summary = "benchmark: no-op steps", steps = {'
    for i in $(seq 1 "$STEPS"); do echo "  { name = \"step-$i\", run = function() return { i = $i } end },"; done
    echo '} }'
} >"$work/runbooks/noop.lua"
ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/key"
echo "bench@example.org $(cut -d' ' -f1,2 "$work/key.pub")" >"$work/allowed"
export DRCTL_OPERATOR="Bench <bench@example.org>"

source bench/stats.sh

: >"$work/plain.ms"
: >"$work/signed.ms"
for round in $(seq 1 "$ROUNDS"); do
    "$BIN_DIR/drctl" --runbooks "$work/runbooks" --audit "$work/plain" -q run noop --run-id "p$round" >/dev/null
    transition_gaps "$(find "$work/plain/runs" -mindepth 4 -type d -name "p$round")/journal.jsonl" >>"$work/plain.ms"
    DRCTL_SIGNING_KEY="$work/key" "$BIN_DIR/drctl" --runbooks "$work/runbooks" --audit "$work/signed" -q \
        run noop --run-id "s$round" >/dev/null
    transition_gaps "$(find "$work/signed/runs" -mindepth 4 -type d -name "s$round")/journal.jsonl" >>"$work/signed.ms"
done
plain=$(percentile "$work/plain.ms" 50)
signed=$(percentile "$work/signed.ms" 50)
added=$(awk -v a="$signed" -v b="$plain" 'BEGIN { printf "%.3f", a - b }')
echo "signing: $ROUNDS x $STEPS no-op steps, unsigned and signed alternately"
printf "  %-34s median %8s ms   p99 %8s ms\n" "transition + commit, unsigned" "$plain" "$(percentile "$work/plain.ms" 99)"
printf "  %-34s median %8s ms   p99 %8s ms\n" "transition + signed commit" "$signed" "$(percentile "$work/signed.ms" 99)"
echo "  signing adds ${added} ms per transition (goal: at most 2 ms)"
awk -v d="$added" 'BEGIN { exit !(d <= 2) }' && echo "  goal: met" || echo "  goal: NOT met"

# verify over RUNS signed runs: each run's 4 transitions signed
{
    echo 'return runbook { name = "two", version = "1", summary = "benchmark", steps = {'
    echo '  { name = "a", run = function() return {} end } } }'
} >"$work/runbooks/two.lua"
for i in $(seq 1 "$RUNS"); do
    DRCTL_SIGNING_KEY="$work/key" "$BIN_DIR/drctl" --runbooks "$work/runbooks" --audit "$work/many" -q \
        run two --run-id "r$i" >/dev/null
done
commits=$(git -C "$work/many" rev-list --count HEAD)
t0=$(date +%s%N)
"$BIN_DIR/drctl" --audit "$work/many" audit verify >/dev/null
t1=$(date +%s%N)
"$BIN_DIR/drctl" --audit "$work/many" audit verify --allowed-signers "$work/allowed" >/dev/null
t2=$(date +%s%N)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$RUNS" -v k="$commits" 'BEGIN {
    printf "  audit verify over %d signed runs (%d commits): %.2f s; with --allowed-signers: %.2f s (%.3f ms a signature)\n",
        n, k, (b - a) / 1e9, (c - b) / 1e9, ((c - b) - (b - a)) / 1e6 / k }'
