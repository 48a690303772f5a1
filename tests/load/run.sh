#!/usr/bin/env bash
# make load, load-asan, load-tsan: neon-local under a bounded load on
# loopback, with its faults on, then checked.
#
# The load (tests/load/loadgen.c): LOAD_CLIENTS concurrent clients (200)
# send LOAD_REQUESTS requests (20,000): reads of the project, its branches,
# endpoints, operations, roles, databases and snapshots, and LOAD_CREATIONS
# branch creations (30, each a real PostgreSQL server started), three in four
# of them deleted again (for good and recoverably in turn), each client waiting
# 0 to 2*LOAD_THINK_MS (1,500 ms) between requests, so that the load lasts
# about as long as the worker takes to make the branches. A warm-up of
# LOAD_WARMUP requests (2,000, 2 creations) from as many clients comes first,
# and the resident memory is measured after it and after the load.
#
# Fails when neon-local crashed or stopped answering, a request had no answer
# within 60 s or the load did not end, the branches listed at the end are not
# what the clients' answers said (lost, duplicated, unknown, not ready), the
# resident memory grew by more than 10%, neon-local did not exit 0 on SIGTERM,
# or (LOAD_SANITIZER=asan|tsan) the sanitizer reported anything.
set -euo pipefail

# All in one function, read whole before it runs: an edit of this file
# during a run cannot change the run.
main() {
    cd "$(dirname "$0")/../.."
    ROOT=$PWD

    NEON_LOCAL=${NEON_LOCAL:-$ROOT/bin/neon-local}
    LOADGEN=${LOADGEN:-$ROOT/bin/loadgen}
    CLIENTS=${LOAD_CLIENTS:-200}
    REQUESTS=${LOAD_REQUESTS:-20000}
    CREATIONS=${LOAD_CREATIONS:-30}
    WARMUP=${LOAD_WARMUP:-2000}
    WARMUP_CREATIONS=${LOAD_WARMUP_CREATIONS:-2}
    THINK_MS=${LOAD_THINK_MS:-1500}   # each client waits 0 to twice this between requests
    SEED=${LOAD_SEED:-1}
    FAULTS=${LOAD_FAULTS:-rate=0.1,kinds=429+500+503+reset+slow,seed=$SEED}
    SANITIZER=${LOAD_SANITIZER:-}
    # Percent. A sanitizer's RSS says little of neon-local's own: ASan keeps
    # freed memory in quarantine (256 MB) and both map shadow memory as they
    # go (measured: ASan +284%, TSan +25%), so there it is only reported.
    RSS_GROWTH_MAX=${LOAD_RSS_GROWTH_MAX:-$([ -z "$SANITIZER" ] && echo 10 || true)}

    for tool in "$NEON_LOCAL" "$LOADGEN"; do
        [ -x "$tool" ] || { echo "load: $tool is not built" >&2; exit 2; }
    done

    # The branches' PostgreSQL servers run as the postgres user (neon-local
    # drops to it when it is root): it must reach the data folder.
    work=$(mktemp -d "${TMPDIR:-/tmp}/drctl-load-XXXXXX")
    chmod 755 "$work"
    PID=
    cleanup() {
        if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
            kill -KILL "$PID" 2>/dev/null || true
            wait "$PID" 2>/dev/null || true
        fi
        # Servers of a neon-local that was killed: stopped by their data folders.
        for pid_file in "$work"/nl/pg/*/data/postmaster.pid; do
            [ -e "$pid_file" ] && kill -KILL "$(head -1 "$pid_file")" 2>/dev/null || true
        done
        [ -n "${LOAD_KEEP:-}" ] && { echo "load: kept $work"; return; }
        rm -rf "$work"
    }
    trap cleanup EXIT

    launcher=(nice -n 10)
    case "$SANITIZER" in
    asan)
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
        export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp
        export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
        ;;
    tsan)
        # TSan wants a narrow address space layout; on kernels with many
        # mmap_rnd_bits it stops with "unexpected memory mapping" unless the
        # randomization is off for it. This kernel (28 bits) runs it either way.
        export TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 history_size=4"
        if setarch "$(uname -m)" -R true 2>/dev/null; then
            launcher+=(setarch "$(uname -m)" -R)
        fi
        ;;
    "") ;;
    *) echo "load: LOAD_SANITIZER must be asan or tsan" >&2; exit 2 ;;
    esac

    key=load-key-$$
    export NEON_LOCAL_API_KEY=$key
    "${launcher[@]}" "$NEON_LOCAL" --data "$work/nl" --listen 127.0.0.1:0 --faults "$FAULTS" \
        >"$work/nl.out" 2>"$work/nl.err" &
    PID=$!
    for _ in $(seq 1 600); do
        grep -q '^neon-local: http://' "$work/nl.out" 2>/dev/null && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    URL=$(sed -n 's/^neon-local: //p' "$work/nl.out")
    if [ -z "$URL" ]; then
        echo "load: neon-local did not start" >&2
        tail -20 "$work/nl.err" >&2
        exit 1
    fi

    rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }

    failed=0
    fail() { echo "load: FAILED: $*"; failed=1; }

    gen() { nice -n 10 "$LOADGEN" --url "$URL" --key "$key" "$@"; }

    if ! read -r project main_branch < <(gen --setup load); then
        echo "load: cannot set up the project; neon-local said:" >&2
        grep -v ' -> [0-9]' "$work/nl.err" | tail -20 >&2
        exit 1
    fi
    echo "load: neon-local ${SANITIZER:+($SANITIZER) }at $URL, faults $FAULTS, project $project"

    gen --project "$project" --main "$main_branch" --clients "$CLIENTS" --requests "$WARMUP" --creations "$WARMUP_CREATIONS" \
        --prefix warm --seed "$((SEED + 1000))" >"$work/warm.txt" 2>&1 || {
        cat "$work/warm.txt"; fail "the warm-up"; }
    sleep 2 # its connections' threads gone
    rss_before=$(rss_kb)

    started=$SECONDS
    gen --project "$project" --main "$main_branch" --clients "$CLIENTS" --requests "$REQUESTS" --creations "$CREATIONS" \
        --think-ms "$THINK_MS" --prefix load --seed "$SEED" >"$work/load.txt" 2>&1 || fail "the load's checks"
    cat "$work/load.txt"
    sleep 2
    if ! kill -0 "$PID" 2>/dev/null; then
        fail "neon-local is gone (crashed?)"
        tail -30 "$work/nl.err"
        PID=
        exit 1
    fi
    rss_after=$(rss_kb)
    growth=$(awk -v a="$rss_after" -v b="$rss_before" 'BEGIN { printf "%.1f", (a - b) * 100 / b }')
    echo "load: neon-local RSS before=${rss_before} kB after=${rss_after} kB (${growth}%)"
    if [ -n "$RSS_GROWTH_MAX" ]; then
        awk -v g="$growth" -v m="$RSS_GROWTH_MAX" 'BEGIN { exit !(g > m) }' && fail "RSS grew by more than $RSS_GROWTH_MAX%"
    else
        echo "load: (RSS growth not checked under $SANITIZER)"
    fi

    kill -TERM "$PID"
    for _ in $(seq 1 1200); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$PID" 2>/dev/null; then
        fail "neon-local did not stop within 120 s of SIGTERM"
        code=timeout
    else
        code=0
        wait "$PID" || code=$?
    fi
    PID=
    echo "load: neon-local exit status on SIGTERM: $code"
    [ "$code" = 0 ] || { fail "exit status $code on SIGTERM"; tail -30 "$work/nl.err"; }

    if [ -n "$SANITIZER" ]; then
        reports=$(grep -cE 'ERROR: (Address|Leak)Sanitizer|runtime error:|WARNING: ThreadSanitizer' \
            "$work/nl.err" || true)
        echo "load: $SANITIZER reports: $reports"
        if [ "$reports" -gt 0 ]; then
            fail "$SANITIZER reported $reports problems; the first:"
            grep -m1 -n -E 'ERROR: (Address|Leak)Sanitizer|runtime error:|WARNING: ThreadSanitizer' "$work/nl.err" |
                cut -d: -f1 | { read -r line; sed -n "$line,$((line + 40))p" "$work/nl.err"; }
            mkdir -p "$ROOT/build-$SANITIZER"
            cp "$work/nl.err" "$ROOT/build-$SANITIZER/load.err" &&
                echo "load: neon-local's stderr kept in build-$SANITIZER/load.err"
        fi
    fi
    echo "load: $((SECONDS - started)) s; $([ "$failed" = 0 ] && echo passed || echo FAILED)"
    exit "$failed"
}

main "$@"
