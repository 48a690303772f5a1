# neon-local's answers to bad requests and bad command lines: wrong ids,
# bad bodies and field types, conflicts and busy branches, each answered
# with its status and Neon's error shape (GeneralError: code and message),
# and nothing changed. Helpers from 90-neon-local.sh (start_neon_local,
# ready_project, ready_branch, call, wait_operation).

if ! declare -F start_neon_local >/dev/null; then
    source <(sed '/^for t in/,$d' "$ROOT/tests/e2e/90-neon-local.sh")
fi

# A request with a JSON body; status and body.json as call sets them.
edge_send() { # METHOD PATH BODY
    status=$(curl -s -o body.json -w '%{http_code}' -X "$1" -H "Authorization: Bearer $key" -d "$3" "$URL$2")
}

# The last answer is STATUS in Neon's error shape, its message holding TEXT.
edge_refused() { # STATUS TEXT WHAT
    expect_eq "$status" "$1" "$3 ($(jq -r .message body.json 2>/dev/null))"
    expect_eq "$(jq -r '(.code | type) + " " + (.message | type)' body.json)" "string string" "error shape: $3"
    expect_in body.json "$2"
}

# neon-local run with ARGS, expected to exit at once: its code in rc.
edge_exits() { # ARGS...
    set +e
    timeout 20 "$NEON_LOCAL" "$@" >out 2>err </dev/null
    rc=$?
    set -e
}

# Waits for the operations an answer in FILE lists.
edge_wait() { # FILE
    local op
    for op in $(jq -r '.operations[].id' "$1"); do wait_operation "$project" "$op" "$key"; done
}

t_neon_local_names_each_bad_command_line_and_exits_2() {
    edge_exits --data nl --listen 127.0.0.1:0 --clock-speed 0
    expect_rc 2
    expect_in err "--clock-speed must be a positive number"
    edge_exits --data nl --listen 127.0.0.1:0 --clock-speed fast
    expect_rc 2
    expect_in err "--clock-speed must be a positive number"
    edge_exits --data nl --no-such-option
    expect_rc 2
    expect_in err "unknown or incomplete option '--no-such-option'"
    expect_in err "usage: neon-local --data DIR"
    # An option missing its value is incomplete, not taken as the next one.
    edge_exits --listen 127.0.0.1:0 --data
    expect_rc 2
    expect_in err "unknown or incomplete option '--data'"
    edge_exits --listen 127.0.0.1:0
    expect_rc 2
    expect_in err "--data DIR is required"
    edge_exits --data nl --listen 127.0.0.1:0 --idle-timeout 0
    expect_rc 2
    expect_in err "--idle-timeout '0' must be a whole number of seconds"
    # A data folder that cannot be made.
    edge_exits --data /proc/self/no-such-folder/nl --listen 127.0.0.1:0
    expect_rc 2
    expect_in err "neon-local: "
    [ ! -e nl ] || fail "a refused command line made the data folder"
    edge_exits --help
    expect_rc 0
    expect_in out "--data"
    # An API key file that cannot be read (a folder), or written (a
    # dangling link in its place): refused before serving anything.
    mkdir -p bad-key/api-key
    edge_exits --data "$PWD/bad-key" --listen 127.0.0.1:0
    expect_rc 1
    expect_in err "neon-local: "
    expect_not_in out "neon-local: http://"
    mkdir -p dangling
    ln -s "$PWD/nowhere/key" dangling/api-key
    edge_exits --data "$PWD/dangling" --listen 127.0.0.1:0
    expect_rc 1
    expect_in err "cannot write $PWD/dangling/api-key"
    [ ! -e nowhere ] || fail "the key was written through the link"
    # Faults it does not know: refused once the server is set up.
    edge_exits --data "$PWD/nl" --listen 127.0.0.1:0 --faults kinds=teapot
    expect_rc 2
    expect_in err "neon-local: "
    # A state it cannot read, and a TLS key others may read: refused at start.
    mkdir -m 711 corrupt
    echo '{not json' > corrupt/state.json
    edge_exits --data "$PWD/corrupt" --listen 127.0.0.1:0
    expect_rc 1
    expect_in err "neon-local: "
    expect_not_in out "neon-local: http://"
    start_neon_local
    stop_neon_local
    chmod 644 nl/tls/server.key
    edge_exits --data "$PWD/nl" --listen 127.0.0.1:0
    expect_rc 1
    expect_in err "can be read by other users (mode 644)"
    chmod 600 nl/tls/server.key
    # And with a good command line it serves, then stops cleanly.
    start_neon_local --clock-speed 2 --idle-timeout 5
    api GET /projects "$(cat nl/api-key)"
    expect_eq "$status" 200 "a good command line"
    stop_neon_local
}

