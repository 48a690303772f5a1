#!/usr/bin/env bash
# The team's routine on a busy database, back to back as cron would run it,
# on one neon-local project that an application writes to the whole time:
#
#   snapshot -> verify-backup -> retention -> export -> total-loss into a
#   throwaway project -> drill accidental-deletion (restore, promote,
#   reinsert) -> drill corruption -> retention again
#
# Once as is, once with neon-local failing 30% of its requests (429, 500,
# 503, dropped connections, slow answers) at a fixed seed. Every runbook
# must succeed, and the project must end as intended: main the default with
# every row the application wrote, the backups, nothing else.
#
#   bash tests/long/routine.sh            (make routine)
#   ROUTINE_FAULTS=0 / ROUTINE_CLEAN=0     skip one of the two passes
set -u
cd "$(dirname "$0")/../.."
source tests/lib.sh
# the helpers of the end-to-end files, without their tests
eval "real_$(declare -f run_test)"
run_test() { :; }
for f in tests/e2e/90-neon-local.sh tests/e2e/96-neon-module.sh tests/e2e/98-scenarios.sh; do source "$f"; done
eval "$(declare -f real_run_test | sed 's/^real_run_test/run_test/')"

# what the routine says goes to the terminal as it goes (fd 3), the rest to the test's log
exec 3>&1
say() { echo "$@" >&3; }

FAULTS="rate=0.3,kinds=429+500+503+reset+slow,seed=${ROUTINE_SEED:-11}"

# The application: inserts a client and updates a booking, several times a
# second, on main, until the file `stop` appears; counts its writes.
application() {
    : > app.count
    local n=0
    while [ ! -e stop ]; do
        n=$((n + 1))
        if psql "$uri" -Xq -v ON_ERROR_STOP=1 \
                -c "insert into client (name, email) values ('app', 'app-$n@example.org')" \
                -c "update booking set price = price + 1 where id = (select min(id) from booking)" 2>>app.err; then
            echo . >> app.count
        fi
        sleep 0.2
    done
}

# An API call that faults cannot stop: tried until it answers 2xx.
api_sure() { # METHOD PATH
    for _ in $(seq 1 40); do
        api "$1" "$2" "$key"
        case "$status" in 2*) return 0 ;; esac
        sleep 0.3
    done
    fail "$1 $2 kept failing ($status)"
}

step() { # NAME drctl-args...: a runbook of the routine, which must succeed
    local name=$1
    shift
    local t0=$SECONDS
    sc "$@"
    say "    $name: exit $rc in $((SECONDS - t0)) s"
    [ "$rc" = 0 ] || fail "$name failed (exit $rc)"
}

drill_step() { # NAME drill-args...
    step "$@" --json
    [ "$(jq -r .result out)" = passed ] || fail "$1: the drill did not pass: $(jq -c '{result, failure}' out)"
    [ "$(jq -r .left_behind out)" = 0 ] || fail "$1: left behind $(jq -r .left_behind out)"
    say "      RTO $(jq -r '.rto_seconds | floor' out) s, RPO $(jq -r .rpo_seconds out) s," \
         "rows lost $(jq -c .rpo_rows out)"
}

the_routine() {
    salons_project
    if [ "${WITH_FAULTS:-0}" = 1 ]; then
        # set up without faults, then the same neon-local data under faults
        stop_neon_local
        start_neon_local --faults "$FAULTS"
        export NEON_API_HOST=$URL
        say "    neon-local under --faults $FAULTS"
    fi
    application &
    app=$!
    mkdir -p exports
    step snapshot run snapshot
    step verify-backup run verify-backup
    step retention run retention --approve delete
    step export run export -p dest="$PWD/exports" --approve retention
    step total-loss run total-loss -p source="$PWD/exports" -p new_project=routine-restore --approve restore
    restored=$(jq -r '.steps[] | select(.name == "target") | .outputs.project' \
               "$(rundir "$(newest_run)")/state.json")
    api_sure DELETE "/projects/$restored"
    for strategy in restore promote reinsert; do
        drill_step "drill accidental-deletion ($strategy)" drill accidental-deletion -p strategy="$strategy" \
            -p write_rate=5
    done
    drill_step "drill corruption" drill corruption -p write_rate=5
    step "retention again" run retention --approve delete
    touch stop
    wait "$app"
    # The project as intended: main the default, every write of the
    # application on it, the backup branch, no drill's or run's leftovers.
    api_sure GET "/projects/$project/branches"
    expect_eq "$(jq -r '.branches[] | select(.default) | .name' body.json)" main "the default branch"
    extra=$(jq -r '[.branches[].name | select(. != "main" and (startswith("backup-") | not))] | join(",")' body.json)
    expect_eq "$extra" "" "branches other than main and the backups"
    [ "$(jq '[.branches[] | select(.name | startswith("backup-"))] | length' body.json)" -ge 1 ] ||
        fail "the backup is gone"
    api_sure GET /projects
    expect_eq "$(jq -r '[.projects[].id] | join(",")' body.json)" "$project" "projects"
    writes=$(wc -l < app.count)
    [ "$writes" -gt 20 ] || fail "the application wrote only $writes times"
    expect_eq "$(count_on "$uri" "select count(*) from client where name = 'app'")" "$writes" \
        "the application's clients on main"
    for run in $(rundirs); do
        [ "$(jq -r .status "$run/state.json")" = done ] || fail "$(basename "$run") is $(jq -r .status "$run/state.json")"
    done
    sc audit verify
    expect_rc 0
    say "    $writes writes by the application, $(run_ids | wc -l) runs, all done; audit verified"
    stop_neon_local
}

t_the_routine_back_to_back_on_a_busy_database() { WITH_FAULTS=0 the_routine; }
t_the_routine_back_to_back_under_api_faults() { WITH_FAULTS=1 the_routine; }

[ "${ROUTINE_CLEAN:-1}" = 1 ] && run_test t_the_routine_back_to_back_on_a_busy_database
[ "${ROUTINE_FAULTS:-1}" = 1 ] && run_test t_the_routine_back_to_back_under_api_faults
echo "routine: $TESTS_PASSED passed, $TESTS_FAILED failed"
[ "$TESTS_FAILED" -eq 0 ]
