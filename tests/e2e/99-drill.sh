# drctl drill: a scenario's real runbook on a copy of production, on
# neon-local through the API (helpers from 90, 96 and 98).

# What production looks like: its branches, its default, its bookings.
production() {
    local names default rows
    names=$(branch_names)
    default=$(jq -r '.branches[] | select(.default) | .name' body.json)
    rows=$(count_on "$uri" "select count(*) || ':' || md5(string_agg(b::text, '' order by id)) from booking b")
    echo "$names|$default|$rows"
}

drill() {
    set +e
    "$DRCTL" --runbooks "$SCENARIOS" drill "$@" >out 2>err </dev/null
    rc=$?
    set -e
}

expect_drill_passed() {
    expect_rc 0
    expect_eq "$(jq -r .result out)" passed "result"
    expect_eq "$(jq -r '[.exactness[] | select(.match | not)] | length' out)" 0 "tables that do not match"
    expect_eq "$(jq -r .left_behind out)" 0 "left behind"
    jq -e '.rto_seconds > 0 and .rpo_seconds >= 0' out >/dev/null || fail "no RTO or RPO in the JSON"
}

t_drill_recovers_a_copy_under_writes_and_leaves_nothing_behind() {
    salons_project
    before=$(production)
    drill accidental-deletion -p write_rate=20 --json
    expect_drill_passed
    run=$(jq -r .run_id out)
    # The writes after the restore point are lost, counted and exactly those.
    jq -e '.rpo_rows.drctl_drill_ops > 0' out >/dev/null || fail "no write lost with 20 writes a second"
    expect_eq "$(jq -r '.exactness[] | select(.table == "booking") | .note' out)" "same rows" "booking"
    expect_eq "$(production)" "$before" "production: branches, default, bookings"
    # The incident really happened on the copy: the scenario saw the rows gone.
    jq -e '.steps[] | select(.name == "verify") | .outputs.now.booking < .outputs.at_restore_point.booking' out \
        >/dev/null || fail "the scenario did not see the deletion"
    # The copy carried a TTL (until the recovery branched from it).
    jq -e '.steps[] | select(.name == "copy") | .outputs.expires_at | test("^20")' out >/dev/null ||
        fail "the copy had no expires_at"
    expect_in "$(rundir drctl-audit "$run")/report.md" "| measure | RTO (s) |"
    expect_in "$(rundir drctl-audit "$run")/report.md" "| drill-cleanup | left behind | 0 |"
    expect_in "$(rundir drctl-audit "$run")/report.md" "| verdict | result | passed |"
    expect_in "$(rundir drctl-audit "$run")/report.md" "## Confirmations"
    sc drill --history --json
    expect_eq "$(jq -r 'length' out)" 1 "drills in the history"
    expect_eq "$(jq -r '.[0].scenario + " " + .[0].result' out)" "accidental-deletion passed" "history"
    sc drill --history
    expect_in out "accidental-deletion"
    sc audit verify
    expect_rc 0
    stop_neon_local
}

t_drill_promote_moves_only_the_drills_own_default() {
    salons_project
    before=$(production)
    drill accidental-deletion -p strategy=promote -p write_rate=10 --json
    expect_drill_passed
    expect_eq "$(jq -r '.recovered.label' out | cut -c1-22)" "the promoted branch br" "recovered"
    expect_eq "$(production)" "$before" "production after a promote drill"
    stop_neon_local
}

# A scenario runbook that tries to change production from inside a drill,
# catching every error so that only the engine can stop it.
hostile_runbook() {
    mkdir -p hostile
    cp -r "$ROOT/lua" .
    cat > hostile/accidental-deletion.lua <<'EOF'
local neon = require "neon"
local pg = require "pg"
local dr = require "dr"
return runbook {
  name = "accidental-deletion", version = "6.6.6", summary = "tries to touch production",
  params = { project = { type = "string", env = "NEON_PROJECT_ID" }, branch = { type = "string" },
             database = { type = "string", default = "neondb" }, role = { type = "string", default = "neondb_owner" },
             incident_time = { type = "timestamp" } },
  steps = {
    { name = "check", run = function(ctx)
        local p = ctx.params.project
        local source = neon.default_branch(p)
        local tries = {
          function() neon.delete_branch(p, source.id) end,
          function() neon.restore_branch(p, source.id, { source_branch_id = ctx.params.branch }) end,
          function() neon.update_branch(p, source.id, { name = "pwned" }) end,
          function() neon.update_project(p, { name = "pwned" }) end,
          function()
            local c = pg.connect(neon.connection_uri(p, { branch_id = source.id, database_name = "neondb",
                                                          role_name = "neondb_owner" }))
            c:exec("DELETE FROM booking")
          end,
          function()
            local c = pg.connect(neon.connection_uri(p, { branch_id = source.id, database_name = "neondb",
                                                          role_name = "neondb_owner" }))
            c:query("WITH d AS (DELETE FROM booking RETURNING 1) SELECT count(*) FROM d")
          end,
          function() dr.exec({ "psql", "-c", "DELETE FROM booking" }) end,
          function()
            require("drill").writer_start(neon.connection_uri(p, { branch_id = source.id, database_name = "neondb",
                                                                   role_name = "neondb_owner" }), 100)
          end,
        }
        local refused = 0
        for _, f in ipairs(tries) do if not pcall(f) then refused = refused + 1 end end
        return { refused = refused, source = source.id }
      end },
  },
}
EOF
}

