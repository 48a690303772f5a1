# neon-local: what neonctl connection-string prints connects, over TLS, to
# the right branch: every endpoint has a loopback address of its own (its
# host, port 5432), kept across restarts, never one another program holds.

TLS_NEONCTL=$ROOT/tests/contract/node_modules/.bin/neonctl

tls_neonctl() { # args...: what it prints in neon.json, exit code in rc
    set +e
    timeout 120 "$TLS_NEONCTL" --api-host "$URL" --api-key "$key" --output json --no-analytics "$@" >neon.json 2>neon.err
    rc=$?
    set -e
}

tls_call() { # METHOD PATH: body in body.json, status in status
    status=$(curl -s -o body.json -w '%{http_code}' -X "$1" -H "Authorization: Bearer $key" "$URL$2")
}

# Waits until every branch of the project is ready and every endpoint active
# (the address passes connections only to an active endpoint).
tls_wait_ready() { # PROJECT
    for _ in $(seq 1 240); do
        tls_call GET "/projects/$1/branches"
        jq -e '[.branches[].current_state] | any(. == "error")' body.json >/dev/null && fail "a branch is in error"
        if jq -e '[.branches[].current_state] | all(. == "ready")' body.json >/dev/null; then
            tls_call GET "/projects/$1/endpoints"
            jq -e '[.endpoints[].current_state] | all(. == "active")' body.json >/dev/null && return 0
        fi
        sleep 0.25
    done
    fail "branches or endpoints still not ready"
}

# A project "tls" with a table whose one row names the branch (main), and a
# branch dev whose row says dev; sets project, main_string, dev_string (what
# neonctl prints for each).
tls_two_branches() {
    tls_neonctl projects create --name tls
    expect_rc 0
    project=$(jq -r .project.id neon.json)
    tls_wait_ready "$project"
    psql "$(jq -r '.connection_uris[0].connection_uri' neon.json)" -Xqc \
        "create table whose (name text); insert into whose values ('main')"
    tls_neonctl branches create --project-id "$project" --name dev
    expect_rc 0
    tls_wait_ready "$project"
    tls_connection_strings
    psql "$dev_string" -Xqc "update whose set name = 'dev'"
}

tls_connection_strings() {
    tls_neonctl connection-string --project-id "$project" main
    expect_rc 0
    main_string=$(cat neon.json)
    tls_neonctl connection-string --project-id "$project" dev --database-name neondb --role-name neondb_owner
    expect_rc 0
    dev_string=$(cat neon.json)
}

tls_host_of() { # BRANCH_NAME: the host of its endpoint, as the API shows it
    tls_call GET "/projects/$project/branches"
    local id
    id=$(jq -r --arg n "$1" '.branches[] | select(.name == $n) | .id' body.json)
    tls_call GET "/projects/$project/branches/$id/endpoints"
    jq -r '.endpoints[0].host' body.json
}

tls_expect_rows() { # WHAT: main_string reads main, dev_string reads dev
    expect_eq "$(psql "$main_string" -XAtc 'select name from whose')" main "main's row, $1"
    expect_eq "$(psql "$dev_string" -XAtc 'select name from whose')" dev "dev's row, $1"
}

t_neonctl_connection_strings_reach_each_branch_over_tls() {
    chmod 755 .
    start_neon_local
    key=$(cat nl/api-key)
    tls_two_branches
    tls_expect_rows "through neonctl's strings"
    main_host=$(tls_host_of main)
    dev_host=$(tls_host_of dev)
    # The host alone, so port 5432, as neonctl builds it; each endpoint its
    # own loopback address, never 127.0.0.1.
    expect_in neon.json "@$dev_host/neondb?sslmode=require"
    [[ $main_string == *"@$main_host/neondb?sslmode=require&channel_binding=require" ]] ||
        fail "main's string $main_string does not name its host $main_host alone"
    [[ $main_host == 127.* && $main_host != 127.0.* && $main_host != "$dev_host" ]] ||
        fail "hosts $main_host and $dev_host: expected two different addresses in 127.0.0.0/8 outside 127.0.0.0/16"
    tls_call GET "/projects/$project/endpoints"
    expect_eq "$(jq -r '[.endpoints[] | .host == .proxy_host] | all' body.json)" true "proxy_host is the host"
    # TLS, end to end with the branch's server.
    expect_eq "$(psql "$main_string" -XAtc 'show ssl')" on "ssl on main's server"
    expect_eq "$(psql "$dev_string" -XAtc 'select ssl from pg_stat_ssl where pid = pg_backend_pid()')" t \
        "dev's connection in pg_stat_ssl"
    # neon-local's certificate proves the server is neon-local's.
    expect_eq "$(psql "${main_string/sslmode=require/sslmode=verify-ca}&sslrootcert=$PWD/nl/tls/server.crt" \
        -XAtc 'select 1')" 1 "verify-ca with nl/tls/server.crt"
    # drctl's connection_uri still connects, with TLS too.
    tls_call GET "/projects/$project/connection_uri?database_name=neondb&role_name=neondb_owner"
    expect_eq "$(psql "$(jq -r .uri body.json | sed 's/sslmode=disable/sslmode=require/')" -XAtc 'show ssl')" on \
        "connection_uri with sslmode=require"
    stop_neon_local
}

