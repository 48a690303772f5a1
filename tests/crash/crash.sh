#!/usr/bin/env bash
# A kill at every transition: each case of tests/crash/cases.sh runs once
# uninterrupted, its journal lists the transitions (every line: steps
# started and done, confirmations, the module calls between them); then,
# for each line k, the case runs again on a fresh project, drctl is killed
# (SIGKILL) the instant line k is durable, resumed with the approvals a
# scheduled run would have, and must end as the uninterrupted run did.
#
#   tests/crash/crash.sh [CASE...]        every line of each case (all by default)
#   CRASH_LANES=N                         how many kills run at once (default 2)
#   CRASH_EVERY=N                         every Nth line only (default 1: all)
#   CRASH_LINES="K ..."                   these lines only (a failure again)
#
# It needs drctl built with the test hooks (make hooks: bin-hooks/drctl):
# DRCTL_TEST_KILL_AT_SEQ does nothing in the normal build. Prints a table
# of lines covered / lines that exist, and exits non-zero on any failure.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
source tests/lib.sh
run_test() { :; }
for file in tests/e2e/*.sh; do source "$file"; done
source tests/crash/cases.sh
source tests/crash/kill.sh

cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=("${CRASH_CASES[@]}")
lanes=${CRASH_LANES:-2}
every=${CRASH_EVERY:-1}
[ -x "$CRASH_DRCTL" ] || { echo "no $CRASH_DRCTL: run make hooks first"; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/drctl-crash-XXXXXX")
chmod 755 "$work" # the branches' servers run as postgres, inside it
trap 'rm -rf "$work"' EXIT

# Verdict of one kill, from the status of its subshell.
verdict() { # STATUS DIR
    if [ "$1" -eq 0 ] && [ ! -e "$2/.failed" ]; then echo ok
    elif [ "$1" -eq 3 ]; then echo unreached
    else echo FAIL
    fi
}

# Whether line K is one to kill at (CRASH_LINES, else every CRASH_EVERY-th).
selected() { # K
    if [ -n "${CRASH_LINES:-}" ]; then [[ " $CRASH_LINES " == *" $1 "* ]]
    else [ $((($1 - 1) % every)) = 0 ]
    fi
}

# A lane makes its own template of the case (two lanes cannot share one:
# the branches' servers keep their addresses), then kills the lines k
# with k % lanes == LANE, each on a fresh copy. Lane 0 first runs the case
# uninterrupted, for the end state the others compare with.
lane() { # CASE LANE
    local c=$1 base=$work/$1-lane-$2 k status
    mkdir -p "$base/run"
    (export TEST_DIR="$base/run"; cd "$base/run" && set -e && crash_template "$c") >"$work/$c.template-$2.log" 2>&1 &&
        [ ! -e "$base/run/.failed" ] || { echo FAIL > "$work/$c.template-$2.verdict"; return; }
    cp -a "$base/run" "$base/template"
    if [ "$2" = 0 ]; then
        (export TEST_DIR="$base/run"; cd "$base/run" && set -e && crash_baseline "$c" "$work/$c.expected.tmp") \
            >"$work/$c.baseline.log" 2>&1
        status=$?
        if [ "$(verdict $status "$base/run")" = ok ]; then mv "$work/$c.expected.tmp" "$work/$c.expected"
        else echo FAIL > "$work/$c.baseline.verdict"; fi
    fi
    while [ ! -e "$work/$c.expected" ] && [ ! -e "$work/$c.baseline.verdict" ]; do sleep 0.5; done
    [ -e "$work/$c.expected" ] || return
    local lines slot=0
    lines=$(head -1 "$work/$c.expected")
    for k in $(seq 1 "$lines"); do
        selected "$k" || continue
        [ $((slot++ % lanes)) = "$2" ] || continue
        crash_reset "$base/template" "$base/run"
        (export TEST_DIR="$base/run"; cd "$base/run" && set -e && crash_kill_at "$c" "$k" "$work/$c.expected") \
            >"$work/$c.$k.log" 2>&1
        verdict $? "$base/run" > "$work/$c.$k.verdict"
    done
    pkill -9 -f "$base/" 2>/dev/null || true
    rm -rf "$base"
}

total_lines=0 total_covered=0 total_failed=0
printf '%-30s %10s %10s %8s\n' case covered lines failed > "$work/table"
for c in "${cases[@]}"; do
    echo "== $c"
    for i in $(seq 0 $((lanes - 1))); do lane "$c" "$i" & done
    wait
    if [ ! -e "$work/$c.expected" ]; then
        cat "$work/$c".template-*.log "$work/$c.baseline.log" 2>/dev/null | sed 's/^/  /'
        echo "FAIL $c: its setup or its uninterrupted run did not succeed"
        printf '%-30s %10s %10s %8s\n' "$c" 0 "?" setup >> "$work/table"
        total_failed=$((total_failed + 1))
        continue
    fi
    lines=$(head -1 "$work/$c.expected")
    echo "   $lines journal lines: $(sed -n 2p "$work/$c.expected")"
    covered=0 failed=0
    for k in $(seq 1 "$lines"); do
        selected "$k" || continue
        v=$(cat "$work/$c.$k.verdict" 2>/dev/null || echo FAIL)
        case $v in
            ok) covered=$((covered + 1)); echo "ok   $c killed after line $k: $(sed -n 's/^killed after: //p' "$work/$c.$k.log")" ;;
            unreached) echo "--   $c: line $k not reached (the run wrote fewer lines this time)" ;;
            *) failed=$((failed + 1)); echo "FAIL $c killed after line $k"; sed 's/^/  /' "$work/$c.$k.log" ;;
        esac
    done
    printf '%-30s %10s %10s %8s\n' "$c" "$covered" "$lines" "$failed" >> "$work/table"
    total_lines=$((total_lines + lines))
    total_covered=$((total_covered + covered))
    total_failed=$((total_failed + failed))
done
printf '%-30s %10s %10s %8s\n' all "$total_covered" "$total_lines" "$total_failed" >> "$work/table"
echo
cat "$work/table"
[ "$total_failed" -eq 0 ]
