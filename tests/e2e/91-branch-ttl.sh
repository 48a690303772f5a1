# neon-local: branch expiration (branch.expires_at), as the Neon API spec and
# Neon's branch expiration guide describe it (helpers from 90-neon-local.sh).

# An RFC 3339 UTC time SECONDS from now, whole seconds.
ttl_in() { # SECONDS
    date -u -d "@$(($(date +%s) + $1))" +%Y-%m-%dT%H:%M:%SZ
}

ttl_send() { # METHOD PATH JSON: status and body.json
    status=$(curl -s -o body.json -w '%{http_code}' -X "$1" -H "Authorization: Bearer $key" -d "$3" "$URL$2")
}

# What a refused request must leave alone: the project's branches (hidden
# snapshots included) and operations, as state.json holds them.
ttl_state() {
    jq -c '[.projects[] | {b: [._branches[] | {id, name, expires_at, protected}], o: (._operations | length)}]' nl/state.json
}

# Waits (up to 40 s) until GET on a branch answers 404.
ttl_wait_gone() { # BRANCH_ID
    for _ in $(seq 1 160); do
        call GET "/projects/$project/branches/$1"
        [ "$status" = 404 ] && return 0
        sleep 0.25
    done
    fail "branch $1 is still there (status $status, expires_at $(jq -r .branch.expires_at body.json))"
}

