# drctl status and drctl audit log: by default the runs not ended and the
# 10 most recent; --all, --since, --runbook and --status pick others.

# A trail of 14 runs: one paused and one failed first (the oldest), then
# twelve done.
make_runs() {
    dr_notty run hold -p dir="$PWD" --run-id a-paused
    expect_rc 3
    dr_notty run flaky -p dir="$PWD" -p mode=fail --run-id a-failed
    expect_rc 1
    for i in $(seq -w 1 12); do
        dr_notty run hold -p dir="$PWD" --approve promote
        expect_rc 0
    done
}

ids_in() { jq -r '[.[].run_id] | join(",")' out; }

t_status_shows_the_runs_not_ended_and_the_ten_most_recent() {
    make_runs
    dr_notty status --json
    expect_rc 0
    expect_eq "$(jq length out)" 12 "rows"
    expect_eq "$(jq -r '[.[] | select(.status != "done")] | map(.run_id) | sort | join(",")' out)" \
        "a-failed,a-paused" "the runs not ended"
    # newest first, by start time
    expect_eq "$(jq -r '[.[].started_at] == ([.[].started_at] | sort | reverse)' out)" true "the order"
    newest=$(newest_run)
    expect_eq "$(jq -r '.[0].run_id' out)" "$newest" "the first row"
    dr_notty status
    expect_rc 0
    expect_eq "$(wc -l < out)" 12 "lines"
    expect_in err "12 of 14 runs: those not ended and the 10 most recent"
    dr_notty audit log
    expect_rc 0
    expect_eq "$(wc -l < out)" 12 "audit log lines"
    expect_in err "12 of 14 runs"
}

t_the_filters_pick_runs_however_old() {
    make_runs
    dr_notty status --all --json
    expect_eq "$(jq length out)" 14 "--all"
    dr_notty status --status paused --json
    expect_eq "$(ids_in)" a-paused "--status paused"
    dr_notty status --status failed --json
    expect_eq "$(ids_in)" a-failed "--status failed"
    dr_notty status --runbook flaky --json
    expect_eq "$(ids_in)" a-failed "--runbook flaky"
    dr_notty status --runbook hold --status done --json
    expect_eq "$(jq length out)" 12 "--runbook hold --status done"
    dr_notty status --runbook nothing-like-it
    expect_rc 0
    expect_eq "$(wc -l < out)" 0 "rows of an unknown runbook"
    expect_in err "0 of 14 runs"
    # --since: a time (the twelve done runs started after the second run)
    second=$(jq -r .started_at "$(rundir a-failed)/run.json")
    dr_notty status --since "$second" --json
    expect_eq "$(jq length out)" 13 "--since the second run's start"
    dr_notty audit log --since 1h --json
    expect_eq "$(jq length out)" 14 "--since 1h"
    expect_eq "$(jq -r 'all(.[]; has("duration_seconds"))' out)" true "durations in the log"
    dr_notty status --since "$(date -u +%Y-%m-%d)" --json
    expect_eq "$(jq length out)" 14 "--since today (a day alone)"
    dr_notty status --since 2099-01-01 --json
    expect_eq "$(jq length out)" 0 "--since the future"
}

t_a_run_killed_mid_step_is_shown_dead_however_old() {
    touch hold-copy
    "$DRCTL" --runbooks "$TEST_RUNBOOKS" run hold -p dir="$PWD" --run-id a-killed \
        >/dev/null 2>&1 </dev/null &
    pid=$!
    wait_for copy.started
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    rm -f hold-copy
    for i in $(seq 1 11); do
        dr_notty run hold -p dir="$PWD" --approve promote
        expect_rc 0
    done
    dr_notty status --json
    expect_eq "$(jq -r '.[] | select(.run_id == "a-killed") | .status' out)" running "the killed run"
    expect_eq "$(jq -r '.[] | select(.run_id == "a-killed") | .live' out)" false "live"
    dr_notty status
    expect_in out "dead (the process stopped mid-run; resume it)"
    dr_notty status --status dead --json
    expect_eq "$(ids_in)" a-killed "--status dead"
    # Resumed to its end, it is one of the old runs the default leaves out.
    dr_notty resume a-killed --approve promote --approve copy
    expect_rc 0
    dr_notty status --json
    expect_eq "$(jq length out)" 10 "rows once every run ended"
    expect_eq "$(jq -r '[.[].run_id] | index("a-killed")' out)" null "the old run, ended"
}

t_the_cache_of_runs_not_ended_is_rebuilt_when_it_cannot_be_trusted() {
    make_runs
    dr_notty status --json
    cp out expected
    cache=drctl-audit/.git/drctl/open-runs
    [ -s "$cache" ] || fail "no cache was kept"
    expect_eq "$(tail -n +2 "$cache" | sort | tr '\n' ,)" "a-failed,a-paused," "the cache"
    for broken in missing garbage torn foreign; do
        case $broken in
            missing) rm -f "$cache" ;;
            garbage) echo "not a cache" > "$cache" ;;
            torn) printf 'head %s\na-paused' "$(git -C drctl-audit rev-parse HEAD)" > "$cache" ;;
            foreign) printf 'head %s\n' "$(git -C drctl-audit hash-object -w /dev/null | sed 's/./0/g')" > "$cache" ;;
        esac
        dr_notty status --json
        expect_rc 0
        expect_eq "$(jq -c 'map(.run_id)' out)" "$(jq -c 'map(.run_id)' expected)" "status with a $broken cache"
    done
    # A cache that says nothing is open, written at HEAD, is believed:
    # the rows shown are still replayed from each run's journal.
    printf 'head %s\n' "$(git -C drctl-audit rev-parse HEAD)" > "$cache"
    dr_notty status --json
    expect_eq "$(jq length out)" 10 "rows with a cache that lists no run"
    expect_eq "$(jq -r 'all(.[]; .status == "done")' out)" true "the statuses, replayed"
    # The commits made after the cache's are read: a run paused since shows.
    dr_notty run hold -p dir="$PWD" --run-id a-later
    expect_rc 3
    dr_notty status --json
    expect_eq "$(jq -r '.[] | select(.run_id == "a-later") | .status' out)" paused "a run paused since"
}

t_filters_are_refused_where_they_do_not_apply_or_are_not_understood() {
    dr_notty status --since yesterday
    expect_rc 2
    expect_in err "--since 'yesterday' is neither a duration ago (30m, 12h, 7d) nor a time"
    dr_notty status --status finished
    expect_rc 2
    expect_in err "--status 'finished' is not a status: it is one of running, paused"
    dr_notty status some-run --all
    expect_rc 2
    expect_in err "--all does not apply to 'status some-run'"
    dr_notty audit verify --runbook hold
    expect_rc 2
    expect_in err "--runbook does not apply to 'audit verify'"
    dr_notty run hold -p dir="$PWD" --status done
    expect_rc 2
    expect_in err "--status does not apply to 'run"
    [ ! -e drctl-audit ] || fail "a refused command made a trail"
}

run_test t_status_shows_the_runs_not_ended_and_the_ten_most_recent
run_test t_the_filters_pick_runs_however_old
run_test t_a_run_killed_mid_step_is_shown_dead_however_old
run_test t_the_cache_of_runs_not_ended_is_rebuilt_when_it_cannot_be_trusted
run_test t_filters_are_refused_where_they_do_not_apply_or_are_not_understood
