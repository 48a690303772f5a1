# Hostile input at drctl's edges: dr.exec children whose grandchildren keep
# the output pipes open past a timeout, a signal or the child's own exit,
# children that look for drctl's secrets in /proc, and neon.request paths
# that would split the HTTP request.

# True while the grandchild the runbook started (in its own session) still
# holds the output pipes.
grandchild_alive() {
    [ -s grandchild.pid ] && [ ! -e released ]
}

stop_grandchild() {
    rm -f hold
    kill "$(cat grandchild.pid 2>/dev/null)" 2>/dev/null || true
}

t_a_timeout_ends_the_step_while_a_grandchild_still_holds_stdout() {
    touch hold
    dr run exec-hardening -p dir="$PWD" -p mode=timeout
    # drctl is back while the grandchild still has the pipe: it did not wait.
    grandchild_alive || fail "drctl waited for the grandchild that held its stdout"
    stop_grandchild
    expect_rc 1
    expect_in err "step 'timeout' failed: timed out after 3.0s"
    id=$(run_id)
    expect_eq "$(step_state "$id" timeout)" failed
    expect_eq "$(jq -r 'select(.kind == "exec") | .data.timed_out' "$(rundir drctl-audit "$id")/journal.jsonl")" true
}

t_sigint_is_honoured_while_a_grandchild_still_holds_stdout() {
    touch hold
    "$DRCTL" --runbooks "$TEST_RUNBOOKS" run exec-hardening -p dir="$PWD" -p mode=interrupt --run-id held \
        >out 2>err </dev/null &
    pid=$!
    wait_for started
    kill -INT "$pid"
    set +e; wait "$pid"; code=$?; set -e
    grandchild_alive || fail "drctl deferred SIGINT until the grandchild that held its stdout was gone"
    stop_grandchild
    expect_eq "$code" 130 "exit code on SIGINT"
    expect_eq "$(step_state held interrupt)" interrupted
    expect_eq "$(run_status held)" interrupted
    expect_in err "drctl resume held"
}

t_a_daemon_left_holding_stdout_does_not_hang_the_step() {
    touch hold
    dr run exec-hardening -p dir="$PWD" -p mode=daemon
    grandchild_alive || fail "drctl waited for the daemon that held its stdout"
    stop_grandchild
    expect_rc 0
    id=$(run_id)
    expect_eq "$(step_state "$id" daemon)" done
    expect_eq "$(jq -r '.steps[] | select(.name == "daemon") | .outputs.stdout' "$(rundir drctl-audit "$id")/state.json")" x
    expect_eq "$(jq -r '.steps[] | select(.name == "daemon") | .outputs.code' "$(rundir drctl-audit "$id")/state.json")" 0
    expect_eq "$(jq -r 'select(.kind == "exec") | .data.outputs_left_open' "$(rundir drctl-audit "$id")/journal.jsonl")" true
    expect_in err "kept its output open"
}

SECRET_ENV=(NEON_API_KEY=neon-key-0d1e2f3a4b5c NEON_LOCAL_API_KEY=local-key-9f8e7d6c5b4a
            DRCTL_GIT_TOKEN=git-token-1a2b3c4d5e6f PGPASSWORD=pg-password-6e5d4c3b
            AWS_ACCESS_KEY_ID=AKIAEXAMPLE0123456789 AWS_SECRET_ACCESS_KEY=aws-secret-7a6b5c4d3e2f
            AWS_SESSION_TOKEN=aws-session-5f4e3d2c1b0a)

# No secret value of SECRET_ENV appears in FILE.
expect_no_secret_in() { # FILE
    local pair
    for pair in "${SECRET_ENV[@]}"; do
        ! tr '\0' '\n' < "$1" | grep -qF -- "${pair#*=}" || fail "$1 holds the secret ${pair%%=*}"
    done
}

# As root a child may read drctl's environment block (root passes the
# ptrace checks): it must hold none of the secrets, nor the child's own.
t_a_child_run_as_root_finds_no_secret_in_drctls_environment() {
    set +e
    env "${SECRET_ENV[@]}" "$DRCTL" --runbooks "$TEST_RUNBOOKS" run exec-hardening -p dir="$PWD" -p mode=environ \
        >out 2>err </dev/null
    rc=$?
    set -e
    expect_rc 0
    expect_eq "$(jq -r '.steps[] | select(.name == "environ") | .outputs.read' drctl-audit/runs/*/*/*/*/state.json)" \
              read "root's read of /proc/<drctl>/environ"
    expect_no_secret_in parent-environ
    expect_no_secret_in child-environ
}