t_expires_at_is_taken_shown_and_checked_on_create() {
    chmod 755 .
    start_neon_local
    ready_project
    main_id=$(jq -r .branch.id created.json)
    due=$(ttl_in 86400)
    ttl_send POST "/projects/$project/branches" "{\"branch\":{\"name\":\"ci\",\"expires_at\":\"$due\"}}"
    expect_eq "$status" 201 "create with expires_at ($(jq -r .message body.json))"
    cp body.json ci.json
    ci=$(jq -r .branch.id ci.json)
    expect_eq "$(jq -r .branch.expires_at ci.json)" "$due" "expires_at in the create answer"
    ttl=$(jq -r .branch.ttl_interval_seconds ci.json)
    [ "$ttl" -ge 86398 ] && [ "$ttl" -le 86400 ] || fail "ttl_interval_seconds: $ttl, expected about 86400"
    for op in $(jq -r '.operations[].id' ci.json); do wait_operation "$project" "$op" "$key"; done
    call GET "/projects/$project/branches/$ci"
    expect_eq "$(jq -r .branch.expires_at body.json)" "$due" "expires_at in get"
    expect_eq "$(jq -r .branch.ttl_interval_seconds body.json)" "$ttl" "ttl_interval_seconds in get"
    call GET "/projects/$project/branches"
    expect_eq "$(jq -r '.branches[] | select(.name == "ci") | .expires_at' body.json)" "$due" "expires_at in list"
    expect_eq "$(jq -r '.branches[] | select(.name == "main") | has("expires_at")' body.json)" false "main has none"
    # An offset and a fraction: the instant is kept in UTC, whole seconds.
    at=$(($(date +%s) + 3600))
    ttl_send POST "/projects/$project/branches" \
        "{\"branch\":{\"name\":\"tokyo\",\"expires_at\":\"$(TZ=Asia/Tokyo date -d "@$at" +%Y-%m-%dT%H:%M:%S).750+09:00\"}}"
    expect_eq "$status" 201 "an offset and a fraction ($(jq -r .message body.json))"
    expect_eq "$(jq -r .branch.expires_at body.json)" "$(date -u -d "@$at" +%Y-%m-%dT%H:%M:%SZ)" "normalised"
    for op in $(jq -r '.operations[].id' body.json); do wait_operation "$project" "$op" "$key"; done
    # 30 days ahead is the most: just under is taken.
    ttl_send POST "/projects/$project/branches" "{\"branch\":{\"name\":\"month\",\"expires_at\":\"$(ttl_in $((30 * 86400 - 60)))\"}}"
    expect_eq "$status" 201 "just under 30 days ($(jq -r .message body.json))"
    for op in $(jq -r '.operations[].id' body.json); do wait_operation "$project" "$op" "$key"; done
    # Refused with 400 in Neon's shape, and nothing made.
    before=$(ttl_state)
    soon=$(ttl_in 3600)
    for spec in "\"expires_at\":\"$(ttl_in -60)\"" \
                "\"expires_at\":\"$(ttl_in $((30 * 86400 + 3600)))\"" \
                '"expires_at":"tomorrow"' \
                '"expires_at":"2026-13-01T00:00:00Z"' \
                "\"expires_at\":\"${soon%Z}\"" \
                "\"expires_at\":\"${soon/T/ }\"" \
                "\"expires_at\":\"${soon%Z}Z+01:00\"" \
                '"expires_at":1767225600' \
                "\"expires_at\":\"$soon\",\"protected\":true" \
                "\"expires_at\":\"$soon\",\"parent_id\":\"$ci\"" \
                "\"parent_id\":\"$ci\""; do
        ttl_send POST "/projects/$project/branches" "{\"branch\":{\"name\":\"refused\",$spec},\"endpoints\":[{\"type\":\"read_write\"}]}"
        expect_eq "$status" 400 "status for $spec"
        expect_eq "$(jq -r 'has("code") and has("message") and has("request_id")' body.json)" true "error shape for $spec"
    done
    expect_eq "$(ttl_state)" "$before" "the state after refused requests"
    call GET "/projects/$project/branches"
    expect_eq "$(jq -r '[.branches[].name] | sort | join(",")' body.json)" "ci,main,month,tokyo" "branches"
    # protected alone is taken on create (it is what excludes expires_at).
    ttl_send POST "/projects/$project/branches" '{"branch":{"name":"guarded","protected":true}}'
    expect_eq "$status/$(jq -r .branch.protected body.json)" 201/true "create protected"
    for op in $(jq -r '.operations[].id' body.json); do wait_operation "$project" "$op" "$key"; done
    # The messages say which rule.
    ttl_send POST "/projects/$project/branches" "{\"branch\":{\"expires_at\":\"$(ttl_in -60)\"}}"
    expect_in body.json "is not in the future"
    ttl_send POST "/projects/$project/branches" "{\"branch\":{\"expires_at\":\"$(ttl_in $((31 * 86400)))\"}}"
    expect_in body.json "more than 30 days"
    ttl_send POST "/projects/$project/branches" '{"branch":{"expires_at":"2026-01-11 14:30:00"}}'
    expect_in body.json "RFC 3339 time with a time zone"
    ttl_send POST "/projects/$project/branches" "{\"branch\":{\"parent_id\":\"$ci\"}}"
    expect_in body.json "an expiring branch cannot have child branches"
    stop_neon_local
}

