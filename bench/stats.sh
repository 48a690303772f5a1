# Shared by the benchmarks (sourced): the gaps between a journal's step
# events, and percentiles.

# transition_gaps JOURNAL: milliseconds between consecutive step events.
transition_gaps() {
    jq -r 'select(.kind | test("^step-")) | .time' "$1" |
        while read -r t; do date -d "$t" +%s.%N; done |
        awk 'NR > 1 { printf "%.4f\n", ($1 - prev) * 1000 } { prev = $1 }'
}

# percentile FILE P: the P-th percentile of the numbers in FILE (one a line).
percentile() {
    sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int((NR - 1) * p / 100) + 1; printf "%.3f", v[i] }'
}
