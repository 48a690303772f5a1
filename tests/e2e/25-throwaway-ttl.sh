# The branches a run makes for its own checks carry expires_at (a day
# unless -p throwaway_ttl, DRCTL_THROWAWAY_TTL or the team's config.json
# throwaway_ttl says otherwise, in that order); the branches a run keeps
# do not (helpers from 90, 96 and 98).

# A branch's expires_at by name ("null" when it has none, "absent" when
# there is no such branch).
expires_of() { # NAME
    api GET "/projects/$project/branches" "$key"
    jq -r --arg n "$1" '([.branches[] | select(.name == $n)] | if length == 0 then "absent"
                         else (.[0].expires_at // "null") end)' body.json
}

# Fails unless the branch NAME expires SECONDS from now, give or take 5
# minutes (the time the run took to get there, and rounding).
expect_expires_in() { # NAME SECONDS
    local at
    at=$(expires_of "$1")
    case "$at" in absent | null) fail "branch $1: expires_at is $at, expected about $2 s ahead"; return 1 ;; esac
    local ahead=$(($(date -u -d "$at" +%s) - $(date +%s)))
    [ "$ahead" -le "$2" ] && [ "$ahead" -ge $(($2 - 300)) ] ||
        fail "branch $1 expires at $at ($ahead s ahead), expected about $2 s ahead"
}

lower() { echo "$1" | tr 'A-Z' 'a-z'; }

t_a_paused_runs_check_branch_expires_in_a_day_and_the_kept_one_never() {
    salons_project
    incident
    # Paused at its confirmation: the point-in-time branch is there.
    sc run accidental-deletion -p "incident_time=$incident"
    expect_rc 3
    run=$(run_id)
    expect_expires_in "check-$(lower "$run")" 86400
    expect_eq "$(expires_of main)" null "main"
    sc resume "$run" --approve apply
    expect_rc 0
    expect_eq "$(expires_of "main-before-restore-$(lower "$run")")" null "the kept branch"
    expect_eq "$(expires_of main)" null "main after the restore"
    expect_eq "$(branch_names)" "main,main-before-restore-$(lower "$run")" "the check branch deleted"
    stop_neon_local
}

t_the_environment_sets_the_ttl_and_a_promoted_branch_stops_expiring() {
    salons_project
    sleep 2
    good=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    sleep 1
    psql "$uri" -Xqc "update client set phone = 'broken'"
    DRCTL_THROWAWAY_TTL=2h sc run corruption -p "last_good=$good" -p strategy=promote
    expect_rc 3
    run=$(run_id)
    restored="restore-$(lower "$run")"
    expect_expires_in "$restored" 7200
    expect_eq "$(jq -r .params.throwaway_ttl "$(rundir drctl-audit "$run")/run.json")" 7200 "the TTL recorded with the run"
    sc resume "$run" --approve apply
    expect_rc 0
    api GET "/projects/$project/branches" "$key"
    expect_eq "$(jq -r '.branches[] | select(.default) | .name' body.json)" "$restored" "the default branch"
    expect_eq "$(expires_of "$restored")" null "the promoted branch"
    expect_in err "is kept: it no longer expires"
    stop_neon_local
}

t_a_ttl_neon_would_refuse_is_refused_before_anything_is_made() {
    salons_project
    incident
    before=$(branch_names)
    DRCTL_THROWAWAY_TTL=31d sc run accidental-deletion -p "incident_time=$incident" --approve apply
    expect_rc 1
    expect_in err "throwaway_ttl (or DRCTL_THROWAWAY_TTL, or the throwaway_ttl setting)=31d is beyond what Neon allows"
    expect_in err "give at most 30d"
    expect_eq "$(branch_names)" "$before" "branches after a TTL beyond 30 days"
    rm -rf drctl-audit
    sc run corruption -p "last_good=$incident" -p throwaway_ttl=30s --approve apply
    expect_rc 1
    expect_in err "throwaway_ttl (or DRCTL_THROWAWAY_TTL, or the throwaway_ttl setting)=30s is too short"
    expect_eq "$(branch_names)" "$before" "branches after a TTL under a minute"
    rm -rf drctl-audit
    sc run snapshot
    expect_rc 0
    rm -rf drctl-audit
    before=$(branch_names)
    sc run verify-backup -p throwaway_ttl=40d
    expect_rc 1
    expect_in err "=40d is beyond what Neon allows"
    expect_eq "$(branch_names)" "$before" "branches after verify-backup refused its TTL"
    rm -rf drctl-audit
    # A drill's one TTL, from the environment as well.
    DRCTL_THROWAWAY_TTL=45d sc drill accidental-deletion
    expect_rc 1
    expect_in err "-p ttl (or DRCTL_THROWAWAY_TTL, or the throwaway_ttl setting)=45d is beyond what Neon allows"
    expect_eq "$(branch_names)" "$before" "branches after a drill refused its TTL"
    stop_neon_local
}