t_the_tls_key_stays_in_the_data_folder_readable_by_its_owner_only() {
    chmod 755 .
    start_neon_local
    key=$(cat nl/api-key)
    tls_two_branches
    expect_eq "$(stat -c %a nl/tls/server.key)" 600 "key mode"
    expect_eq "$(stat -c %a nl/tls)" 700 "key folder mode"
    if [ "$(id -u)" = 0 ]; then
        expect_eq "$(stat -c %U nl/tls/server.key)" postgres "key owner (the servers' user)"
    fi
    # The key is in one file, nowhere else under the test folder (the
    # branches' data folders and base backups included).
    expect_eq "$(grep -rlF -- "$(sed -n 2p nl/tls/server.key)" . | sort)" "./nl/tls/server.key" "files holding the key"
    expect_eq "$(grep -rl -- 'PRIVATE KEY' . | sort)" "./nl/tls/server.key" "private keys"
    stop_neon_local
    # A key other users can read is refused, with the fix.
    before=$(sha256sum nl/tls/server.crt)
    chmod 644 nl/tls/server.key
    set +e
    timeout 60 "$NEON_LOCAL" --data "$PWD/nl" --listen 127.0.0.1:0 >nl.out 2>nl.err
    rc=$?
    set -e
    expect_rc 1
    expect_in nl.err "can be read by other users (mode 644)"
    expect_in nl.err "chmod 600 $PWD/nl/tls/server.key"
    chmod 600 nl/tls/server.key
    start_neon_local
    expect_eq "$(sha256sum nl/tls/server.crt)" "$before" "the certificate is kept"
    tls_connection_strings
    tls_expect_rows "after the restart"
    stop_neon_local
}

t_two_neon_locals_running_at_once_get_different_addresses() {
    chmod 755 .
    start_neon_local
    first_url=$URL first_pid=$PID first_key=$(cat nl/api-key)
    mkdir other
    chmod 755 other
    (cd other && start_neon_local && echo "$URL $PID" >../other.url)
    read -r second_url second_pid <other.url
    second_key=$(cat other/nl/api-key)
    URL=$first_url key=$first_key
    tls_two_branches
    first_main=$(tls_host_of main) first_dev=$(tls_host_of dev)
    URL=$second_url key=$second_key
    tls_neonctl projects create --name second
    project=$(jq -r .project.id neon.json)
    tls_wait_ready "$project"
    second_main=$(tls_host_of main)
    psql "$(jq -r '.connection_uris[0].connection_uri' neon.json)" -Xqc \
        "create table whose (name text); insert into whose values ('second')"
    tls_neonctl connection-string --project-id "$project" main
    expect_eq "$(psql "$(cat neon.json)" -XAtc 'select name from whose')" second "the second neon-local's branch"
    [ "$second_main" != "$first_main" ] && [ "$second_main" != "$first_dev" ] ||
        fail "the second neon-local's address $second_main is also the first's ($first_main, $first_dev)"
    URL=$first_url key=$first_key
    project=$(jq -r '.projects[] | select(.name == "tls") | .id' <(curl -s -H "Authorization: Bearer $key" "$URL/projects"))
    tls_connection_strings
    tls_expect_rows "beside a second neon-local"
    kill -TERM "$second_pid"
    PID=$first_pid
    stop_neon_local
}

