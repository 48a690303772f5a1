# drctl check: the guide's production checklist scored from live data, on
# neon-local (helpers from 90, 96, 98-scenarios and 29-notify).

# The status of ITEM in check.json.
ck_status() { # ITEM
    jq -r --arg i "$1" '.items[] | select(.item == $i) | .status' check.json
}

ck_run() {
    sc check --json "$@"
    cp out check.json
}

# Every item's status, as "item=status,...", from check.json.
ck_statuses() {
    jq -r '[.items[] | "\(.item)=\(.status)"] | join(",")' check.json
}

# The project's history window set to SECONDS.
ck_history() { # SECONDS
    curl -s -o /dev/null -X PATCH -H "Authorization: Bearer $key" \
        -d "{\"project\":{\"history_retention_seconds\":$1}}" "$URL/projects/$project"
}

# Everything the checklist asks for, done the way the README says.
ck_make_ready() {
    ck_history 2592000
    sc run snapshot
    expect_rc 0
    sc run export -p "dest=$PWD/exports" --approve retention
    expect_rc 0
    sc run verify-backup
    expect_rc 0
    notify_receiver_start 200
    sc config set notify.webhook "http://127.0.0.1:$RECV_PORT/hook"
    sc notify test
    expect_rc 0
    sc docs --out "$PWD/wiki"
    expect_rc 0
    sc config set docs.dir "$PWD/wiki"
    sc config set contact "Neon support, Scale plan, org org-test-123"
}

t_check_on_a_new_project_fails_every_item_with_its_fix() {
    salons_project
    ck_history 86400
    ck_run
    expect_rc 1
    for item in backups history schema-backup notifications restore-test export docs contact; do
        status=$(ck_status "$item")
        [ "$status" = fail ] || [ "$status" = warn ] || fail "$item is '$status' on a new project"
    done
    expect_eq "$(jq -r '[.items[] | select(.status != "pass" and .fix == null)] | length' check.json)" 0 \
        "items that fail without a fix"
    expect_eq "$(jq -r .result check.json)" fail "the result"
    # The text form shows the evidence and the fix under each item.
    sc check
    expect_rc 1
    expect_in out "FAIL  backups"
    expect_in out "fix: drctl run snapshot -p project=$project -p branch=main"
    expect_in out "keeps 1d of history"
    expect_in out "0 pass, 0 warn, 8 fail"
    expect_in err "not ready: backups, history, schema-backup, notifications, restore-test, export, docs, contact fail"
    stop_neon_local
}