t_patch_sets_moves_and_clears_expires_at_within_the_rules() {
    chmod 755 .
    start_neon_local
    ready_project
    main_id=$(jq -r .branch.id created.json)
    ready_branch '{"branch":{"name":"b"}}'
    b=$branch_id
    due=$(ttl_in 7200)
    ttl_send PATCH "/projects/$project/branches/$b" "{\"branch\":{\"expires_at\":\"$due\"}}"
    expect_eq "$status" 200 "set ($(jq -r .message body.json))"
    expect_eq "$(jq -r .branch.expires_at body.json)" "$due" "set"
    ttl=$(jq -r .branch.ttl_interval_seconds body.json)
    [ "$ttl" -ge 7198 ] && [ "$ttl" -le 7200 ] || fail "ttl_interval_seconds: $ttl, expected about 7200"
    later=$(ttl_in 172800)
    ttl_send PATCH "/projects/$project/branches/$b" "{\"branch\":{\"expires_at\":\"$later\"}}"
    expect_eq "$(jq -r .branch.expires_at body.json)" "$later" "moved"
    ttl=$(jq -r .branch.ttl_interval_seconds body.json)
    [ "$ttl" -ge 172798 ] && [ "$ttl" -le 172800 ] || fail "ttl_interval_seconds after the move: $ttl"
    # Left out: unchanged.
    ttl_send PATCH "/projects/$project/branches/$b" '{"branch":{"name":"b2"}}'
    expect_eq "$(jq -r .branch.expires_at body.json)" "$later" "a rename keeps it"
    # Refused changes leave it as it was.
    before=$(ttl_state)
    for value in "\"$(ttl_in -5)\"" "\"$(ttl_in $((40 * 86400)))\"" '"next week"' 7 true; do
        ttl_send PATCH "/projects/$project/branches/$b" "{\"branch\":{\"name\":\"renamed\",\"expires_at\":$value}}"
        expect_eq "$status" 400 "PATCH expires_at $value"
    done
    expect_eq "$(ttl_state)" "$before" "the state after refused changes"
    call GET "/projects/$project/branches/$b"
    expect_eq "$(jq -r .branch.name body.json)/$(jq -r .branch.expires_at body.json)" "b2/$later" "after refused changes"
    # Neon's rules: an expiring branch is never protected, the default, or a parent.
    ttl_send PATCH "/projects/$project/branches/$b" '{"branch":{"protected":true}}'
    expect_eq "$status" 400 "protect an expiring branch"
    expect_in body.json "an expiring branch cannot be protected"
    call POST "/projects/$project/branches/$b/set_as_default"
    expect_eq "$status" 400 "make an expiring branch the default"
    expect_in body.json "cannot be the default"
    ttl_send PATCH "/projects/$project/branches/$main_id" "{\"branch\":{\"expires_at\":\"$due\"}}"
    expect_eq "$status" 400 "expire the default branch"
    expect_in body.json "it is the project's default branch"
    # null removes it (and its interval).
    ttl_send PATCH "/projects/$project/branches/$b" '{"branch":{"expires_at":null}}'
    expect_eq "$status" 200 "clear"
    expect_eq "$(jq -r '.branch | has("expires_at") or has("ttl_interval_seconds")' body.json)" false "cleared"
    call GET "/projects/$project/branches/$b"
    expect_eq "$(jq -r '.branch | has("expires_at")' body.json)" false "cleared in get"
    ttl_send PATCH "/projects/$project/branches/$b" '{"branch":{"protected":true}}'
    expect_eq "$status" 200 "protect once it does not expire"
    ttl_send PATCH "/projects/$project/branches/$b" "{\"branch\":{\"expires_at\":\"$due\"}}"
    expect_eq "$status" 400 "expire a protected branch"
    expect_in body.json "it is protected"
    # Both in one request: unprotected and expiring is allowed, and back.
    ttl_send PATCH "/projects/$project/branches/$b" "{\"branch\":{\"protected\":false,\"expires_at\":\"$due\"}}"
    expect_eq "$status/$(jq -r .branch.protected body.json)/$(jq -r .branch.expires_at body.json)" "200/false/$due" "unprotect and expire"
    ttl_send PATCH "/projects/$project/branches/$b" '{"branch":{"protected":true,"expires_at":null}}'
    expect_eq "$status/$(jq -r .branch.protected body.json)/$(jq -r '.branch | has("expires_at")' body.json)" "200/true/false" "protect and clear"
    ttl_send PATCH "/projects/$project/branches/$b" '{"branch":{"protected":false}}'
    # A parent cannot expire.
    ready_branch "{\"branch\":{\"name\":\"child\",\"parent_id\":\"$b\"}}"
    ttl_send PATCH "/projects/$project/branches/$b" "{\"branch\":{\"expires_at\":\"$due\"}}"
    expect_eq "$status" 400 "expire a parent"
    expect_in body.json "it has child branches"
    # Survives a restart as set.
    ttl_send PATCH "/projects/$project/branches/$branch_id" "{\"branch\":{\"expires_at\":\"$due\"}}"
    expect_eq "$status" 200 "expire the child"
    stop_neon_local
    start_neon_local
    call GET "/projects/$project/branches/$branch_id"
    expect_eq "$(jq -r .branch.expires_at body.json)" "$due" "after a restart"
    stop_neon_local
}