t_restarts_keep_each_address_and_one_taken_meanwhile_is_replaced() {
    chmod 755 .
    start_neon_local
    key=$(cat nl/api-key)
    tls_two_branches
    main_host=$(tls_host_of main) dev_host=$(tls_host_of dev)
    stop_neon_local
    start_neon_local
    expect_eq "$(tls_host_of main),$(tls_host_of dev)" "$main_host,$dev_host" "addresses after a restart"
    tls_wait_ready "$project"
    tls_connection_strings
    tls_expect_rows "after a restart"
    stop_neon_local
    # Another program takes main's address while neon-local is stopped: main
    # gets a new one, and no connection string leads to that program.
    cat >intruder.py <<'EOF'
import socket, sys
s = socket.socket()
s.bind((sys.argv[1], 5432))
s.listen()
open("intruder.ready", "w").close()
while True:
    c, _ = s.accept()
    open("intruder.log", "a").write("a connection\n")
    c.close()
EOF
    python3 "$PWD/intruder.py" "$main_host" 2>intruder.err &
    intruder=$!
    wait_for intruder.ready
    start_neon_local
    new_host=$(tls_host_of main)
    [ "$new_host" != "$main_host" ] || fail "main kept $main_host, which another program holds"
    expect_eq "$(tls_host_of dev)" "$dev_host" "dev's address"
    expect_in nl.err "$main_host:5432 is taken by another program, its address is now $new_host"
    tls_wait_ready "$project"
    tls_connection_strings
    expect_in <(echo "$main_string") "@$new_host/"
    tls_expect_rows "with main's old address taken"
    [ ! -e intruder.log ] || fail "a connection went to the other program: $(cat intruder.log)"
    # The new address is in the state: kept on the next start, the other
    # program gone or not.
    kill "$intruder"
    stop_neon_local
    start_neon_local
    expect_eq "$(tls_host_of main)" "$new_host" "main's new address after another restart"
    stop_neon_local
}

t_an_older_data_folder_gets_addresses_and_tls() {
    chmod 755 .
    start_neon_local
    key=$(cat nl/api-key)
    tls_neonctl projects create --name older
    project=$(jq -r .project.id neon.json)
    tls_wait_ready "$project"
    uri=$(jq -r '.connection_uris[0].connection_uri' neon.json)
    psql "$uri" -Xqc "create table whose (name text); insert into whose values ('main')"
    # The connection string an older neon-local gave: its server's own port.
    older_uri="postgresql://neondb_owner:$(jq -r '.connection_uris[0].connection_parameters.password' neon.json)@127.0.0.1:$(psql "$uri" -XAtc 'show port')/neondb"
    stop_neon_local
    # What an older neon-local left: endpoints on 127.0.0.1, no TLS.
    jq '.projects[]._endpoints[] |= (.host = "127.0.0.1" | .proxy_host = "127.0.0.1")' nl/state.json >state.json
    cp state.json nl/state.json
    rm -rf nl/tls
    for conf in nl/pg/*/data/postgresql.auto.conf; do
        sed -i '/^ssl/d' "$conf"
    done
    start_neon_local
    host=$(tls_host_of main)
    [[ $host == 127.* && $host != 127.0.* ]] || fail "the older endpoint's host is $host"
    expect_eq "$(stat -c %a nl/tls/server.key)" 600 "key mode"
    tls_wait_ready "$project"
    tls_neonctl connection-string --project-id "$project" main
    expect_eq "$(psql "$(cat neon.json)" -XAtc "select name || ' ' || current_setting('ssl') from whose")" "main on" \
        "the older branch through neonctl's string"
    expect_eq "$(psql "$older_uri" -XAtc 'select count(*) from whose')" 1 "the older connection string still connects"
    stop_neon_local
}

if [ -x "$TLS_NEONCTL" ]; then
    for t in t_neonctl_connection_strings_reach_each_branch_over_tls \
             t_the_tls_key_stays_in_the_data_folder_readable_by_its_owner_only \
             t_two_neon_locals_running_at_once_get_different_addresses \
             t_restarts_keep_each_address_and_one_taken_meanwhile_is_replaced \
             t_an_older_data_folder_gets_addresses_and_tls; do
        run_test "$t"
    done
else
    echo "FAIL 87-neon-local-tls: neonctl is not installed (tests/contract/install.sh)"
    TESTS_FAILED=$((TESTS_FAILED + 1))
    FAILED_NAMES+=(87-neon-local-tls)
fi