# As another user, the child must not be able to read drctl's environment
# at all: drctl is not dumpable, so /proc/<drctl>/environ belongs to root.
t_a_child_of_the_same_user_cannot_read_drctls_environment() {
    mkdir -p work/rb
    cp "$DRCTL" work/drctl
    cp "$TEST_RUNBOOKS/exec-hardening.lua" work/rb/
    chmod 755 work/drctl
    chown -R nobody work
    chmod 711 "$PWD"
    local work=$PWD/work
    set +e
    (cd work && runuser -u nobody -- env HOME="$work" "${SECRET_ENV[@]}" ./drctl --runbooks rb run exec-hardening \
        -p dir="$work" -p mode=environ >../out 2>../err </dev/null)
    rc=$?
    set -e
    expect_rc 0
    expect_eq "$(jq -r '.steps[] | select(.name == "environ") | .outputs.read' work/drctl-audit/runs/*/*/*/*/state.json)" \
              refused "the child's read of /proc/<drctl>/environ"
    expect_eq "$(cat work/parent-environ.owner)" root:root "owner of /proc/<drctl>/environ"
    expect_no_secret_in work/parent-environ
    expect_no_secret_in work/child-environ
}

# A runbook whose one step sends the path in ./path to neon.request.
write_path_runbook() {
    mkdir -p rb
    cat > rb/neon-path.lua <<'LUA'
local neon = require "neon"
return runbook {
  name = "neon-path", version = "1.0.0", summary = "Test runbook: a neon.request with a given path",
  params = { path = { type = "string", required = true } },
  steps = { { name = "call", run = function(ctx) return neon.request("GET", ctx.params.path) end } },
}
LUA
}

t_a_neon_path_with_cr_or_lf_is_refused_at_once_and_not_retried() {
    chmod 755 .
    start_neon_local
    export NEON_API_KEY=$(cat nl/api-key) NEON_API_HOST=$URL
    write_path_runbook
    for bad in $'/projects\r\nX-Injected: 1' $'/projects\n' $'/projects\tx' '/projects x' $'/projects\x7f'; do
        rm -rf drctl-audit
        set +e
        "$DRCTL" --runbooks rb run neon-path -p path="$bad" >out 2>err </dev/null
        rc=$?
        set -e
        expect_rc 1
        expect_in err "neon.request GET: the path '"
        expect_not_in err "cannot reach"
        run=$(run_id)
        expect_eq "$(count_events "$run" neon)" 0 "neon calls journaled for a refused path"
        expect_eq "$(count_events "$run" step-retry)" 0 "step retries"
    done
    expect_in err "holds the control character 0x7F at byte 9"
    "$DRCTL" --runbooks rb run neon-path -p path=$'/projects\r\nX-Injected: 1' >out 2>err </dev/null || true
    expect_in err "the path '/projects\\r\\nX-Injected: 1' holds a carriage return (CR, 0x0D) at byte 9"
    "$DRCTL" --runbooks rb run neon-path -p path=projects >out 2>err </dev/null || true
    expect_in err "the path 'projects' must start with '/'"
    # The same runbook with a good path reaches the API.
    set +e
    "$DRCTL" --runbooks rb run neon-path -p path=/projects >out 2>err </dev/null
    rc=$?
    set -e
    stop_neon_local
    expect_rc 0
}

t_an_api_key_with_a_line_break_is_refused_before_any_request() {
    chmod 755 .
    start_neon_local
    write_path_runbook
    export NEON_API_KEY="$(cat nl/api-key)"$'\r\nX-Injected: 1' NEON_API_HOST=$URL
    set +e
    "$DRCTL" --runbooks rb run neon-path -p path=/projects >out 2>err </dev/null
    rc=$?
    set -e
    stop_neon_local
    expect_rc 1
    expect_in err "the API key holds a carriage return (CR, 0x0D) at byte"
    expect_not_in err "cannot reach"
    expect_eq "$(count_events "$(run_id)" neon)" 0 "neon calls journaled"
}

# neon-local outlives the command that starts it: it must not carry drctl's
# secrets (API key, database and cloud passwords, secret params).
t_neon_local_is_started_without_drctls_secrets() {
    chmod 755 .
    unset NEON_API_KEY NEON_API_HOST
    PGPASSWORD=pg-secret-4711 AWS_SECRET_ACCESS_KEY=aws-secret-4711 DRCTL_GIT_TOKEN=git-secret-4711 \
        DRCTL_PARAM_TOKEN=param-secret-4711 DRCTL_KEEP_ME=visible-4711 dr --local run neon-get -p project=nope
    expect_rc 1
    pid=$(cat .drctl/neon-local.pid)
    tr '\0' '\n' < "/proc/$pid/environ" > nl.env
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    expect_in nl.env "DRCTL_KEEP_ME=visible-4711"
    for secret in pg-secret aws-secret git-secret param-secret; do
        expect_not_in nl.env "$secret"
    done
}

for t in t_a_timeout_ends_the_step_while_a_grandchild_still_holds_stdout \
         t_sigint_is_honoured_while_a_grandchild_still_holds_stdout \
         t_a_daemon_left_holding_stdout_does_not_hang_the_step \
         t_a_child_run_as_root_finds_no_secret_in_drctls_environment \
         t_a_child_of_the_same_user_cannot_read_drctls_environment \
         t_a_neon_path_with_cr_or_lf_is_refused_at_once_and_not_retried \
         t_an_api_key_with_a_line_break_is_refused_before_any_request \
         t_neon_local_is_started_without_drctls_secrets; do
    run_test "$t"
done