t_backup_schedule_requests_are_checked_and_kept() {
    chmod 755 .
    start_neon_local
    ready_project
    main_id=$(jq -r .branch.id created.json)
    path=/projects/$project/branches/$main_id/backup_schedule
    call GET "/projects/$project/branches/br-no-such-branch/backup_schedule"
    edge_refused 404 "branch br-no-such-branch not found in project $project" "GET of an unknown branch's schedule"
    edge_send PUT "/projects/$project/branches/br-no-such-branch/backup_schedule" '{"schedule":[]}'
    edge_refused 404 "branch br-no-such-branch not found" "PUT of an unknown branch's schedule"
    call GET "/projects/no-such-project/branches/$main_id/backup_schedule"
    edge_refused 404 "not found" "a schedule in an unknown project"
    for body in '{}' '{"schedule":{"frequency":"daily"}}' '{"schedule":"daily"}'; do
        edge_send PUT "$path" "$body"
        edge_refused 400 'the body must be {\"schedule\": [' "schedule body $body"
    done
    edge_send PUT "$path" '{not json'
    edge_refused 400 "the request body is not valid JSON" "a body that is not JSON"
    for item in '{"frequency":"minutely"}' '{}' '{"frequency":7}' '{"hour":3}'; do
        edge_send PUT "$path" "{\"schedule\":[{\"frequency\":\"daily\"},$item]}"
        edge_refused 400 "frequency must be hourly, daily, weekly, monthly or yearly" "schedule item $item"
    done
    for item in '{"frequency":"daily","hour":24}' '{"frequency":"daily","hour":-1}' '{"frequency":"daily","hour":"3"}' \
                '{"frequency":"monthly","day":0}' '{"frequency":"monthly","day":32}' '{"frequency":"yearly","month":13}' \
                '{"frequency":"yearly","month":0}' '{"frequency":"daily","retention_seconds":3599}' \
                '{"frequency":"daily","retention_seconds":"86400"}' '{"frequency":"daily","hour":1.5}' \
                '{"frequency":"daily","retention_seconds":3600.5}'; do
        edge_send PUT "$path" "{\"schedule\":[$item]}"
        edge_refused 400 "hour 0-23, day 1-31, month 1-12, retention_seconds at least 3600, each a whole number" \
            "schedule item $item"
    done
    call GET "$path"
    expect_eq "$status" 200 "GET after the refusals"
    expect_eq "$(jq -c .schedule body.json)" "[]" "refused schedules are not kept"
    # Each frequency, at instants not reached yet in their period (today
    # 23:00, this weekday, the 31st, December the 31st): none is backfilled.
    schedule="[{\"frequency\":\"hourly\"},{\"frequency\":\"daily\",\"hour\":23},
               {\"frequency\":\"weekly\",\"day\":$(date -u +%u),\"hour\":23},
               {\"frequency\":\"monthly\",\"day\":31,\"hour\":23},
               {\"frequency\":\"yearly\",\"month\":12,\"day\":31,\"hour\":23,\"retention_seconds\":86400}]"
    edge_send PUT "$path" "{\"schedule\":$schedule}"
    expect_eq "$status" 200 "a good schedule ($(jq -r .message body.json))"
    expect_eq "$(jq -c '[.schedule[].frequency]' body.json)" '["hourly","daily","weekly","monthly","yearly"]' "PUT answer"
    call GET "/projects/$project/snapshots"
    expect_eq "$(jq '.snapshots | length' body.json)" 0 "snapshots right after the schedule is set"
    # A snapshot has no schedule of its own.
    call POST "/projects/$project/branches/$main_id/snapshot?name=s1"
    cp body.json snap.json
    snap=$(jq -r .snapshot.id snap.json)
    call GET "/projects/$project/branches/$snap/backup_schedule"
    edge_refused 404 "branch $snap not found" "the schedule of a snapshot"
    edge_send PUT "/projects/$project/branches/$snap/backup_schedule" '{"schedule":[]}'
    edge_refused 404 "branch $snap not found" "PUT of a snapshot's schedule"
    edge_wait snap.json
    edge_send POST "/projects/$project/endpoints" "{\"endpoint\":{\"branch_id\":\"$snap\",\"type\":\"read_write\"}}"
    edge_refused 404 "branch $snap not found" "an endpoint on a snapshot"
    # An endpoint address that is no address (an edited or damaged state)
    # is replaced at the next start; the schedule stays.
    stop_neon_local
    jq '(.. | objects | select(has("proxy_host")) | .host) |= "not-an-address"' nl/state.json > state.edited
    cat state.edited > nl/state.json
    start_neon_local
    expect_in nl.err "(was not-an-address)"
    call GET "$path"
    expect_eq "$(jq '.schedule | length' body.json)" 5 "the schedule after a restart"
    call GET "/projects/$project/endpoints"
    expect_eq "$(jq -r '.endpoints[0].host' body.json | grep -c '^127\.')" 1 "the endpoint's new address"
    stop_neon_local
}

t_restore_and_finalize_requests_are_refused_in_neons_shape() {
    chmod 755 .
    start_neon_local
    ready_project
    main_id=$(jq -r .branch.id created.json)
    ready_branch '{"branch":{"name":"data-only"}}'
    data_only=$branch_id
    restore=/projects/$project/branches/$main_id/restore
    edge_send POST "/projects/no-such-project/branches/$main_id/restore" "{\"source_branch_id\":\"$data_only\"}"
    edge_refused 404 "project no-such-project not found" "restore in an unknown project"
    edge_send POST "/projects/$project/branches/br-gone/restore" "{\"source_branch_id\":\"$data_only\"}"
    edge_refused 404 "branch br-gone not found" "restore of an unknown branch"
    edge_send POST "$restore" '{}'
    edge_refused 400 "source_branch_id is required" "restore without a source"
    edge_send POST "$restore" '{"source_branch_id":7}'
    edge_refused 400 "source_branch_id is required" "a source that is no string"
    edge_send POST "$restore" "{\"source_branch_id\":\"$data_only\",\"preserve_under_name\":5}"
    edge_refused 400 "preserve_under_name must be a string" "preserve_under_name a number"
    # The spec keeps the previous state "if not empty": empty is not preserving.
    edge_send POST "$restore" "{\"source_branch_id\":\"$data_only\",\"preserve_under_name\":\"\"}"
    edge_refused 400 "preserve_under_name is required" "an empty preserve_under_name, on a branch with children"
    edge_send POST "$restore" '{"source_branch_id":"br-no-such-source"}'
    edge_refused 404 "branch br-no-such-source not found in project $project" "an unknown source"
    edge_send POST "$restore" "{\"source_branch_id\":\"$main_id\"}"
    edge_refused 400 "restoring a branch from itself needs source_timestamp or source_lsn" "from itself at head"
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    edge_send POST "$restore" "{\"source_branch_id\":\"$main_id\",\"source_timestamp\":\"$now\"}"
    edge_refused 400 "preserve_under_name is required" "from itself without preserving"
    edge_send POST "$restore" "{\"source_branch_id\":\"$data_only\"}"
    edge_refused 400 "preserve_under_name is required" "a branch with children without preserving"
    edge_send POST "$restore" "{\"source_branch_id\":\"$main_id\",\"source_lsn\":\"not-an-lsn\",\"preserve_under_name\":\"old\"}"
    edge_refused 400 "source_lsn must be an LSN like 0/1A2B3C4" "a source_lsn that is no LSN"
    expect_not_in body.json "parent_lsn"
    edge_send POST "$restore" "{\"source_branch_id\":\"$main_id\",\"source_timestamp\":\"yesterday\",\"preserve_under_name\":\"old\"}"
    edge_refused 400 "must be an RFC 3339 time" "a source_timestamp that is no time"
    edge_send POST "/projects/$project/branches/$data_only/restore" "{\"source_branch_id\":\"$main_id\"}"
    edge_refused 400 "neon-local restores branches that have an endpoint" "a data-only branch"
    edge_send POST "$restore" "{\"source_branch_id\":\"$data_only\",\"preserve_under_name\":\"data-only\"}"
    edge_refused 409 "a branch named data-only already exists in project $project" "preserve under a taken name"
    # finalize_restore of a branch a snapshot restore made for a preview.
    call POST "/projects/$project/branches/$main_id/snapshot?name=good"
    cp body.json snap.json
    edge_wait snap.json
    snap=$(jq -r .snapshot.id snap.json)
    edge_send POST "/projects/$project/snapshots/$snap/restore" '{"name":"preview"}'
    cp body.json preview.json
    edge_wait preview.json
    preview=$(jq -r .branch.id preview.json)
    finalize=/projects/$project/branches/$preview/finalize_restore
    edge_send POST "$finalize" '{"name":7}'
    edge_refused 400 "name must be a non-empty string" "finalize with a name that is no string"
    edge_send POST "$finalize" '{"name":""}'
    edge_refused 400 "name must be a non-empty string" "finalize with an empty name"
    edge_send POST "$finalize" '{"name":"data-only"}'
    edge_refused 409 "a branch named data-only already exists in project $project" "finalize under a taken name"
    # While a branch is being made from main, main cannot be restored nor
    # its server moved (its files are being copied), and the new branch
    # cannot be a source.
    edge_send POST "/projects/$project/branches" '{"branch":{"name":"fresh"}}'
    cp body.json fresh.json
    fresh=$(jq -r .branch.id fresh.json)
    edge_send POST "$restore" "{\"source_branch_id\":\"$fresh\",\"preserve_under_name\":\"old\"}"
    edge_refused 423 "branch $fresh has an operation in progress" "a source still being made"
    edge_send POST "$restore" "{\"source_branch_id\":\"$data_only\",\"preserve_under_name\":\"old\"}"
    edge_refused 423 "branch $main_id has an operation in progress" "a branch whose files are being copied"
    edge_send POST "$finalize" '{"name":"main-old"}'
    edge_refused 423 "branch $main_id has an operation in progress" "finalize while the original is copied"
    edge_wait fresh.json
    call GET "/projects/$project/branches"
    expect_eq "$(jq -r '[.branches[].name] | sort | join(",")' body.json)" "data-only,fresh,main,preview" \
        "no branch preserved or renamed by a refusal"
    edge_send POST "/projects/$project/branches/br-gone/finalize_restore" '{"name":"x"}'
    edge_refused 404 "branch br-gone not found" "finalize of an unknown branch"
    expires=$(date -u -d '+2 days' +%Y-%m-%dT%H:%M:%SZ)
    edge_send PATCH "/projects/$project/branches/$preview" "{\"branch\":{\"expires_at\":\"$expires\"}}"
    expect_eq "$status" 200 "an expiry for the preview ($(jq -r .message body.json))"
    edge_wait body.json
    edge_send POST "$finalize" '{"name":"main-old"}'
    edge_refused 400 "would become the default branch, which cannot expire" "finalize of an expiring branch for the default"
    call GET "/projects/$project/branches"
    expect_eq "$(jq -r '.branches[] | select(.default) | .id' body.json)" "$main_id" "main is still the default"
    stop_neon_local
}

t_endpoint_role_and_database_requests_are_refused_in_neons_shape() {
    chmod 755 .
    start_neon_local
    ready_project
    main_id=$(jq -r .branch.id created.json)
    endpoint=$(jq -r '.endpoints[0].id' created.json)
    ready_branch '{"branch":{"name":"data-only"}}'
    data_only=$branch_id
    # Endpoints.
    edge_send POST "/projects/$project/endpoints" "{\"endpoint\":{\"branch_id\":\"$data_only\",\"type\":\"read_only\"}}"
    edge_refused 400 "endpoint type read_only: neon-local serves read_write endpoints only" "a read_only endpoint"
    edge_send POST "/projects/$project/endpoints" '{"endpoint":{"branch_id":"br-nope","type":"read_write"}}'
    edge_refused 404 "branch br-nope not found in project $project" "an endpoint on an unknown branch"
    edge_send POST "/projects/no-such-project/endpoints" "{\"endpoint\":{\"branch_id\":\"$main_id\",\"type\":\"read_write\"}}"
    edge_refused 404 "project no-such-project not found" "an endpoint in an unknown project"
    edge_send POST "/projects/$project/endpoints" "{\"endpoint\":{\"branch_id\":\"$main_id\",\"type\":\"read_write\"}}"
    edge_refused 409 "already has a read_write endpoint" "a second endpoint"
    # A branch being made from data-only: no server may start on its files.
    edge_send POST "/projects/$project/branches" "{\"branch\":{\"name\":\"child\",\"parent_id\":\"$data_only\"}}"
    cp body.json child.json
    edge_send POST "/projects/$project/endpoints" "{\"endpoint\":{\"branch_id\":\"$data_only\",\"type\":\"read_write\"}}"
    edge_refused 423 "branch $data_only has an operation in progress" "an endpoint on a branch being copied"
    edge_wait child.json
    for action in start suspend; do
        call POST "/projects/$project/endpoints/ep-nope/$action"
        edge_refused 404 "endpoint ep-nope not found in project $project" "$action of an unknown endpoint"
    done
    call DELETE "/projects/$project/endpoints/ep-nope"
    edge_refused 404 "endpoint ep-nope not found in project $project" "delete of an unknown endpoint"
    # The start asked on the same connection right after the suspend, so
    # that the server is still stopping.
    curl -s -o suspend.json -X POST -H "Authorization: Bearer $key" "$URL/projects/$project/endpoints/$endpoint/suspend" \
         --next -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
         "$URL/projects/$project/endpoints/$endpoint/start" > start.status
    status=$(cat start.status)
    edge_refused 423 "endpoint $endpoint has an operation in progress" "start while suspending"
    expect_eq "$(jq -r .endpoint.id suspend.json)" "$endpoint" "the suspend answer"
    edge_wait suspend.json
    # Roles and databases need the branch's running server.
    roles=/projects/$project/branches/$main_id/roles
    dbs=/projects/$project/branches/$main_id/databases
    edge_send POST "$roles" '{"role":{"name":"reader"}}'
    edge_refused 400 "branch $main_id has no running endpoint to apply this to" "a role on a suspended branch"
    call POST "/projects/$project/endpoints/$endpoint/start"
    cp body.json start.json
    edge_wait start.json
    for path in "/projects/$project/branches/br-nope/roles" "/projects/no-such-project/branches/$main_id/roles"; do
        edge_send POST "$path" '{"role":{"name":"reader"}}'
        edge_refused 404 "not found" "a role at $path"
    done
    edge_send POST "/projects/$project/branches/$data_only/roles" '{"role":{"name":"reader"}}'
    edge_refused 400 "branch $data_only has no running endpoint to apply this to" "a role on a data-only branch"
    edge_send POST "$roles" '{"role":{"name":"bad name"}}'
    edge_refused 400 "role.name must be 1 to 63 letters" "a role name with a space"
    edge_send POST "$roles" '{"role":{"name":"neondb_owner"}}'
    edge_refused 409 "role neondb_owner already exists on branch $main_id" "a role that exists"
    # A name PostgreSQL itself refuses: its message, and no role kept.
    edge_send POST "$roles" '{"role":{"name":"pg_reserved"}}'
    edge_refused 400 "reserved" "a role name PostgreSQL reserves"
    expect_not_in body.json "port"
    call GET "$roles"
    expect_eq "$(jq -r '[.roles[].name] | index("pg_reserved")' body.json)" null "the refused role is not listed"
    call POST "$roles/nobody/reset_password"
    edge_refused 404 "role nobody not found on branch $main_id" "reset_password of an unknown role"
    call POST "/projects/$project/branches/$data_only/roles/neondb_owner/reset_password"
    edge_refused 400 "has no running endpoint" "reset_password on a data-only branch"
    call DELETE "$roles/nobody"
    edge_refused 404 "role nobody not found on branch $main_id" "delete of an unknown role"
    call DELETE "/projects/$project/branches/$data_only/roles/neondb_owner"
    edge_refused 400 "has no running endpoint" "a role deleted on a data-only branch"
    call DELETE "$roles/neondb_owner"
    edge_refused 409 "role neondb_owner owns database neondb on branch $main_id" "delete of a role owning a database"
    edge_send POST "$dbs" '{"database":{"name":"shop","owner_name":"nobody"}}'
    edge_refused 404 "role nobody not found on branch $main_id" "a database owned by an unknown role"
    edge_send POST "$dbs" '{"database":{"name":"shop"}}'
    edge_refused 400 "database.name and database.owner_name must be 1 to 63 letters" "a database without an owner"
    edge_send POST "$dbs" '{"database":{"name":"neondb","owner_name":"neondb_owner"}}'
    edge_refused 409 "database neondb already exists on branch $main_id" "a database that exists"
    edge_send POST "$dbs" '{"database":{"name":"template1","owner_name":"neondb_owner"}}'
    edge_refused 409 "already exists" "a database the server has but the API does not list"
    edge_send POST "/projects/$project/branches/$data_only/databases" '{"database":{"name":"shop","owner_name":"neondb_owner"}}'
    edge_refused 400 "has no running endpoint" "a database on a data-only branch"
    call DELETE "/projects/$project/branches/$data_only/databases/neondb"
    edge_refused 400 "has no running endpoint" "a database deleted on a data-only branch"
    call DELETE "$dbs/nothing"
    edge_refused 404 "database nothing not found on branch $main_id" "delete of an unknown database"
    # connection_uri.
    call GET "/projects/no-such-project/connection_uri?database_name=neondb&role_name=neondb_owner"
    edge_refused 404 "project no-such-project not found" "connection_uri of an unknown project"
    call GET "/projects/$project/connection_uri?role_name=neondb_owner"
    edge_refused 400 "database_name and role_name are required" "connection_uri without a database"
    call GET "/projects/$project/connection_uri?database_name=neondb"
    edge_refused 400 "database_name and role_name are required" "connection_uri without a role"
    call GET "/projects/$project/connection_uri?branch_id=br-nope&database_name=neondb&role_name=neondb_owner"
    edge_refused 404 "branch br-nope not found in project $project" "connection_uri of an unknown branch"
    call GET "/projects/$project/connection_uri?database_name=neondb&role_name=nobody"
    edge_refused 404 "role nobody not found on branch $main_id" "connection_uri of an unknown role"
    call GET "/projects/$project/connection_uri?database_name=nothing&role_name=neondb_owner"
    edge_refused 404 "database nothing not found on branch $main_id" "connection_uri of an unknown database"
    call GET "/projects/$project/connection_uri?branch_id=$data_only&database_name=neondb&role_name=neondb_owner"
    edge_refused 404 "branch $data_only has no endpoint" "connection_uri of a data-only branch"
    call GET "/projects/$project/connection_uri?database_name=neondb&role_name=neondb_owner"
    expect_eq "$status" 200 "connection_uri of the default branch"
    expect_eq "$(psql "$(jq -r .uri body.json)" -XAtc 'select 1')" 1 "its connection string works"
    stop_neon_local
}

t_schema_requests_are_checked_and_large_differences_shown() {
    chmod 755 .
    start_neon_local
    ready_project
    main_id=$(jq -r .branch.id created.json)
    psql "$uri" -Xqc "create table middle (id int primary key, name text)"
    schema=/projects/$project/branches/$main_id/schema
    call GET "$schema?db_name=neondb&format=xml"
    edge_refused 400 "format must be sql or json, not 'xml'" "a schema format it does not know"
    call GET "$schema?db_name=neondb&lsn=not-an-lsn"
    edge_refused 400 "lsn must be an LSN" "a schema at an lsn that is no LSN"
    expect_not_in body.json "parent_lsn"
    call GET "$schema?db_name=neondb&lsn=0/1&timestamp=2026-01-01T00:00:00Z"
    expect_eq "$status" 400 "lsn and timestamp both ($(jq -r .message body.json))"
    call GET "$schema?db_name=neondb&lsn=0/1"
    edge_refused 400 "lsn 0/1 is before the history of branch $main_id starts" "a schema before the history"
    call GET "$schema?db_name=nothing"
    edge_refused 404 "database nothing not found on branch $main_id" "the schema of an unknown database"
    call GET "/projects/no-such-project/branches/$main_id/schema?db_name=neondb"
    edge_refused 404 "project no-such-project not found" "a schema in an unknown project"
    call GET "/projects/$project/branches/br-nope/schema?db_name=neondb"
    edge_refused 404 "branch br-nope not found in project $project" "the schema of an unknown branch"
    # A branch still being made, and one with no server, at a past point.
    edge_send POST "/projects/$project/branches" '{"branch":{"name":"bare"}}'
    cp body.json bare.json
    bare=$(jq -r .branch.id bare.json)
    call GET "/projects/$project/branches/$bare/schema?db_name=neondb"
    edge_refused 423 "branch $bare has an operation in progress" "the schema of a branch being made"
    edge_wait bare.json
    call GET "/projects/$project/branches/$bare/schema?db_name=neondb&lsn=0/1"
    edge_refused 400 "lsn is read from branch $bare's running server, and it has none" "a past schema with no server"
    compare=/projects/$project/branches/$main_id/compare_schema
    call GET "$compare?db_name=neondb&base_branch_id=$main_id&base_lsn=bad"
    edge_refused 400 "base_lsn must be an LSN" "a base_lsn that is no LSN"
    expect_not_in body.json "parent_lsn"
    call GET "/projects/$project/branches/br-nope/compare_schema?db_name=neondb"
    edge_refused 404 "branch br-nope not found in project $project" "compare_schema of an unknown branch"
    call GET "/projects/no-such-project/branches/$main_id/compare_schema?db_name=neondb"
    edge_refused 404 "project no-such-project not found" "compare_schema in an unknown project"
    call GET "$compare?db_name=neondb&base_branch_id="
    edge_refused 400 "base_branch_id must be a branch id" "an empty base_branch_id"
    call GET "$compare?db_name=neondb&base_branch_id=br-nope"
    edge_refused 404 "branch br-nope not found in project $project" "compare_schema with an unknown base"
    call GET "$compare?db_name=neondb"
    edge_refused 400 "has no parent to compare its schema with" "compare_schema of the root branch"
    # A few changes with kept lines between them: a table before and one
    # after the one both have.
    ready_branch '{"branch":{"name":"few"},"endpoints":[{"type":"read_write"}]}'
    few=$branch_id
    psql "$branch_uri" -Xqc "create table aardvark (id int); create table zebra (id int)"
    call GET "/projects/$project/branches/$few/compare_schema?db_name=neondb"
    expect_eq "$status" 200 "compare few ($(jq -r .message body.json))"
    jq -r .diff body.json > few.diff
    expect_in few.diff "+CREATE TABLE public.aardvark"
    expect_in few.diff "+CREATE TABLE public.zebra"
    expect_in few.diff "--- a/$main_id/neondb"
    expect_eq "$(grep -c '^-' few.diff)" 1 "lines removed (the --- header only)"
    # Thousands of differing lines: shown as removed then added, whole.
    ready_branch '{"branch":{"name":"wide"},"endpoints":[{"type":"read_write"}]}'
    wide=$branch_id
    psql "$branch_uri" -Xqc "drop table middle" -c "do \$\$ begin for i in 1..120 loop
        execute format('create table wide_%s (id int primary key, a text, b text, c int)', i); end loop; end \$\$"
    call GET "/projects/$project/branches/$wide/compare_schema?db_name=neondb&base_branch_id=$few"
    expect_eq "$status" 200 "compare wide ($(jq -r .message body.json))"
    jq -r .diff body.json > wide.diff
    expect_eq "$(grep -c '^+CREATE TABLE public.wide_' wide.diff)" 120 "tables added"
    expect_in wide.diff "-CREATE TABLE public.middle"
    expect_in wide.diff "-CREATE TABLE public.zebra"
    expect_in wide.diff "--- a/$few/neondb"
    stop_neon_local
}

for t in t_neon_local_names_each_bad_command_line_and_exits_2 t_backup_schedule_requests_are_checked_and_kept \
         t_restore_and_finalize_requests_are_refused_in_neons_shape \
         t_endpoint_role_and_database_requests_are_refused_in_neons_shape \
         t_schema_requests_are_checked_and_large_differences_shown; do
    run_test "$t"
done