t_a_branch_backup_expires_only_when_asked() {
    salons_project
    sc run snapshot -p prefix=kept
    expect_rc 0
    kept=$(jq -r '.steps[] | select(.name == "backup") | .outputs.name' drctl-audit/runs/*/*/*/*/state.json)
    expect_eq "$(expires_of "$kept")" null "a backup without expires"
    rm -rf drctl-audit
    sleep 1.1
    sc run snapshot -p prefix=weekly -p expires=2d
    expect_rc 0
    weekly=$(jq -r '.steps[] | select(.name == "backup") | .outputs.name' drctl-audit/runs/*/*/*/*/state.json)
    expect_expires_in "$weekly" 172800
    rm -rf drctl-audit
    before=$(branch_names)
    sc run snapshot -p prefix=never -p expires=31d
    expect_rc 1
    expect_in err "-p expires=31d is beyond what Neon allows"
    expect_eq "$(branch_names)" "$before" "branches after an expiry beyond 30 days"
    stop_neon_local
}

t_the_teams_setting_sets_the_ttl_and_the_command_line_and_environment_win() {
    salons_project
    incident
    sc config set throwaway_ttl 2h
    expect_rc 0
    # The plan says where the value came from.
    sc plan accidental-deletion -p "incident_time=$incident"
    expect_rc 0
    expect_in out "param throwaway_ttl = 7200"
    expect_in err "param throwaway_ttl = 2h (from config.json throwaway_ttl)"
    expect_in out "param throwaway_ttl = 7200 (from config throwaway_ttl)"
    expect_in out "param strategy = restore (from default)"
    expect_in out "param incident_time = $incident (from -p)"
    head -1 err | grep -q "^target: " || fail "the first line does not name the target: $(head -1 err)"
    sc run accidental-deletion -p "incident_time=$incident"
    expect_rc 3
    run=$(newest_run)
    expect_expires_in "check-$(lower "$run")" 7200
    expect_eq "$(jq -r .params.throwaway_ttl "$(rundir drctl-audit "$run")/run.json")" 7200 "the TTL recorded with the run"
    sc abort "$run"
    expect_rc 0
    # The environment wins over the setting...
    sleep 1.1
    DRCTL_THROWAWAY_TTL=3h sc plan accidental-deletion -p "incident_time=$incident" --json
    expect_eq "$(jq -r '.param_sources | [.throwaway_ttl, .project, .incident_time] | @tsv' out)" \
        "DRCTL_THROWAWAY_TTL	NEON_PROJECT_ID	-p" "param sources in plan --json"
    DRCTL_THROWAWAY_TTL=3h sc run accidental-deletion -p "incident_time=$incident"
    expect_rc 3
    run=$(newest_run)
    expect_expires_in "check-$(lower "$run")" 10800
    expect_not_in err "from config.json"
    sc abort "$run"
    expect_rc 0
    # ... and -p over both.
    sleep 1.1
    DRCTL_THROWAWAY_TTL=3h sc run accidental-deletion -p "incident_time=$incident" -p throwaway_ttl=4h
    expect_rc 3
    run=$(newest_run)
    expect_expires_in "check-$(lower "$run")" 14400
    sc abort "$run"
    expect_rc 0
    # Unset, the default is back.
    sc config unset throwaway_ttl
    expect_rc 0
    sc plan accidental-deletion -p "incident_time=$incident"
    expect_rc 0
    expect_in out "param throwaway_ttl = 86400"
    expect_not_in err "from config.json"
    stop_neon_local
}

t_a_drill_takes_the_teams_ttl_and_a_refused_one_names_the_setting() {
    salons_project
    before=$(branch_names)
    sc config set throwaway_ttl 45d
    expect_rc 0
    sc drill accidental-deletion
    expect_rc 1
    expect_in err "param ttl = 45d (from config.json throwaway_ttl)"
    expect_in err "=45d is beyond what Neon allows"
    expect_eq "$(branch_names)" "$before" "branches after a drill refused the team's TTL"
    # A runbook run takes it too, and refuses it before anything is made.
    sc run verify-backup
    expect_rc 1
    expect_in err "param throwaway_ttl = 45d (from config.json throwaway_ttl)"
    expect_in err "=45d is beyond what Neon allows"
    expect_eq "$(branch_names)" "$before" "branches after verify-backup refused the team's TTL"
    stop_neon_local
}

t_a_config_json_that_does_not_load_refuses_only_the_runbooks_that_read_it() {
    chmod 755 .
    start_neon_local
    use_api
    make_project
    export NEON_PROJECT_ID=$project
    sc config set contact "ops@example.org"
    expect_rc 0
    # By hand, a setting that is not one: drctl config would refuse it too.
    echo '{"throwaway_tll": "2h"}' >drctl-audit/config.json
    sc plan verify-backup
    expect_rc 2
    expect_in err "drctl-audit/config.json"
    expect_in err "'throwaway_tll' is not a setting"
    DRCTL_THROWAWAY_TTL=2h sc plan verify-backup
    expect_rc 2
    expect_in err "drctl-audit/config.json"
    # snapshot has no param with config: it never reads the file.
    sc plan snapshot
    expect_rc 0
    expect_not_in err "config.json"
    stop_neon_local
}

for t in t_a_paused_runs_check_branch_expires_in_a_day_and_the_kept_one_never \
         t_the_environment_sets_the_ttl_and_a_promoted_branch_stops_expiring \
         t_a_ttl_neon_would_refuse_is_refused_before_anything_is_made \
         t_a_branch_backup_expires_only_when_asked \
         t_the_teams_setting_sets_the_ttl_and_the_command_line_and_environment_win \
         t_a_drill_takes_the_teams_ttl_and_a_refused_one_names_the_setting \
         t_a_config_json_that_does_not_load_refuses_only_the_runbooks_that_read_it; do
    run_test "$t"
done
