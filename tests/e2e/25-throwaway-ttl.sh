# The branches a run makes for its own checks carry expires_at (a day
# unless -p throwaway_ttl or DRCTL_THROWAWAY_TTL says otherwise); the
# branches a run keeps do not (helpers from 90, 96 and 98).

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
    expect_eq "$(jq -r .params.throwaway_ttl "drctl-audit/runs/$run/run.json")" 7200 "the TTL recorded with the run"
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
    expect_in err "throwaway_ttl (or DRCTL_THROWAWAY_TTL)=31d is beyond what Neon allows"
    expect_in err "give at most 30d"
    expect_eq "$(branch_names)" "$before" "branches after a TTL beyond 30 days"
    rm -rf drctl-audit
    sc run corruption -p "last_good=$incident" -p throwaway_ttl=30s --approve apply
    expect_rc 1
    expect_in err "throwaway_ttl (or DRCTL_THROWAWAY_TTL)=30s is too short"
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
    expect_in err "-p ttl (or DRCTL_THROWAWAY_TTL)=45d is beyond what Neon allows"
    expect_eq "$(branch_names)" "$before" "branches after a drill refused its TTL"
    stop_neon_local
}

t_a_branch_backup_expires_only_when_asked() {
    salons_project
    sc run snapshot -p prefix=kept
    expect_rc 0
    kept=$(jq -r '.steps[] | select(.name == "backup") | .outputs.name' drctl-audit/runs/*/state.json)
    expect_eq "$(expires_of "$kept")" null "a backup without expires"
    rm -rf drctl-audit
    sleep 1.1
    sc run snapshot -p prefix=weekly -p expires=2d
    expect_rc 0
    weekly=$(jq -r '.steps[] | select(.name == "backup") | .outputs.name' drctl-audit/runs/*/state.json)
    expect_expires_in "$weekly" 172800
    rm -rf drctl-audit
    before=$(branch_names)
    sc run snapshot -p prefix=never -p expires=31d
    expect_rc 1
    expect_in err "-p expires=31d is beyond what Neon allows"
    expect_eq "$(branch_names)" "$before" "branches after an expiry beyond 30 days"
    stop_neon_local
}

for t in t_a_paused_runs_check_branch_expires_in_a_day_and_the_kept_one_never \
         t_the_environment_sets_the_ttl_and_a_promoted_branch_stops_expiring \
         t_a_ttl_neon_would_refuse_is_refused_before_anything_is_made \
         t_a_branch_backup_expires_only_when_asked; do
    run_test "$t"
done
