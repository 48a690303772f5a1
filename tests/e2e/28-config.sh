# drctl config: the team's settings, one versioned file in the audit repository.

t_settings_show_defaults_then_the_commit_that_set_them() {
    dr config
    expect_rc 0
    expect_in out "check.backup_max_age         26h"
    expect_in out "(default)"
    [ ! -e drctl-audit ] || fail "showing the settings made an audit repository"
    dr config set contact "Neon support portal, on-call +33 1 23 45 67 89"
    expect_rc 0
    dr config set check.export_max_age 10d
    expect_rc 0
    expect_eq "$(git -C drctl-audit log --format='%an <%ae>|%s' | head -2)" \
        "Test Operator <test@example.org>|config: set check.export_max_age
Test Operator <test@example.org>|config: set contact"
    commit=$(git -C drctl-audit log -1 --format=%H)
    dr config --json
    expect_rc 0
    expect_eq "$(jq -r '.settings[] | select(.key == "check.export_max_age") | [.value, .source, .commit] | @tsv' out)" \
        "10d	config	$commit"
    expect_eq "$(jq -r '.settings[] | select(.key == "check.history_min") | [.value, .source] | @tsv' out)" "7d	default"
    expect_eq "$(jq -r '.contact' drctl-audit/config.json)" "Neon support portal, on-call +33 1 23 45 67 89"
    dr config unset check.export_max_age
    expect_rc 0
    dr config --json
    expect_eq "$(jq -r '.settings[] | select(.key == "check.export_max_age") | [.value, .source] | @tsv' out)" "8d	default"
    [ -z "$(git -C drctl-audit status --porcelain)" ] || fail "the audit repository is not clean"
    dr audit verify
    expect_rc 0
}

t_webhooks_are_a_list_and_env_values_are_never_resolved() {
    export HOOK_URL="https://hooks.example.org/services/T0/B0/secret-token-value"
    dr config set notify.webhook env:HOOK_URL
    expect_rc 0
    dr config set notify.webhook https://alerts.example.org/drctl
    expect_rc 0
    dr config
    expect_in out "env:HOOK_URL https://alerts.example.org/drctl"
    expect_not_in out "secret-token-value"
    expect_not_in drctl-audit/config.json "secret-token-value"
    expect_eq "$(jq -c '."notify.webhook"' drctl-audit/config.json)" '["env:HOOK_URL","https://alerts.example.org/drctl"]'
    dr config unset notify.webhook env:HOOK_URL
    expect_rc 0
    expect_eq "$(jq -c '."notify.webhook"' drctl-audit/config.json)" '["https://alerts.example.org/drctl"]'
    dr config unset notify.webhook
    expect_rc 0
    expect_eq "$(jq -c '."notify.webhook"' drctl-audit/config.json)" null
    expect_eq "$(git -C drctl-audit log --format=%s | head -4 | tr '\n' ,)" \
        "config: unset notify.webhook,config: remove notify.webhook,config: add notify.webhook,config: add notify.webhook,"
    dr audit verify
    expect_rc 0
}

t_bad_values_are_refused_and_change_nothing() {
    dr config set contact "first"
    before=$(git -C drctl-audit rev-parse HEAD)
    dr config set notify.webhook 'https://hooks.example.org/x?token=abc'
    expect_rc 2
    expect_in err "notify.webhook"
    expect_in err "give it as env:NAME"
    dr config set notify.webhook 'https://user:pw@hooks.example.org/x'
    expect_rc 2
    expect_in err "without user or password"
    dr config set notify.webhook 'ftp://hooks.example.org/x'
    expect_rc 2
    expect_in err "an http:// or https:// URL, or env:NAME"
    dr config set notify.webhook 'env:1BAD'
    expect_rc 2
    dr config set check.backup_max_age 26
    expect_rc 2
    expect_in err "check.backup_max_age: '26' is not valid: expected a duration"
    dr config set contact "$(printf 'two\nlines')"
    expect_rc 2
    expect_in err "control characters"
    dr config set colour blue
    expect_rc 2
    expect_in err "'colour' is not a setting"
    dr config unset contact extra
    expect_rc 2
    expect_eq "$(git -C drctl-audit rev-parse HEAD)" "$before"
    expect_not_in drctl-audit/config.json "token"
}

t_a_bad_or_hand_edited_file_is_bad_configuration() {
    dr config set contact "first"
    echo '{"contact": "first", "check.history_min": "a week"}' >drctl-audit/config.json
    dr config
    expect_rc 2
    expect_in err "drctl-audit/config.json: check.history_min: 'a week' is not valid"
    dr config set contact second
    expect_rc 2
    expect_in err "config.json was changed outside drctl"
    dr audit verify
    expect_rc 1
    expect_in out "config.json"
    git -C drctl-audit checkout -q HEAD -- config.json
    dr audit verify
    expect_rc 0
}

t_settings_and_runs_share_the_trail_and_verify_stays_green() {
    dr config set contact "first"
    dr run hold -p dir="$PWD"
    expect_rc 3
    dr run hold -p dir="$PWD" --approve promote
    expect_rc 0
    dr config set throwaway_ttl 2d
    expect_rc 0
    dr audit verify
    expect_rc 0
    expect_in out "ok"
    # a settings commit that also touches a run is caught
    echo '{}' >drctl-audit/config.json
    run=$(run_id)
    echo x >>"$(rundir drctl-audit "$run")/report.md"
    git -C drctl-audit commit -qam "config: set contact"
    dr audit verify
    expect_rc 1
    expect_in out "the settings commit changes more than config.json"
}

for t in t_settings_show_defaults_then_the_commit_that_set_them \
         t_webhooks_are_a_list_and_env_values_are_never_resolved t_bad_values_are_refused_and_change_nothing \
         t_a_bad_or_hand_edited_file_is_bad_configuration t_settings_and_runs_share_the_trail_and_verify_stays_green; do
    run_test "$t"
done
