#!/usr/bin/env bash
# make valgrind, second part: drctl under valgrind's memcheck for one full
# scenario (accidental-deletion, restore in place, its confirmation given)
# on neon-local: every read of uninitialized memory, bad free or leak of
# the real run fails it. The children drctl starts (pg_dump, git hooks)
# are not traced: they are not drctl.
set -u
cd "$(dirname "$0")/../.."
source tests/lib.sh
run_test() { :; }
for file in tests/e2e/*.sh; do source "$file"; done

t_a_scenario_under_valgrind() {
    salons_project
    incident
    set +e
    # Ten times slower under valgrind, a connection may need longer than
    # the default 10 s to come up.
    PGCONNECT_TIMEOUT=60 valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,possible \
        --errors-for-leak-kinds=definite,possible -q --log-file=valgrind.log \
        "$DRCTL" --runbooks "$SCENARIOS" run accidental-deletion -p "incident_time=$incident" --approve apply \
        >out 2>err </dev/null
    rc=$?
    set -e
    [ ! -s valgrind.log ] || { sed 's/^/    valgrind| /' valgrind.log | head -80 >&2; fail "valgrind found errors"; }
    expect_rc 0
    expect_eq "$(count_on "$uri" 'select count(*) from booking where "salonId" = 3')" "$lost" "salon 3's bookings on main"
    stop_neon_local
}

TESTS_PASSED=0 TESTS_FAILED=0
real_run_test() {
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/drctl-valgrind-XXXXXX")
    (export TEST_DIR="$dir"; cd "$dir" && set -e && "$1")
    local status=$?
    [ ! -e "$dir/.failed" ] || status=1
    pkill -9 -f "$dir" 2>/dev/null || true
    rm -rf "$dir"
    [ "$status" -eq 0 ]
}
if real_run_test t_a_scenario_under_valgrind; then
    echo "valgrind: a full accidental-deletion run on neon-local, no error, no leak"
else
    echo "valgrind: FAILED on the accidental-deletion run"
    exit 1
fi
