# Redaction: secrets of every type, connection strings in every form libpq
# reads, and secrets that look like the run's own words, which must never
# change what the run records.

# Everything a run left: terminal output, every file, and every git object
# (decompressed), so a secret found nowhere in it was written nowhere.
everything_written() {
    cat terminal out err 2>/dev/null
    grep -rh --binary-files=text '' drctl-audit 2>/dev/null || true
    git -C drctl-audit log -p --all
    git -C drctl-audit gc -q
    git -C drctl-audit cat-file --batch-all-objects --batch
}

keep_terminal() {
    cat out err >>terminal
}

expect_nowhere() { # TEXT...
    everything_written >everything.txt
    [ -s everything.txt ] || fail "nothing was written to search"
    for text in "$@"; do
        ! grep -qF -- "$text" everything.txt || fail "'$text' was written: $(grep -F -- "$text" everything.txt | head -3)"
    done
}

t_a_secret_int_is_written_nowhere() {
    dr_notty run redact-int --run-id pin1 -p dir="$PWD" -p pin=86420975
    keep_terminal
    expect_rc 1
    expect_in err "pin <redacted> was refused"
    touch go
    dr_notty resume pin1 -p pin=86420975
    keep_terminal
    expect_rc 0
    expect_eq "$(jq -r '.steps[0].outputs.pin' $(rundir drctl-audit "pin1")/state.json)" "<redacted>"
    dr_notty status pin1
    keep_terminal
    dr_notty audit show pin1
    keep_terminal
    expect_in out "<redacted>"
    expect_nowhere 86420975
}

t_connection_string_passwords_are_hidden_in_every_form() {
    local forms=(
        "host=127.0.0.1 password = Kw-Spaced-1111 dbname=d"
        "host=127.0.0.1 password='Quoted Pass 2222' dbname=d"
        "postgresql://:Empty-User-3333@127.0.0.1/db"
        "postgres://u:Multi-Host-4444@h1,h2/db"
        "postgres://u:Pct%40Encoded-5555@h/db"
        "postgresql://h/db?user=u&password=Query-Pass-6666"
        "host=h password=Esc\\ aped-7777 user=u"
        "postgresql://u:Raw/Slash-8888@h/db"
        "host=h sslpassword=Key-Pass-9999"
    )
    local i=0
    for dsn in "${forms[@]}"; do
        i=$((i + 1))
        dr_notty run redact-conninfo --run-id "dsn$i" -p dsn="$dsn"
        keep_terminal
        expect_rc 1
        expect_in err "could not connect with "
        expect_in err "<redacted>"
    done
    expect_in $(rundir drctl-audit "dsn1")/report.md "password = <redacted> dbname=d"
    expect_in $(rundir drctl-audit "dsn3")/report.md "postgresql://:<redacted>@127.0.0.1/db"
    expect_nowhere Kw-Spaced-1111 "Pass 2222" Empty-User-3333 Multi-Host-4444 Encoded-5555 Query-Pass-6666 \
        aped-7777 Slash-8888 Key-Pass-9999
}

t_the_aws_access_key_id_is_hidden() {
    export AWS_ACCESS_KEY_ID=AKIAE2EREDACTION1234
    dr_notty run redact-conninfo --run-id aws -p dsn="key $AWS_ACCESS_KEY_ID"
    keep_terminal
    expect_rc 1
    expect_in err "could not connect with key <redacted>"
    expect_nowhere AKIAE2EREDACTION1234
}

# A run that fails at verify-data, is resumed to its end (test-x is not run
# again and nothing asks), and then refuses another resume: exactly what a
# run without a secret does. Extra arguments go to each drctl call.
records_hold() { # RUN_ID [-p secret=...]
    local id=$1
    shift
    dr_notty run redact-records --run-id "$id" -p dir="$PWD" "$@"
    keep_terminal
    expect_rc 1
    expect_eq "$(step_state "$id" test-x)" done "test-x after the failed run"
    expect_eq "$(step_state "$id" verify-data)" failed "verify-data after the failed run"
    expect_eq "$(run_status "$id")" failed "the run"
    touch go
    dr_notty resume "$id" "$@"
    keep_terminal
    expect_rc 0
    expect_eq "$(count_events "$id" step-started test-x)" 1 "test-x started"
    expect_eq "$(count_events "$id" confirmation-asked)" 0 "confirmations asked"
    expect_eq "$(step_state "$id" verify-data)" done "verify-data after the resume"
    expect_eq "$(run_status "$id")" done "the resumed run"
    dr_notty resume "$id" "$@"
    expect_rc 2
    expect_in err "is already done"
    dr_notty status "$id" --json
    expect_rc 0
    expect_eq "$(jq -r .state.status out)" done "status --json"
    expect_eq "$(jq -r .runbook.name $(rundir drctl-audit "$id")/run.json)" redact-records "run.json's runbook"
    expect_eq "$(jq -r '.steps | join(",")' $(rundir drctl-audit "$id")/run.json)" test-x,verify-data "run.json's steps"
    expect_eq "$(jq -r 'select(.kind == "run-started") | .data.steps | join(",")' $(rundir drctl-audit "$id")/journal.jsonl)" \
        test-x,verify-data "run-started's steps"
    rm go
}

t_records_hold_without_a_secret() {
    records_hold plain
}

t_a_secret_equal_to_an_event_word_changes_no_record() {
    records_hold word -p secret=started
}

t_a_secret_equal_to_a_step_name_changes_no_record() {
    records_hold step -p secret=verify-data
    expect_nowhere "echo\":\"verify-data"
}

t_a_too_short_secret_is_refused_with_a_warning_naming_the_param() {
    records_hold short -p secret=done
    dr_notty run redact-records --run-id short2 -p dir="$PWD" -p secret=done
    expect_in err "secret param 'secret' is too short to be redacted safely"
    expect_in err "at least 6 characters"
    ! grep -F "too short" err | grep -qw done || fail "the warning shows the value"
    expect_eq "$(grep -c "too short" err)" 1 "warnings"
}

t_a_one_letter_secret_changes_no_record() {
    records_hold letter -p secret=b
}

t_a_short_pgpassword_and_a_step_named_after_it_change_no_record() {
    export PGPASSWORD=test
    records_hold pgpw
    dr_notty status pgpw
    expect_in err "PGPASSWORD is too short to be redacted safely"
    ! grep -F "too short" err | grep -qw test || fail "the warning shows the value"
}

for t in t_a_secret_int_is_written_nowhere t_connection_string_passwords_are_hidden_in_every_form \
    t_the_aws_access_key_id_is_hidden t_records_hold_without_a_secret \
    t_a_secret_equal_to_an_event_word_changes_no_record t_a_secret_equal_to_a_step_name_changes_no_record \
    t_a_too_short_secret_is_refused_with_a_warning_naming_the_param t_a_one_letter_secret_changes_no_record \
    t_a_short_pgpassword_and_a_step_named_after_it_change_no_record; do
    run_test "$t"
done