t_an_expired_branch_is_deleted_with_its_server_and_data() {
    chmod 755 .
    start_neon_local
    ready_project
    ready_branch '{"branch":{"name":"stays"}}'
    stays=$branch_id
    due=$(ttl_in 10)
    ready_branch "{\"branch\":{\"name\":\"short\",\"expires_at\":\"$due\"},\"endpoints\":[{\"type\":\"read_write\"}]}"
    short=$branch_id
    endpoint=$(jq -r '.endpoints[0].id' branch.json)
    port=$(echo "$branch_uri" | sed -E 's/.*:([0-9]+)\/.*/\1/')
    expect_eq "$(psql "$branch_uri" -XAtc 'select 1')" 1 "the branch's server before it expires"
    [ -d "nl/pg/$short/data" ] || fail "no data folder before it expires"
    call GET "/projects/$project/branches/$short"
    expect_eq "$status" 200 "before it expires"
    ttl_wait_gone "$short"
    [ "$(date +%s)" -ge "$(date -d "$due" +%s)" ] || fail "deleted before its expires_at"
    # Deleted as DELETE deletes: its server stops, its data is kept for
    # the recovery period (88-neon-local-recover.sh recovers it).
    # Its operations end once its server is stopped.
    for _ in $(seq 1 120); do
        call GET "/projects/$project/operations"
        [ "$(jq -r --arg b "$short" '[.operations[] | select(.branch_id == $b and .action == "delete_timeline") | .status] | join(",")' body.json)" = finished ] && break
        sleep 0.25
    done
    call GET "/projects/$project/branches"
    expect_eq "$(jq -r '[.branches[].name] | sort | join(",")' body.json)" "main,stays" "the list"
    call GET "/projects/$project/endpoints/$endpoint"
    expect_eq "$status" 404 "its endpoint"
    call GET "/projects/$project/endpoints"
    expect_eq "$(jq -r --arg b "$short" '[.endpoints[] | select(.branch_id == $b)] | length' body.json)" 0 "endpoints list"
    call GET "/projects/$project/branches/$short/roles"
    expect_eq "$status" 404 "its roles"
    [ -d "nl/pg/$short/data" ] || fail "its data folder is gone, though it is recoverable"
    ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || fail "its server still listens on port $port"
    call GET "/projects/$project/branches?include_deleted=true"
    expect_eq "$(jq -r --arg b "$short" '.branches[] | select(.id == $b) | .recovery.deletion_method' body.json)" ttl \
        "listed as deleted by its TTL"
    call GET "/projects/$project/operations"
    expect_eq "$(jq -r --arg b "$short" '[.operations[] | select(.branch_id == $b and .action == "delete_timeline") | .status] | join(",")' body.json)" \
        finished "its deletion's operation"
    grep -q "branch $short expired at $due" nl.err || fail "the deletion is not logged"
    call GET "/projects/$project/branches/$stays"
    expect_eq "$status" 200 "a branch without expires_at"
    stop_neon_local
}