t_check_passes_once_the_checklist_is_done_then_catches_what_drifts() {
    salons_project
    ck_make_ready
    ck_run --prometheus "$PWD/drctl.prom"
    expect_rc 0
    expect_eq "$(ck_statuses)" \
        "backups=pass,history=pass,schema-backup=pass,notifications=pass,restore-test=pass,export=pass,docs=pass,contact=pass" \
        "every item after the checklist is done"
    promtool check metrics <drctl.prom || fail "promtool finds the metrics malformed"
    expect_eq "$(grep -c '^drctl_check_ok{.*} 1$' drctl.prom)" 8 "items passing in the metrics"
    grep -q "^drctl_history_window_seconds{project=\"$project\"} 2592000$" drctl.prom || fail "history metric: $(cat drctl.prom)"
    grep -Eq '^drctl_last_backup_age_seconds\{[^}]*\} [0-9.e+]+$' drctl.prom || fail "backup age metric: $(cat drctl.prom)"
    grep -Eq '^drctl_last_export_age_seconds\{[^}]*\} [0-9.e+]+$' drctl.prom || fail "export age metric"

    # A schema change: the snapshot item fails, with the difference, until the next backup.
    psql "$uri" -Xqc 'alter table client add column loyalty_points integer'
    ck_run
    expect_rc 1
    expect_eq "$(ck_status schema-backup)" fail "the schema item after a migration without a backup"
    jq -r '.items[] | select(.item == "schema-backup") | .evidence' check.json > evidence
    expect_in evidence "the schema changed since the last backup"
    expect_in evidence "loyalty_points"
    expect_eq "$(ck_status backups)" pass "the backups item, which does not look at the schema"
    # The failing check notified the webhook, and the notification is recorded.
    jq -r 'select(.path == "/hook") | .body' recv.log | jq -r .event > events
    expect_in events check-failed
    ls drctl-audit/notifications/*check-failed*.json >/dev/null || fail "the check's notification is not recorded"
    sc run snapshot
    expect_rc 0
    ck_run
    expect_rc 0
    expect_eq "$(ck_status schema-backup)" pass "the schema item after the next backup"

    # A damaged export: the export item fails, and the metrics say so too.
    dump=$(ls exports/*.dump | head -1)
    printf 'x' >> "$dump"
    ck_run --prometheus "$PWD/drctl.prom"
    expect_rc 1
    expect_eq "$(ck_status export)" fail "the export item once its dump is damaged"
    jq -r '.items[] | select(.item == "export") | .evidence' check.json > evidence
    expect_in evidence "the dump is damaged"
    promtool check metrics <drctl.prom || fail "promtool finds the metrics malformed"
    grep -q "^drctl_check_ok{project=\"$project\",item=\"export\"} 0$" drctl.prom || fail "export metric: $(cat drctl.prom)"
    # Every verdict of the JSON is the metric's.
    for item in $(jq -r '.items[].item' check.json); do
        want=$([ "$(ck_status "$item")" = fail ] && echo 0 || echo 1)
        grep -q "^drctl_check_ok{project=\"$project\",item=\"$item\"} $want$" drctl.prom ||
            fail "$item: the metric does not say $want"
    done
    sc audit verify
    expect_rc 0
    notify_receiver_stop
    stop_neon_local
}

t_check_thresholds_come_from_the_settings() {
    salons_project
    ck_history 2592000
    sc run snapshot
    ck_run
    expect_eq "$(ck_status backups)" pass "a backup just made"
    expect_eq "$(ck_status history)" pass "30 days of history"
    sc config set check.history_warn 60d
    sc config set check.backup_max_age 1s
    sleep 1.5
    ck_run
    expect_eq "$(ck_status history)" warn "30 days of history, warned below 60"
    expect_eq "$(ck_status backups)" fail "a backup older than check.backup_max_age"
    sc config set check.history_min 31d
    ck_run
    expect_eq "$(ck_status history)" fail "30 days of history, failing below 31"
    stop_neon_local
}

t_check_refuses_bad_input_and_changes_nothing() {
    salons_project
    sc check -p project=
    expect_rc 2
    NEON_PROJECT_ID= sc check
    expect_rc 2
    expect_in err "give -p project=ID or set NEON_PROJECT_ID"
    sc check -p database=neondb
    expect_rc 2
    expect_in err "a check takes -p project=ID and -p branch=NAME only"
    sc check --prometheus "$PWD/no/such/dir/drctl.prom"
    expect_rc 2
    expect_in err "cannot write the metrics to $PWD/no/such/dir/drctl.prom"
    sc check -p branch=nope
    expect_rc 1
    sc check --json -p branch=nope
    jq -r '.items[] | select(.item == "backups") | .evidence' out > evidence
    expect_in evidence "has no branch 'nope'"
    # A config.json edited by hand into something invalid: exit 2, naming it.
    mkdir -p drctl-audit && echo '{"check.backup_max_age":"soon"}' > drctl-audit/config.json
    sc check
    expect_rc 2
    expect_in err "config.json: check.backup_max_age: 'soon' is not valid"
    rm drctl-audit/config.json
    # A wrong API key: every item that needs the API fails saying so.
    NEON_API_KEY=wrong sc check --json
    expect_rc 1
    jq -r '.items[] | select(.item == "history") | .evidence' out > evidence
    expect_in evidence "the Neon API could not be read"
    [ ! -e drctl-audit/.git ] || fail "a check with no webhook made an audit repository"
    stop_neon_local
}

for t in t_check_on_a_new_project_fails_every_item_with_its_fix \
         t_check_passes_once_the_checklist_is_done_then_catches_what_drifts \
         t_check_thresholds_come_from_the_settings \
         t_check_refuses_bad_input_and_changes_nothing; do
    run_test "$t"
done