t_drill_refuses_every_change_to_what_it_did_not_make() {
    salons_project
    hostile_runbook
    before=$(production)
    set +e
    "$DRCTL" --runbooks hostile drill accidental-deletion >out 2>err </dev/null
    rc=$?
    set -e
    expect_rc 1
    expect_in err "the drill refused"
    run=$(run_id)
    refused=$(jq -c 'select(.kind == "drill-refused")' "$(rundir drctl-audit "$run")/journal.jsonl" | wc -l)
    [ "$refused" -ge 8 ] || fail "only $refused refusals journaled"
    expect_eq "$(step_state "$run" check)" failed "the step that was refused"
    expect_eq "$(production)" "$before" "production after the hostile drill"
    expect_eq "$(jq -r '.steps[] | select(.name == "drill-cleanup") | .outputs.left_behind' \
                 "$(rundir drctl-audit "$run")/state.json")" 0 "left behind"
    stop_neon_local
}

# Starts a drill and kills it (-9) once STEP has started.
drill_killed_in() { # STEP drill-args...
    local step=$1 pid
    shift
    set +e
    "$DRCTL" --runbooks "$SCENARIOS" drill "$@" >out 2>err </dev/null &
    pid=$!
    set -e
    for _ in $(seq 1 1200); do
        grep -qs "\"step-started\",\"step\":\"$step\"" drctl-audit/runs/*/*/*/*/journal.jsonl && break
        sleep 0.05
    done
    sleep 0.3
    kill -9 "$pid" 2>/dev/null || fail "the drill ended before it was killed in $step"
    wait "$pid" 2>/dev/null || true
}

t_drill_killed_during_the_recovery_resumes_or_aborts_cleanly() {
    salons_project
    before=$(production)
    drill_killed_in apply accidental-deletion -p write_rate=10
    run=$(run_id)
    sc resume "$run" --json
    expect_rc 0
    expect_eq "$(jq -r .result out)" passed "the resumed drill"
    expect_eq "$(production)" "$before" "production after the resumed drill"
    # Killed again in another drill, then aborted: its cleanup runs.
    rm -rf drctl-audit
    drill_killed_in verify accidental-deletion
    sc abort "$(run_id)"
    expect_rc 0
    expect_eq "$(production)" "$before" "production after the aborted drill: nothing left behind"
    stop_neon_local
}

# A probe of the copy's history left in error (by a failed try, or a killed
# run) says nothing about now: the resumed drill makes another instead of
# waiting on it, and its cleanup deletes the one in error.
t_drill_makes_a_new_probe_instead_of_waiting_on_one_in_error() {
    salons_project
    before=$(production)
    drill_killed_in copy accidental-deletion --run-id probe-left
    ready_branch '{"branch":{"name":"history1-probe-left"}}'
    local address=${URL#http://}
    address=${address%%/*}
    stop_neon_local
    jq '(.projects[]._branches[]? | select(.name == "history1-probe-left") | .current_state) |= "error"' \
        nl/state.json > state.edited
    cp state.edited nl/state.json
    # On the same address: the run stays bound to the API it started on.
    start_neon_local --listen "$address"
    api GET "/projects/$project/branches/$branch_id" "$key"
    expect_eq "$(jq -r .branch.current_state body.json)" error "the probe left behind"
    sc resume probe-left --json
    expect_rc 0
    expect_eq "$(jq -r .result out)" passed "the resumed drill"
    expect_eq "$(jq -r .left_behind out)" 0 "left behind"
    expect_eq "$(production)" "$before" "production after the drill"
    stop_neon_local
}

t_drill_corruption_and_total_loss() {
    salons_project
    before=$(production)
    drill corruption -p write_rate=10 --json
    expect_drill_passed
    jq -e '.rpo_seconds > 0 and .rpo_seconds < 5' out >/dev/null || fail "corruption's RPO: $(jq .rpo_seconds out)"
    drill total-loss -p write_rate=10 --json
    expect_drill_passed
    expect_eq "$(jq -r '.recovered.label' out | cut -c1-16)" "the new project " "recovered"
    api GET /projects "$key"
    expect_eq "$(jq -r '.projects | length' body.json)" 1 "projects after the total-loss drill"
    expect_eq "$(production)" "$before" "production after both drills"
    # the total-loss drill exports into its run folder, removed when the run ends
    [ -z "$(ls .drctl/runs 2>/dev/null)" ] || fail "a drill's run folder was left: $(ls -R .drctl/runs)"
    stop_neon_local
}

t_drill_bad_input_changes_nothing() {
    salons_project
    before=$(production)
    drill snapshot
    expect_rc 2
    expect_in err "not a scenario a drill rehearses"
    drill accidental-deletion -p incident_time=2026-01-01T00:00:00Z
    expect_rc 2
    expect_in err "incident_time"
    drill accidental-deletion -p write_rate=5000
    expect_rc 2
    expect_in err "write_rate"
    drill --history extra
    expect_rc 2
    [ ! -d drctl-audit/runs ] || [ -z "$(run_ids)" ] || fail "a run was started: $(run_ids)"
    expect_eq "$(production)" "$before" "production"
    stop_neon_local
}

for t in t_drill_recovers_a_copy_under_writes_and_leaves_nothing_behind \
         t_drill_promote_moves_only_the_drills_own_default \
         t_drill_refuses_every_change_to_what_it_did_not_make \
         t_drill_killed_during_the_recovery_resumes_or_aborts_cleanly \
         t_drill_makes_a_new_probe_instead_of_waiting_on_one_in_error \
         t_drill_corruption_and_total_loss \
         t_drill_bad_input_changes_nothing; do
    run_test "$t"
done
