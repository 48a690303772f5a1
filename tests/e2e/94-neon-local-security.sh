# neon-local against a hostile local user: its PostgreSQL servers' superuser,
# its API key, its idle connections (helpers from 90-neon-local.sh).

# The port of the server behind a connection string.
sec_port() { # URI
    psql "$1" -XAtc "show port"
}

# Tries to log in as postgres as the OS user nobody, with no password, and
# to run a program as the server's user; stdout to out, stderr to err.
sec_as_nobody() { # PORT
    mkdir -p -m 1777 drop
    set +e
    runuser -u nobody -- env -u PGPASSWORD PGPASSFILE=/nonexistent psql -h 127.0.0.1 -p "$1" -U postgres -w -d postgres \
        -XAtc "copy (select 1) to program 'id > $PWD/drop/pwned'" >out 2>err
    rc=$?
    set -e
}

# The same over a replication connection (what pg_basebackup uses).
sec_replication_as_nobody() { # PORT
    set +e
    runuser -u nobody -- env -u PGPASSWORD PGPASSFILE=/nonexistent \
        psql "host=127.0.0.1 port=$1 user=postgres dbname=postgres replication=true" -w -XAtc IDENTIFY_SYSTEM >out 2>err
    rc=$?
    set -e
}

# Asserts that neither way in is open on the server at PORT.
sec_expect_closed() { # PORT WHAT
    sec_as_nobody "$1"
    [ "$rc" -ne 0 ] || fail "$2: nobody logged in as postgres with no password"
    [ ! -e drop/pwned ] || fail "$2: nobody ran a program as the server's user: $(cat drop/pwned)"
    expect_in err "password"
    sec_replication_as_nobody "$1"
    [ "$rc" -ne 0 ] || fail "$2: nobody opened a replication connection as postgres"
    expect_in err "password"
}

# Asserts that the superuser password opens both, for root (who can read it).
sec_expect_open_with_password() { # PORT WHAT
    local pw
    pw=$(cat nl/superuser-password)
    expect_eq "$(PGPASSWORD=$pw psql -h 127.0.0.1 -p "$1" -U postgres -d postgres -w -XAtc 'select 1')" 1 \
        "$2: the superuser with its password"
    PGPASSWORD=$pw psql "host=127.0.0.1 port=$1 user=postgres dbname=postgres replication=true" -w -XAtc IDENTIFY_SYSTEM \
        >/dev/null || fail "$2: a replication connection with the password was refused"
}

# Creates a branch and checks that it was made; sets branch_id, branch_uri.
# Makes the parent's archive hold a FIFO as 00000001.history: a point-in-time
# server asks for it only after it has removed recovery.signal, while it
# writes its new timeline, and waits in restore_command until the FIFO is
# fed, one second after recovery.signal is gone. Sets releaser (its pid).
hold_parent_history() { # MAIN_ID
    local fifo=nl/pg/$1/wal/00000001.history
    mkfifo -m 644 "$fifo"
    (
        until ls nl/pg/*/data/recovery.signal >/dev/null 2>&1; do sleep 0.05; done
        while ls nl/pg/*/data/recovery.signal >/dev/null 2>&1; do sleep 0.05; done
        sleep 1
        timeout 30 sh -c ": > '$fifo'" || true
    ) &
    releaser=$!
}

