# Notifications: drctl POSTs to the team's webhooks, tested against a real
# HTTP receiver (tests/tools/webhook-receiver.c) that logs what it got.

WEBHOOK_RECEIVER=$BIN_DIR/webhook-receiver

# Starts the receiver (answering as MODE: 200, 500, 410, sleep:N); sets
# RECV_PID and RECV_PORT; what it receives goes to ./recv.log, a line each.
notify_receiver_start() { # MODE
    rm -f recv.port
    "$WEBHOOK_RECEIVER" --log "$PWD/recv.log" --mode "$1" >recv.port 2>recv.err &
    RECV_PID=$!
    for _ in $(seq 1 200); do
        [ -s recv.port ] && break
        sleep 0.05
    done
    RECV_PORT=$(head -1 recv.port)
    [ -n "$RECV_PORT" ] || fail "the webhook receiver did not start: $(cat recv.err)"
}

notify_receiver_stop() {
    kill "$RECV_PID" 2>/dev/null || true
    wait "$RECV_PID" 2>/dev/null || true
}

# How many requests the receiver got (0 when none).
notify_received() {
    if [ -e recv.log ]; then wc -l <recv.log; else echo 0; fi
}

# The body of the Nth request (1-based) to PATH, as JSON.
notify_body_to() { # PATH [N]
    jq -r --arg p "$1" 'select(.path == $p) | .body' recv.log | sed -n "${2:-1}p"
}

# A runbook whose second step fails with its secret param in the error.
notify_failing_runbook() {
    mkdir -p rb
    cat >rb/failing.lua <<'EOF'
local dr = require "dr"
return runbook {
  name = "failing", version = "1.0.0",
  summary = "Test runbook: a step that fails, its secret in the error",
  params = {
    project = { type = "string", default = "proj-notify" },
    branch = { type = "string", default = "main" },
    token = { type = "string", secret = true, required = true },
  },
  steps = {
    { name = "prepare", idempotent = true, run = function(ctx) return { ready = true } end },
    { name = "boom", idempotent = true,
      run = function(ctx) dr.fail("the database refused the token " .. ctx.params.token) end },
  },
}
EOF
}

notify_run_failing() {
    set +e
    DRCTL_PARAM_TOKEN="tok-Secret-8841" "$DRCTL" --runbooks "$PWD/rb" run failing >out 2>err </dev/null
    rc=$?
    set -e
}

