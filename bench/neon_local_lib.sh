# Shared by the benchmarks that run on neon-local (sourced, with $work and
# $BIN_DIR set): timing helpers, neon-local started in $work, its API.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# Starts neon-local in $work/nl; sets NL_PID, URL, KEY.
start_bench_neon_local() {
    "$BIN_DIR/neon-local" --data "$work/nl" --listen 127.0.0.1:0 > "$work/nl.out" 2> "$work/nl.err" &
    NL_PID=$!
    for _ in $(seq 1 100); do grep -q http "$work/nl.out" 2>/dev/null && break; sleep 0.05; done
    URL=$(sed -n 's/^neon-local: //p' "$work/nl.out")
    KEY=$(cat "$work/nl/api-key")
}

call() { curl -s -X "$1" -H "Authorization: Bearer $KEY" ${3:+-d "$3"} "$URL$2"; }

# Waits for the operations listed in an API answer (polled every 20 ms).
wait_ops() { # PROJECT JSON
    for op in $(echo "$2" | jq -r '.operations[].id'); do
        while [ "$(call GET "/projects/$1/operations/$op" | jq -r .operation.status)" = running ]; do sleep 0.02; done
    done
}