sec_ready_branch() { # JSON body
    status=$(curl -s -o branch.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" -d "$1" \
             "$URL/projects/$project/branches")
    expect_eq "$status" 201 "create a branch with $1 ($(jq -r .message branch.json))"
    operations_finish "$project" branch.json "$key" "operation"
    branch_id=$(jq -r .branch.id branch.json)
    branch_uri=$(jq -r '.connection_uris[0].connection_uri // empty' branch.json)
}

t_superuser_connections_need_the_password_kept_private() {
    chmod 755 .
    start_neon_local
    ready_project
    port=$(sec_port "$uri")
    sec_expect_closed "$port" "main"
    sec_expect_open_with_password "$port" "main"
    expect_eq "$(stat -c '%a %U' nl/superuser-password)" "600 $(id -un)" "the password file's mode and owner"
    set +e; runuser -u nobody -- cat nl/superuser-password >out 2>err; rc=$?; set -e
    [ "$rc" -ne 0 ] || fail "nobody read the superuser password"
    # A branch made by a base backup (a replication connection), and one at
    # a past instant, keep the rule.
    psql "$uri" -Xqc "create table t (id int); insert into t values (1)"
    sleep 1
    instant=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    sleep 1
    sec_ready_branch '{"branch":{"name":"at-head"},"endpoints":[{"type":"read_write"}]}'
    expect_eq "$(psql "$branch_uri" -XAtc 'select count(*) from t')" 1 "rows on the branch at head"
    sec_expect_closed "$(sec_port "$branch_uri")" "branch at head"
    sec_ready_branch "{\"branch\":{\"name\":\"past\",\"parent_timestamp\":\"$instant\"},\"endpoints\":[{\"type\":\"read_write\"}]}"
    expect_eq "$(psql "$branch_uri" -XAtc 'select count(*) from t')" 1 "rows on the branch in the past"
    sec_expect_closed "$(sec_port "$branch_uri")" "branch in the past"
    # The roles the API hands out log in with their passwords, as before.
    expect_eq "$(psql "$uri" -XAtc 'select current_user')" neondb_owner "the owner role"
    # The password is nowhere but in its file: not in neon-local's output,
    # not in an API answer, not in any other file of the data folder.
    pw=$(cat nl/superuser-password)
    [ "${#pw}" -ge 32 ] || fail "the superuser password is short: ${#pw} characters"
    call GET "/projects/$project/branches"; cp body.json branches.json
    call GET "/projects/$project/connection_uri?branch_id=$branch_id&role_name=neondb_owner&database_name=neondb"
    cp body.json uri.json
    call GET "/projects/$project/branches/$branch_id/roles"; cp body.json roles.json
    stop_neon_local
    for f in nl.out nl.err created.json branch.json branches.json uri.json roles.json; do
        expect_not_in "$f" "$pw"
    done
    leaks=$(grep -rlaF -- "$pw" nl | grep -vx nl/superuser-password || true)
    [ -z "$leaks" ] || fail "the superuser password is in: $leaks"
    # A password file others can read is refused, not used.
    chmod 644 nl/superuser-password
    set +e; "$NEON_LOCAL" --data "$PWD/nl" --listen 127.0.0.1:0 >out 2>err; rc=$?; set -e
    expect_rc 1
    expect_in err "nl/superuser-password can be read by other users (mode 644)"
    expect_in err "chmod 600"
}

# An older neon-local trusted every connection as postgres from 127.0.0.1:
# its folders get the password rule when a newer one starts on them.
t_an_older_data_folder_is_closed_on_start() {
    chmod 755 .
    start_neon_local
    ready_project
    main_port=$(sec_port "$uri")
    psql "$uri" -Xqc "create table t (id int); insert into t values (1)"
    sec_ready_branch '{"branch":{"name":"idle"}}'      # data only: no server
    idle_id=$branch_id
    sleep 1
    instant=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    sleep 1
    psql "$uri" -Xqc "insert into t values (2)"
    stop_neon_local
    # What the older one left: trust in every pg_hba.conf, no superuser
    # password, no password file.
    for hba in nl/pg/*/data/pg_hba.conf nl/pg/*/base/pg_hba.conf; do
        printf 'host all postgres 127.0.0.1/32 trust\nhost replication postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n' > "$hba"
    done
    for data in nl/pg/*/data; do
        echo "ALTER ROLE postgres PASSWORD NULL" |
            runuser -u postgres -- /usr/lib/postgresql/15/bin/postgres --single -D "$data" postgres >/dev/null 2>&1 ||
            fail "cannot clear the superuser password in $data"
    done
    rm -f nl/superuser-password
    start_neon_local
    sec_expect_closed "$main_port" "main after the upgrade"
    sec_expect_open_with_password "$main_port" "main after the upgrade"
    expect_eq "$(psql "$uri" -XAtc 'select count(*) from t')" 2 "rows after the upgrade"
    for hba in nl/pg/*/data/pg_hba.conf; do
        expect_not_in "$hba" "trust"
    done
    # The branch without a server, once started, and a point in time from
    # the older base backup.
    status=$(curl -s -o body.json -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
             -d "{\"endpoint\":{\"branch_id\":\"$idle_id\",\"type\":\"read_write\"}}" "$URL/projects/$project/endpoints")
    expect_eq "$status" 201 "an endpoint on the data-only branch ($(jq -r .message body.json))"
    operations_finish "$project" body.json "$key" "its start"
    call GET "/projects/$project/connection_uri?branch_id=$idle_id&role_name=neondb_owner&database_name=neondb"
    idle_uri=$(jq -r .uri body.json)
    expect_eq "$(psql "$idle_uri" -XAtc 'select count(*) from t')" 1 "rows on the data-only branch"
    sec_expect_closed "$(sec_port "$idle_uri")" "the data-only branch, started"
    # The end of its recovery held back (see hold_parent_history): a server
    # stopped before it, then set a password offline, would replay past the
    # instant.
    hold_parent_history "$(jq -r .branch.id created.json)"
    sec_ready_branch "{\"branch\":{\"name\":\"past\",\"parent_timestamp\":\"$instant\"},\"endpoints\":[{\"type\":\"read_write\"}]}"
    wait "$releaser"
    rm -f nl/pg/*/wal/00000001.history
    expect_eq "$(psql "$branch_uri" -XAtc 'select timeline_id from pg_control_checkpoint()')" 2 \
        "the branch in the past ended its recovery on a new timeline"
    call GET "/projects/$project/branches/$branch_id"
    expect_eq "$(jq -r .branch.current_state body.json)" ready "the branch in the past, from the older base backup"
    expect_eq "$(psql "$branch_uri" -XAtc 'select count(*) from t')" 1 "rows at the instant"
    sec_expect_closed "$(sec_port "$branch_uri")" "the branch in the past, from the older base backup"
    stop_neon_local
    # Set offline, the password left no trace in the servers' logs or WAL.
    pw=$(cat nl/superuser-password)
    leaks=$(grep -rlaF -- "$pw" nl nl.err nl.out | grep -vx nl/superuser-password || true)
    [ -z "$leaks" ] || fail "the superuser password is in: $leaks"
}

t_api_key_is_compared_whole() {
    start_neon_local --api-key nlk_0123456789abcdef0123456789abcdef
    for wrong in nlk_0123456789abcdef0123456789abcdee xlk_0123456789abcdef0123456789abcdef \
                 nlk_0123456789abcdef0123456789abcde nlk_0123456789abcdef0123456789abcdef0 nlk_; do
        api GET /projects "$wrong"
        expect_eq "$status" 401 "key $wrong"
    done
    status=$(curl -s -o body.json -w '%{http_code}' -H "Authorization: Bearer " "$URL/projects")
    expect_eq "$status" 401 "an empty key"
    api GET /projects nlk_0123456789abcdef0123456789abcdef
    expect_eq "$status" 200 "the right key"
    stop_neon_local
}

# A connection that sends nothing, or stops halfway through a request, is
# closed by neon-local (cat sees the end of the stream); timeout only
# bounds the wait when it is not.
t_idle_connections_are_closed() {
    start_neon_local --idle-timeout 2
    port=${URL#http://127.0.0.1:}
    port=${port%%/*}
    set +e
    timeout 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; cat <&3 >/dev/null"
    rc=$?
    set -e
    expect_rc 0
    set +e
    timeout 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; printf 'GET /api/v2/projects HTTP/1.1\r\nHost: x\r\n' >&3; cat <&3 >/dev/null"
    rc=$?
    set -e
    expect_rc 0
    # A slow client that keeps sending is served.
    key=$(cat nl/api-key)
    {
        for part in "GET /api/v2/projects HTTP/1.1\r\n" "Host: 127.0.0.1\r\n" "Authorization: Bearer $key\r\n" \
                    "Connection: close\r\n" "\r\n"; do
            printf "$part"
            sleep 0.5
        done
    } | timeout 30 bash -c "exec 5<&0 3<>/dev/tcp/127.0.0.1/$port; cat <&5 >&3 & cat <&3" > slow.out || true
    head -1 slow.out | grep -q "200" || fail "the slow request was not served: $(head -3 slow.out)"
    stop_neon_local
    # The option is checked, and documented.
    for bad in 0 -1 abc 100000; do
        set +e; "$NEON_LOCAL" --data nl --listen 127.0.0.1:0 --idle-timeout "$bad" >out 2>err; rc=$?; set -e
        expect_rc 2
        expect_in err "--idle-timeout"
        expect_in err "'$bad'"
    done
    "$NEON_LOCAL" --help > out
    expect_in out "--idle-timeout"
}

for t in t_superuser_connections_need_the_password_kept_private t_an_older_data_folder_is_closed_on_start \
         t_api_key_is_compared_whole t_idle_connections_are_closed; do
    run_test "$t"
done