t_clock_speed_runs_branch_expiry_faster() {
    chmod 755 .
    # Two minutes of the schedule clock every second, from the start.
    started=$(date +%s)
    start_neon_local --clock-speed 120
    ready_project
    ready_branch "{\"branch\":{\"name\":\"a-month\",\"expires_at\":\"$(ttl_in $((29 * 86400)))\"}}"
    later=$branch_id
    # Due on the schedule clock about 8 s from now: far ahead on the real one.
    due=$((started + ($(date +%s) + 8 - started) * 120))
    ttl_send POST "/projects/$project/branches" \
        "{\"branch\":{\"name\":\"fast\",\"expires_at\":\"$(date -u -d "@$due" +%Y-%m-%dT%H:%M:%SZ)\"}}"
    expect_eq "$status" 201 "create ($(jq -r .message body.json))"
    soon=$(jq -r .branch.id body.json)
    [ $((due - $(date +%s))) -gt 600 ] || fail "expires_at is not far ahead on the real clock"
    call GET "/projects/$project/branches/$soon"
    expect_eq "$status" 200 "not at once"
    ttl_wait_gone "$soon"
    call GET "/projects/$project/branches?include_deleted=true"
    expect_eq "$(jq -r --arg b "$soon" '.branches[] | select(.id == $b) | .recovery.deletion_method' body.json)" ttl \
        "listed as deleted by its TTL"
    call GET "/projects/$project/branches/$later"
    expect_eq "$status" 200 "a branch due in 29 days"
    stop_neon_local
}

t_expires_at_survives_a_restart_and_lapses_while_stopped() {
    chmod 755 .
    start_neon_local
    ready_project
    due=$(ttl_in 86400)
    ready_branch "{\"branch\":{\"name\":\"keep\",\"expires_at\":\"$due\"}}"
    keep=$branch_id
    ttl=$(jq -r .branch.ttl_interval_seconds branch.json)
    lapse_due=$(ttl_in 8)
    ready_branch "{\"branch\":{\"name\":\"lapse\",\"expires_at\":\"$lapse_due\"}}"
    lapse=$branch_id
    call GET "/projects/$project/branches/$lapse"
    expect_eq "$status" 200 "before the stop"
    stop_neon_local
    expect_eq "$(jq -r --arg b "$keep" '.projects[0]._branches[] | select(.id == $b) | .expires_at' nl/state.json)" "$due" "in state.json"
    # Its time passes while neon-local is stopped: it goes once it is back.
    while [ "$(date +%s)" -le "$(date -d "$lapse_due" +%s)" ]; do sleep 0.5; done
    start_neon_local
    call GET "/projects/$project/branches/$keep"
    expect_eq "$(jq -r .branch.expires_at body.json)" "$due" "expires_at after a restart"
    expect_eq "$(jq -r .branch.ttl_interval_seconds body.json)" "$ttl" "ttl_interval_seconds after a restart"
    ttl_wait_gone "$lapse"
    call GET "/projects/$project/branches?include_deleted=true"
    expect_eq "$(jq -r --arg b "$lapse" '.branches[] | select(.id == $b) | .recovery.deletion_method' body.json)" ttl \
        "the lapsed branch is kept, recoverable"
    stop_neon_local
}

t_a_reset_from_the_parent_restarts_the_ttl() {
    chmod 755 .
    start_neon_local
    ready_project
    main_id=$(jq -r .branch.id created.json)
    ready_branch "{\"branch\":{\"name\":\"preview\",\"expires_at\":\"$(ttl_in 3600)\"},\"endpoints\":[{\"type\":\"read_write\"}]}"
    first=$(jq -r .branch.expires_at branch.json)
    ttl=$(jq -r .branch.ttl_interval_seconds branch.json)
    sleep 2
    ttl_send POST "/projects/$project/branches/$branch_id/restore" "{\"source_branch_id\":\"$main_id\"}"
    expect_eq "$status" 200 "reset from the parent ($(jq -r .message body.json))"
    for op in $(jq -r '.operations[].id' body.json); do wait_operation "$project" "$op" "$key"; done
    call GET "/projects/$project/branches/$branch_id"
    again=$(jq -r .branch.expires_at body.json)
    [ "$(date -d "$again" +%s)" -ge "$(($(date -d "$first" +%s) + 2))" ] || fail "expires_at $again, first $first: not restarted"
    expect_eq "$(jq -r .branch.ttl_interval_seconds body.json)" "$ttl" "the interval"
    stop_neon_local
}

