# neon-local: the server itself (address, key, errors, shutdown).

NEON_LOCAL=$BIN_DIR/neon-local

# Starts neon-local on a free port; sets URL, and PID for the test to stop.
start_neon_local() { # extra args...
    "$NEON_LOCAL" --data "$PWD/nl" --listen 127.0.0.1:0 "$@" > nl.out 2> nl.err &
    PID=$!
    for _ in $(seq 1 100); do
        grep -q "^neon-local: http://" nl.out 2>/dev/null && break
        sleep 0.05
    done
    URL=$(sed -n 's/^neon-local: //p' nl.out)
    [ -n "$URL" ] || fail "neon-local did not print its ready line"
}

api() { # METHOD PATH [KEY]: body in body.json, status in status
    status=$(curl -s -o body.json -w '%{http_code}' -X "$1" ${3:+-H "Authorization: Bearer $3"} "$URL$2")
}

t_neon_local_generates_a_private_key_and_checks_it() {
    start_neon_local
    expect_eq "$(stat -c %a nl/api-key)" 600 "api-key mode"
    key=$(cat nl/api-key)
    api GET /projects
    expect_eq "$status" 401 "no key"
    expect_eq "$(jq -r 'has("code") and has("message") and has("request_id")' body.json)" true "error shape"
    api GET /projects wrong-key
    expect_eq "$status" 401 "wrong key"
    api GET /projects "$key"
    expect_eq "$status" 200 "right key"
    expect_eq "$(jq -c .projects body.json)" "[]"
    api GET /no-such-thing "$key"
    expect_eq "$status" 404
    expect_eq "$(jq -r .message body.json)" "neon-local does not serve GET /no-such-thing"
    kill -TERM $PID
    set +e; wait $PID; code=$?; set -e
    expect_eq "$code" 0 "exit code on SIGTERM"
    # The same key on restart.
    start_neon_local
    api GET /projects "$key"
    expect_eq "$status" 200 "key kept across restarts"
    kill -INT $PID
    set +e; wait $PID; code=$?; set -e
    expect_eq "$code" 0 "exit code on SIGINT"
}

t_neon_local_takes_the_key_given() {
    NEON_LOCAL_API_KEY=from-env start_neon_local
    api GET /projects from-env
    expect_eq "$status" 200
    [ ! -e nl/api-key ] || fail "a key file was written although a key was given"
    kill $PID
    wait $PID || true
    start_neon_local --api-key from-flag
    api GET /projects from-flag
    expect_eq "$status" 200
    kill $PID
    wait $PID || true
}

t_neon_local_refuses_anything_but_loopback() {
    for addr in 0.0.0.0:4444 192.168.1.10:4444 example.org:80 4444; do
        set +e; "$NEON_LOCAL" --data nl --listen "$addr" >out 2>err; rc=$?; set -e
        expect_rc 2
        expect_in err "neon-local"
    done
    expect_in err "must be 127.0.0.1:PORT"
    set +e; "$NEON_LOCAL" --data nl --listen 0.0.0.0:4444 >out 2>err; set -e
    expect_in err "loopback address only"
}

for t in t_neon_local_generates_a_private_key_and_checks_it t_neon_local_takes_the_key_given \
         t_neon_local_refuses_anything_but_loopback; do
    run_test "$t"
done