t_notify_test_reaches_json_and_slack_webhooks_and_is_recorded() {
    notify_receiver_start 200
    export NOTIFY_HOOK="http://127.0.0.1:$RECV_PORT/env-hook/Tok3n-path"
    export NOTIFY_SLACK="http://127.0.0.1:$RECV_PORT/slack/T0/B0/slack-Tok3n"
    dr config set notify.webhook "http://127.0.0.1:$RECV_PORT/hook"
    expect_rc 0
    dr config set notify.webhook env:NOTIFY_HOOK
    dr config set notify.webhook slack:env:NOTIFY_SLACK
    before=$(git -C drctl-audit rev-parse HEAD)
    dr notify test
    expect_rc 0
    expect_in out "http://127.0.0.1:$RECV_PORT/…: delivered (HTTP 200, 1 attempt"
    expect_in out "env:NOTIFY_HOOK: delivered"
    expect_in out "slack:env:NOTIFY_SLACK: delivered"
    expect_eq "$(notify_received)" 3 "requests received"
    body=$(notify_body_to /hook)
    expect_eq "$(echo "$body" | jq -r .event)" test "event"
    expect_eq "$(echo "$body" | jq -r .operator)" "Test Operator <test@example.org>" "operator"
    echo "$body" | jq -r .summary | grep -q "^drctl test notification from .* by Test Operator" ||
        fail "summary: $(echo "$body" | jq -r .summary)"
    expect_eq "$(echo "$body" | jq 'has("run_id")')" false "a NULL field is left out"
    expect_eq "$(jq -r 'select(.path == "/hook") | .content_type' recv.log)" application/json "Content-Type"
    jq -r 'select(.path == "/hook") | .user_agent' recv.log | grep -q '^drctl/' || fail "no drctl User-Agent"
    expect_eq "$(notify_body_to /env-hook/Tok3n-path | jq -r .event)" test "the env: webhook's event"
    slack=$(notify_body_to /slack/T0/B0/slack-Tok3n)
    expect_eq "$(echo "$slack" | jq -r 'keys | join(",")')" text "Slack body keys"
    echo "$slack" | jq -r .text | grep -q "drctl test notification" || fail "Slack text: $slack"
    # recorded: one new file, one commit that touches only it
    record=$(ls drctl-audit/notifications/*-test-*.json)
    expect_eq "$(jq -r '[.event, .delivered, .webhooks] | @tsv' "$record")" "test	3	3"
    expect_eq "$(jq -r '.deliveries[].webhook' "$record" | tr '\n' ,)" \
        "http://127.0.0.1:$RECV_PORT/…,env:NOTIFY_HOOK,slack:env:NOTIFY_SLACK,"
    expect_not_in "$record" "Tok3n"
    expect_not_in "$record" "/hook"
    expect_eq "$(git -C drctl-audit log -1 --format='%s|%an')" "notify: test delivered to 3 of 3|Test Operator"
    expect_eq "$(git -C drctl-audit diff --name-status "$before" HEAD)" "A	${record#drctl-audit/}"
    [ -z "$(git -C drctl-audit status --porcelain)" ] || fail "the audit repository is not clean"
    dr audit verify
    expect_rc 0
    dr notify test --json
    expect_rc 0
    expect_eq "$(jq -r '[.delivered, .webhooks, (.deliveries | length)] | @tsv' out)" "3	3	3"
    expect_eq "$(jq -r '.deliveries[0] | [.format, .delivered, .status, .attempts] | @tsv' out)" "json	true	200	1"
    expect_eq "$(jq -r '.deliveries[2].format' out)" slack
    notify_receiver_stop
}

t_notify_test_without_webhook_or_with_bad_settings_is_usage() {
    dr notify test
    expect_rc 2
    expect_in err "drctl config set notify.webhook URL"
    [ ! -e drctl-audit ] || fail "an audit repository was made for nothing"
    dr config set contact "someone"
    echo '{"notify.webhook": "not a list"}' >drctl-audit/config.json
    dr notify test
    expect_rc 2
    expect_in err "notify.webhook"
    dr notify send
    expect_rc 2
}

t_notify_unset_env_is_a_failed_delivery_not_a_crash() {
    notify_receiver_start 200
    dr config set notify.webhook "http://127.0.0.1:$RECV_PORT/hook"
    dr config set notify.webhook env:NOTIFY_NOT_SET_ANYWHERE
    dr notify test --json
    expect_rc 1
    expect_eq "$(jq -r '.deliveries[1] | [.delivered, .attempts] | @tsv' out)" "false	0"
    jq -r '.deliveries[1].error' out | grep -q "NOTIFY_NOT_SET_ANYWHERE is not set" || fail "no reason given"
    expect_eq "$(notify_received)" 1 "requests received"
    expect_eq "$(git -C drctl-audit log -1 --format=%s)" "notify: test delivered to 1 of 2"
    notify_receiver_stop
}

t_notify_receiver_down_fails_with_a_reason_within_the_bound() {
    notify_receiver_start 200
    port=$RECV_PORT
    notify_receiver_stop # nothing listens there now
    dr config set notify.webhook "http://127.0.0.1:$port/hook"
    dr config set notify.timeout 2s
    started=$SECONDS
    dr notify test --json
    expect_rc 1
    [ $((SECONDS - started)) -lt 60 ] || fail "notify test did not return within a minute"
    expect_eq "$(jq -r '.deliveries[0].delivered' out)" false
    jq -r '.deliveries[0].error' out | grep -qi "connect" || fail "the reason does not say it could not connect"
    [ "$(jq -r '.deliveries[0].attempts' out)" -gt 1 ] || fail "a refused connection was not retried"
    record=$(ls drctl-audit/notifications/*-test-*.json)
    expect_eq "$(jq -r '.deliveries[0].delivered' "$record")" false
    expect_eq "$(git -C drctl-audit log -1 --format=%s)" "notify: test delivered to 0 of 1"
    dr audit verify
    expect_rc 0
}

t_notify_slow_receiver_is_cut_at_notify_timeout() {
    notify_receiver_start sleep:5
    dr config set notify.webhook "http://127.0.0.1:$RECV_PORT/hook"
    dr config set notify.timeout 2s
    dr notify test --json
    expect_rc 1
    expect_eq "$(jq -r '.deliveries[0] | [.delivered, .attempts] | @tsv' out)" "false	1"
    jq -r '.deliveries[0].error' out | grep -qi "timed out" || fail "the reason does not say it timed out"
    expect_eq "$(notify_received)" 1 "requests received"
    notify_receiver_stop
    # the same receiver, answering within the timeout: delivered
    rm -f recv.log
    notify_receiver_start sleep:1
    dr config unset notify.webhook
    dr config set notify.webhook "http://127.0.0.1:$RECV_PORT/hook"
    dr config set notify.timeout 8s
    dr notify test --json
    expect_rc 0
    expect_eq "$(jq -r '.deliveries[0] | [.delivered, .attempts] | @tsv' out)" "true	1"
    notify_receiver_stop
}

t_notify_500_is_retried_then_fails() {
    notify_receiver_start 500
    dr config set notify.webhook "http://127.0.0.1:$RECV_PORT/hook"
    dr config set notify.timeout 3s
    dr notify test --json
    expect_rc 1
    got=$(notify_received)
    [ "$got" -gt 1 ] || fail "a 500 was not retried ($got request)"
    expect_eq "$(jq -r '.deliveries[0] | [.delivered, .status, .attempts] | @tsv' out)" "false	500	$got"
    jq -r '.deliveries[0].error' out | grep -q "HTTP 500" || fail "the reason does not name the status"
    notify_receiver_stop
}

t_notify_410_is_not_retried_and_says_how_to_remove_it() {
    notify_receiver_start 410
    export NOTIFY_GONE="http://127.0.0.1:$RECV_PORT/gone"
    dr config set notify.webhook env:NOTIFY_GONE
    dr notify test
    expect_rc 1
    expect_eq "$(notify_received)" 1 "requests received"
    expect_in out "env:NOTIFY_GONE: failed: HTTP 410 Gone"
    expect_in out "drctl config unset notify.webhook env:NOTIFY_GONE"
    expect_in out "(1 attempt,"
    notify_receiver_stop
}

t_notify_a_failed_run_posts_run_failed_without_its_secret() {
    notify_receiver_start 200
    notify_failing_runbook
    dr config set notify.webhook "http://127.0.0.1:$RECV_PORT/hook"
    export NOTIFY_SLACK="http://127.0.0.1:$RECV_PORT/slack"
    dr config set notify.webhook slack:env:NOTIFY_SLACK
    notify_run_failing
    expect_rc 1
    id=$(run_id)
    expect_eq "$(notify_received)" 2 "requests received"
    body=$(notify_body_to /hook)
    expect_eq "$(echo "$body" | jq -r '[.event, .run_id, .runbook, .status, .step] | @tsv')" \
        "run-failed	$id	failing	failed	boom"
    echo "$body" | jq -r .error | grep -q "the database refused the token" || fail "error: $body"
    expect_eq "$(echo "$body" | jq -r '.target.project + "/" + .target.branch')" "proj-notify/main"
    expect_eq "$(echo "$body" | jq -r .report)" "$(cd drctl-audit && pwd -P)/$(runrel "$id")/report.md"
    [ -e "$(echo "$body" | jq -r .report)" ] || fail "the report path does not exist"
    slack=$(notify_body_to /slack | jq -r .text)
    echo "$slack" | grep -q "$id" || fail "the Slack text does not name the run: $slack"
    echo "$slack" | grep -q "boom" || fail "the Slack text does not name the step: $slack"
    expect_not_in recv.log "tok-Secret-8841"
    # the journal says what each delivery did, before the run's end, in the end's commit
    expect_eq "$(count_events "$id" notify)" 1
    expect_eq "$(jq -r 'select(.kind == "notify") | .data.event' "$(rundir drctl-audit "$id")/journal.jsonl")" run-failed
    expect_eq "$(jq -r 'select(.kind == "notify") | [.data.deliveries[].delivered] | join(",")' \
        "$(rundir drctl-audit "$id")/journal.jsonl")" "true,true"
    expect_eq "$(jq -r .kind "$(rundir drctl-audit "$id")/journal.jsonl" | tail -2 | tr '\n' ,)" "notify,run-failed,"
    git -C drctl-audit show "HEAD:$(runrel "$id")/journal.jsonl" | grep -q '"kind":"notify"' ||
        fail "the run's end commit does not carry the notify event"
    expect_not_in "$(rundir drctl-audit "$id")/journal.jsonl" "tok-Secret-8841"
    expect_in err "notified run-failed to 2 webhooks"
    dr audit verify
    expect_rc 0
    notify_receiver_stop
}

t_notify_a_run_whose_webhook_fails_still_fails_as_itself() {
    notify_receiver_start 410
    notify_failing_runbook
    dr config set notify.webhook "http://127.0.0.1:$RECV_PORT/hook"
    notify_run_failing
    expect_rc 1
    expect_in err "the database refused the token"
    expect_in err "reached 0 of 1 webhooks"
    id=$(run_id)
    expect_eq "$(run_status "$id")" failed
    jq -r 'select(.kind == "notify") | .data.deliveries[0].error' "$(rundir drctl-audit "$id")/journal.jsonl" |
        grep -q "HTTP 410" || fail "the journal does not say why the delivery failed"
    dr audit verify
    expect_rc 0
    notify_receiver_stop
}

t_notify_a_paused_run_posts_run_paused() {
    notify_receiver_start 200
    dr config set notify.webhook "http://127.0.0.1:$RECV_PORT/hook"
    dr_notty run hold -p dir="$PWD"
    expect_rc 3
    id=$(run_id)
    body=$(notify_body_to /hook)
    expect_eq "$(echo "$body" | jq -r '[.event, .status, .step, .run_id] | @tsv')" "run-paused	paused	promote	$id"
    echo "$body" | jq -r .summary | grep -q "drctl resume $id" || fail "the summary does not say how to go on"
    expect_eq "$(count_events "$id" notify)" 1
    dr audit verify
    expect_rc 0
    notify_receiver_stop
}

t_notify_an_interrupted_run_posts_run_interrupted() {
    notify_receiver_start 200
    dr config set notify.webhook "http://127.0.0.1:$RECV_PORT/hook"
    touch hold-copy
    "$DRCTL" --runbooks "$TEST_RUNBOOKS" run hold -p dir="$PWD" --run-id held >out 2>err </dev/null &
    pid=$!
    wait_for copy.started
    kill -INT "$pid"
    set +e; wait "$pid"; code=$?; set -e
    expect_eq "$code" 130 "exit code on SIGINT"
    expect_eq "$(notify_body_to /hook | jq -r '[.event, .step] | @tsv')" "run-interrupted	copy"
    expect_eq "$(count_events held notify)" 1
    expect_eq "$(run_status held)" interrupted
    dr audit verify
    expect_rc 0
    notify_receiver_stop
}

t_notify_nothing_is_sent_or_recorded_without_a_webhook() {
    notify_receiver_start 200
    notify_failing_runbook
    notify_run_failing
    expect_rc 1
    id=$(run_id)
    expect_eq "$(notify_received)" 0 "requests received"
    expect_eq "$(count_events "$id" notify)" 0
    [ ! -e drctl-audit/notifications ] || fail "a notification was recorded"
    # a settings file that does not load: a warning, the run still fails as itself
    dr config set contact "someone"
    echo '{"notify.webhook": 3}' >drctl-audit/config.json
    git -C drctl-audit commit -qam "config: set contact"
    set +e
    DRCTL_PARAM_TOKEN="tok-Secret-8841" "$DRCTL" --runbooks "$PWD/rb" run failing --run-id second >out 2>err </dev/null
    rc=$?
    set -e
    expect_rc 1
    expect_in err "no notification sent"
    expect_eq "$(count_events second notify)" 0
    expect_eq "$(notify_received)" 0 "requests received"
    notify_receiver_stop
}

t_notify_a_record_changed_later_is_caught_by_verify() {
    notify_receiver_start 200
    dr config set notify.webhook "http://127.0.0.1:$RECV_PORT/hook"
    dr notify test
    expect_rc 0
    notify_receiver_stop
    record=$(ls drctl-audit/notifications/*.json)
    jq '.delivered = 0' "$record" >tmp.json && mv tmp.json "$record"
    dr audit verify
    expect_rc 1
    expect_in out "notification record"
    git -C drctl-audit commit -qam "notify: test delivered to 0 of 1"
    dr audit verify
    expect_rc 1
    expect_in out "already recorded"
}

# On neon-local, with the helpers of 90-neon-local.sh and 98-scenarios.sh.
t_notify_a_drill_posts_its_result_and_figures() {
    salons_project
    notify_receiver_start 200
    dr config set notify.webhook "http://127.0.0.1:$RECV_PORT/hook"
    set +e
    "$DRCTL" --runbooks "$SCENARIOS" drill accidental-deletion -p write_rate=10 --json >out 2>err </dev/null
    rc=$?
    set -e
    expect_rc 0
    run=$(jq -r .run_id out)
    body=$(notify_body_to /hook)
    expect_eq "$(echo "$body" | jq -r '[.event, .status, .run_id, .details.scenario, .details.left_behind] | @tsv')" \
        "drill	passed	$run	accidental-deletion	0"
    expect_eq "$(echo "$body" | jq -r .details.rto_seconds)" "$(jq -r .rto_seconds out)" "RTO"
    expect_eq "$(echo "$body" | jq -r .details.rpo_seconds)" "$(jq -r .rpo_seconds out)" "RPO"
    expect_eq "$(echo "$body" | jq -r .target.project)" "$NEON_PROJECT_ID" "project"
    expect_eq "$(count_events "$run" notify)" 1
    sc audit verify
    expect_rc 0
    notify_receiver_stop
    stop_neon_local
}

# With the helpers of 70-remote.sh: a notification recorded while origin
# was unreachable is replayed onto what others pushed meanwhile.
t_notify_a_record_made_offline_is_replayed_onto_origin() {
    setup_origin
    notify_receiver_start 200
    in_clone a "Alice <alice@example.org>" config set notify.webhook "http://127.0.0.1:$RECV_PORT/hook"
    expect_rc 0
    git -C b pull -q
    mv origin.git origin.away
    in_clone b "Bob <bob@example.org>" notify test
    expect_rc 0
    mv origin.away origin.git
    in_clone a "Alice <alice@example.org>" config set contact "Neon support, +1 555 0100"
    expect_rc 0
    in_clone b "Bob <bob@example.org>" notify test
    expect_rc 0
    git clone -q origin.git check
    expect_eq "$(ls check/notifications | wc -l)" 2 "records on origin"
    expect_eq "$(git -C check rev-list --merges --count HEAD)" 0 "merge commits"
    expect_eq "$(git -C check log --format=%s | head -3 | tr '\n' ,)" \
        "notify: test delivered to 1 of 1,notify: test delivered to 1 of 1,config: set contact,"
    expect_eq "$(jq -r .contact check/config.json)" "Neon support, +1 555 0100"
    dr --audit check audit verify
    expect_rc 0
    notify_receiver_stop
}

for t in t_notify_test_reaches_json_and_slack_webhooks_and_is_recorded \
         t_notify_test_without_webhook_or_with_bad_settings_is_usage \
         t_notify_unset_env_is_a_failed_delivery_not_a_crash \
         t_notify_receiver_down_fails_with_a_reason_within_the_bound \
         t_notify_slow_receiver_is_cut_at_notify_timeout \
         t_notify_500_is_retried_then_fails \
         t_notify_410_is_not_retried_and_says_how_to_remove_it \
         t_notify_a_failed_run_posts_run_failed_without_its_secret \
         t_notify_a_run_whose_webhook_fails_still_fails_as_itself \
         t_notify_a_paused_run_posts_run_paused \
         t_notify_an_interrupted_run_posts_run_interrupted \
         t_notify_nothing_is_sent_or_recorded_without_a_webhook \
         t_notify_a_record_changed_later_is_caught_by_verify \
         t_notify_a_record_made_offline_is_replayed_onto_origin \
         t_notify_a_drill_posts_its_result_and_figures; do
    run_test "$t"
done
