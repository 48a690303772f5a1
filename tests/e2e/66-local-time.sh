# Times as a person reads them: a time typed without an offset is on the
# operator's clock (TZ), shown local and UTC in the plan, the confirmation
# and the report, recorded in UTC with the zone; DST gaps and overlaps are
# refused naming both readings.

# A runbook with a timestamp param, a destructive step whose confirmation
# names the instant, and a step that fails until told not to.
tz_runbook() {
    mkdir -p rb
    cat > rb/tz.lua <<'LUA'
local dr = require "dr"
return runbook {
  name = "tz", version = "1", summary = "an instant a person must judge",
  params = { at = { type = "timestamp", required = true, doc = "the instant" },
             flag = { type = "path", doc = "a file that must exist for the last step" } },
  steps = {
    { name = "apply", destructive = true,
      plan = function(ctx) return "go back to " .. dr.show_time(ctx.params.at) end,
      confirm = function(ctx)
        return { challenge = "tz", summary = "rows written after " .. dr.show_time(ctx.params.at) .. " are lost" }
      end,
      run = function(ctx) return { at = ctx.params.at } end },
    { name = "last", idempotent = true, run = function(ctx)
        if ctx.params.flag and not pcall(require("files").read_text, ctx.params.flag) then dr.fail("no flag yet") end
        dr.log("last step at " .. dr.show_time(ctx.params.at))
        return {}
      end },
  } }
LUA
}

tz() { # TZ drctl-args...
    local zone=$1
    shift
    set +e
    TZ=$zone "$DRCTL" --runbooks rb "$@" >out 2>err </dev/null
    rc=$?
    set -e
}

t_a_time_without_offset_is_on_the_operators_clock_and_shown_both_ways() {
    tz_runbook
    tz Europe/Paris plan tz -p at="2026-06-01 14:30:00"
    expect_rc 0
    expect_in out "go back to 2026-06-01 14:30:00 Europe/Paris (12:30:00Z)"
    tz Europe/Paris run tz -p at="2026-06-01 14:30:00" --approve apply --json
    expect_rc 0
    id=$(jq -r .run_id out)
    dir=$(rundir drctl-audit "$id")
    expect_eq "$(jq -r .params.at "$dir/run.json")" 2026-06-01T12:30:00Z "the instant recorded"
    expect_eq "$(jq -r .time_zone "$dir/run.json")" Europe/Paris "the zone recorded"
    expect_in "$dir/journal.jsonl" "rows written after 2026-06-01 14:30:00 Europe/Paris (12:30:00Z) are lost"
    expect_in "$dir/report.md" "| at | 2026-06-01T12:30:00Z: 2026-06-01 14:30:00 Europe/Paris (12:30:00Z) |"
    # An offset given is the one meant; in UTC the UTC form alone.
    tz UTC plan tz -p at="2026-06-01 14:30:00+02:00"
    expect_in out "go back to 2026-06-01T12:30:00Z"
    tz America/New_York plan tz -p at="2026-06-01T14:30:00Z"
    expect_in out "go back to 2026-06-01 10:30:00 America/New_York (14:30:00Z)"
}

t_a_resume_elsewhere_means_and_shows_the_same_instant() {
    tz_runbook
    tz Europe/Paris run tz -p at="2026-01-11 14:30:00" -p flag="$PWD/flag" --approve apply
    expect_rc 1
    id=$(run_id)
    touch flag
    tz America/New_York resume "$id"
    expect_rc 0
    dir=$(rundir drctl-audit "$id")
    expect_eq "$(jq -r .params.at "$dir/run.json")" 2026-01-11T13:30:00Z "the instant recorded"
    expect_in "$dir/journal.jsonl" "last step at 2026-01-11 14:30:00 Europe/Paris (13:30:00Z)"
}

t_a_time_the_clocks_skip_or_show_twice_is_refused_and_nothing_is_made() {
    tz_runbook
    tz Europe/Paris run tz -p at="2026-03-29 02:30:00" --approve apply
    expect_rc 2
    expect_in err "param 'at'"
    expect_in err "'2026-03-29 02:30:00' does not exist in Europe/Paris"
    expect_in err "+01:00 it is 01:30:00Z"
    expect_in err "+02:00 00:30:00Z"
    [ ! -e drctl-audit ] || fail "a refused time created the audit trail"
    tz Europe/Paris plan tz -p at="2026-10-25 02:30:00"
    expect_rc 2
    expect_in err "'2026-10-25 02:30:00' happens twice in Europe/Paris: at +02:00 (00:30:00Z) and at +01:00 (01:30:00Z)"
    tz Europe/Paris plan tz -p at="2026-10-25 02:30:00+01:00"
    expect_rc 0
    expect_in out "go back to 2026-10-25 02:30:00 Europe/Paris (01:30:00Z)"
}

t_status_since_reads_the_operators_clock_too() {
    tz_runbook
    tz UTC run tz -p at="2026-06-01T14:30:00Z" --approve apply
    expect_rc 0
    # Half an hour ahead on a clock 5:30 ahead of UTC: read as UTC, it
    # would be five hours ago, and the run would be listed.
    tz Asia/Kolkata status --since "$(TZ=Asia/Kolkata date -d '+30 min' '+%Y-%m-%d %H:%M:%S')" --json
    expect_rc 0
    expect_eq "$(jq -r 'length' out)" 0 "runs since half an hour from now"
    tz Asia/Kolkata status --since "$(TZ=Asia/Kolkata date -d '-30 min' '+%Y-%m-%d %H:%M:%S')" --json
    expect_eq "$(jq -r 'length' out)" 1 "runs since half an hour ago"
    tz Europe/Paris status --since "2026-03-29 02:30:00"
    expect_rc 2
    expect_in err "--since '2026-03-29 02:30:00': '2026-03-29 02:30:00' does not exist in Europe/Paris"
}

for t in t_a_time_without_offset_is_on_the_operators_clock_and_shown_both_ways \
         t_status_since_reads_the_operators_clock_too \
         t_a_resume_elsewhere_means_and_shows_the_same_instant \
         t_a_time_the_clocks_skip_or_show_twice_is_refused_and_nothing_is_made; do
    run_test "$t"
done