# neon.create_branch passes its spec's fields into the branch: the snapshot
# runbook's `expires` reaches neon-local as expires_at.
t_drctl_backup_branches_carry_expires_at() {
    chmod 755 .
    start_neon_local
    ready_project
    export NEON_API_KEY=$key NEON_API_HOST=$URL NEON_PROJECT_ID=$project
    set +e
    "$DRCTL" --runbooks "$ROOT/runbooks" run snapshot -p method=branch -p expires=2h >out 2>err </dev/null
    rc=$?
    set -e
    expect_rc 0
    call GET "/projects/$project/branches"
    due=$(jq -r '.branches[] | select(.name | startswith("backup-")) | .expires_at' body.json)
    left=$(($(date -d "$due" +%s) - $(date +%s)))
    [ "$left" -gt 7000 ] && [ "$left" -le 7200 ] || fail "the backup branch expires in $left s ($due), expected about 7200"
    # Beyond Neon's 30 days: refused before any branch is made.
    set +e
    "$DRCTL" --runbooks "$ROOT/runbooks" run snapshot -p method=branch -p expires=40d -p prefix=long >out 2>err </dev/null
    rc=$?
    set -e
    expect_rc 1
    expect_in err "-p expires=40d is beyond what Neon allows: a branch can expire at most 30 days ahead"
    call GET "/projects/$project/branches"
    expect_eq "$(jq '[.branches[] | select(.name | startswith("long"))] | length' body.json)" 0 "branches made by the refused run"
    stop_neon_local
}

# The official CLI: branches create --expires-at, set-expiration (without
# --expires-at it removes the expiration).
t_neonctl_sets_and_removes_branch_expiration() {
    chmod 755 .
    start_neon_local
    ready_project
    cli=$ROOT/tests/contract/node_modules/.bin/neonctl
    [ -x "$cli" ] || fail "neonctl is not installed (tests/contract/install.sh)"
    due=$(ttl_in 7200)
    timeout 120 "$cli" --api-host "$URL" --api-key "$key" --output json --no-analytics \
        branches create --project-id "$project" --name cli-ttl --expires-at "$due" >neon.json 2>neon.err ||
        fail "neonctl branches create: $(cat neon.err)"
    expect_eq "$(jq -r .branch.expires_at neon.json)" "$due" "created by neonctl"
    for op in $(jq -r '.operations[].id' neon.json); do wait_operation "$project" "$op" "$key"; done
    later=$(ttl_in 9000)
    timeout 120 "$cli" --api-host "$URL" --api-key "$key" --output json --no-analytics \
        branches set-expiration cli-ttl --project-id "$project" --expires-at "$later" >neon.json 2>neon.err ||
        fail "neonctl branches set-expiration: $(cat neon.err)"
    expect_eq "$(jq -r .expires_at neon.json)" "$later" "moved by neonctl"
    timeout 120 "$cli" --api-host "$URL" --api-key "$key" --output json --no-analytics \
        branches set-expiration cli-ttl --project-id "$project" >neon.json 2>neon.err ||
        fail "neonctl branches set-expiration (remove): $(cat neon.err)"
    call GET "/projects/$project/branches"
    expect_eq "$(jq -r '.branches[] | select(.name == "cli-ttl") | has("expires_at")' body.json)" false "removed by neonctl"
    stop_neon_local
}

for t in t_expires_at_is_taken_shown_and_checked_on_create t_patch_sets_moves_and_clears_expires_at_within_the_rules \
         t_an_expired_branch_is_deleted_with_its_server_and_data t_clock_speed_runs_branch_expiry_faster \
         t_expires_at_survives_a_restart_and_lapses_while_stopped t_a_reset_from_the_parent_restarts_the_ttl \
         t_drctl_backup_branches_carry_expires_at t_neonctl_sets_and_removes_branch_expiration; do
    run_test "$t"
done
