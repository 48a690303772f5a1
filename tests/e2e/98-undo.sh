# drctl undo RUN_ID on neon-local: a finished accidental-deletion or
# corruption run taken back (helpers from 90, 96 and 98-scenarios).

default_branch_name() {
    api GET "/projects/$project/branches" "$key"
    jq -r '.branches[] | select(.default) | .name' body.json
}

# A finished accidental-deletion run of STRATEGY on the salons project,
# then a write after the recovery (client 9002); sets run.
recovered_with() { # STRATEGY
    salons_project
    incident
    sc run accidental-deletion -p "incident_time=$incident" -p "strategy=$1" --approve apply
    expect_rc 0
    run=$(run_id)
    psql "$(current_uri)" -Xqc "insert into client (id, name, email) values (9002, 'Later', 'later@example.org')"
}

# The default branch's connection string now (a promotion changes it).
current_uri() {
    api GET "/projects/$project/connection_uri?database_name=neondb&role_name=neondb_owner" "$key"
    jq -r .uri body.json
}

t_undo_of_a_restore_puts_the_branch_back_and_keeps_its_state() {
    recovered_with restore
    expect_eq "$(count_on "$uri" 'select count(*) from booking where "salonId" = 3')" "$lost" "bookings after the recovery"
    # Without a terminal the undo pauses at its confirmation, saying what is lost.
    sc undo "$run"
    expect_rc 3
    expect_in err "goes back to its state before run $run"
    expect_in err "since that run recovered it will no longer be on it"
    undo=$(newest_run)
    [ "$undo" != "$run" ] || fail "the undo made no run of its own"
    expect_eq "$(count_on "$uri" 'select count(*) from booking where "salonId" = 3')" "$lost" \
        "bookings before the confirmation (nothing changed)"
    sc resume "$undo" --approve undo
    expect_rc 0
    # As before the recovery: the incident's state, with the write after it.
    expect_eq "$(count_on "$uri" 'select count(*) from booking where "salonId" = 3')" 0 "salon 3's bookings after the undo"
    expect_eq "$(count_on "$uri" 'select count(*) from booking where id = 90001')" 1 "the write after the incident"
    expect_eq "$(count_on "$uri" 'select count(*) from client where id = 9002')" 0 "the write after the recovery, on main"
    kept="main-before-undo-$(echo "$undo" | tr 'A-Z' 'a-z')"
    expect_eq "$(count_on "$(uri_of_branch "$kept")" 'select count(*) from client where id = 9002')" 1 \
        "the write after the recovery, kept"
    # Linked both ways, and not twice.
    sc status "$run"
    expect_in out "undone by: $undo"
    sc status "$undo"
    expect_in out "undoes:   $run"
    sc undo "$run"
    expect_rc 2
    expect_in err "was undone already, by run $undo"
    sc audit verify
    expect_rc 0
    stop_neon_local
}

t_undo_of_a_promotion_gives_the_default_back() {
    recovered_with promote
    [ "$(default_branch_name)" != main ] || fail "the recovery promoted nothing"
    promoted=$(default_branch_name)
    sc undo "$run" --approve undo
    expect_rc 0
    # The approval is recorded with what it let go.
    expect_in "$(rundir drctl-audit "$(newest_run)")/journal.jsonl" "main becomes the project's default branch again in place of $promoted"
    expect_eq "$(default_branch_name)" main "the default branch after the undo"
    expect_eq "$(count_on "$(current_uri)" 'select count(*) from booking where "salonId" = 3')" 0 \
        "salon 3's bookings on the default branch after the undo"
    # The promoted branch stays, with the write made on it.
    expect_eq "$(count_on "$(uri_of_branch "$promoted")" 'select count(*) from client where id = 9002')" 1 \
        "the write after the recovery, on the promoted branch"
    stop_neon_local
}

t_undo_of_a_reinsertion_deletes_exactly_the_rows_it_inserted() {
    recovered_with reinsert
    # A salon 3 booking written after the recovery is not the run's: it stays.
    psql "$uri" -Xqc "insert into booking (id, \"salonId\", \"clientId\", service, price, starts_at) values (90002, 3, 9002, 'coupe', 30, now())"
    grep -q '"inserted_keys"' "$(rundir drctl-audit "$run")/journal.jsonl" || fail "the run recorded no keys"
    sc undo "$run" --approve undo
    expect_rc 0
    expect_in "$(rundir drctl-audit "$(newest_run)")/journal.jsonl" "are deleted, by primary key, in one transaction"
    expect_eq "$(count_on "$uri" 'select count(*) from booking where "salonId" = 3')" 1 "salon 3's bookings after the undo"
    expect_eq "$(count_on "$uri" 'select count(*) from booking where id = 90002')" 1 "the booking written after the recovery"
    expect_eq "$(count_on "$uri" 'select count(*) from booking where id = 90001')" 1 "the write after the incident"
    stop_neon_local
}

t_an_undo_that_cannot_be_done_says_why_and_changes_nothing() {
    salons_project
    incident
    # Not finished: paused at its confirmation.
    sc run accidental-deletion -p "incident_time=$incident"
    expect_rc 3
    paused=$(run_id)
    sc undo "$paused"
    expect_rc 2
    expect_in err "run $paused is paused, not finished"
    sc undo 20990101T000000Z-nothing-0000
    expect_rc 2
    expect_in err "there is no run 20990101T000000Z-nothing-0000"
    sc undo "$paused" -p project=other
    expect_rc 2
    expect_in err "drctl undo takes no -p"
    sc resume "$paused" --approve apply
    expect_rc 0
    kept="main-before-restore-$(echo "$paused" | tr 'A-Z' 'a-z')"
    api GET "/projects/$project/branches" "$key"
    kept_id=$(jq -r --arg n "$kept" '.branches[] | select(.name == $n) | .id' body.json)
    # The preserved branch given an endpoint: it may have been written to.
    uri_of_branch "$kept" >/dev/null
    sc undo "$paused" --approve undo
    expect_rc 1
    expect_in err "has an endpoint now"
    expect_eq "$(count_on "$uri" 'select count(*) from booking where "salonId" = 3')" "$lost" "bookings after a refused undo"
    sc abort "$(newest_run)"
    expect_rc 0
    api GET "/projects/$project/branches/$kept_id/endpoints" "$key"
    curl -s -o deleted.json -X DELETE -H "Authorization: Bearer $key" \
        "$URL/projects/$project/endpoints/$(jq -r '.endpoints[0].id' body.json)"
    for op in $(jq -r '.operations[].id' deleted.json); do wait_operation "$project" "$op" "$key"; done
    # Protected: refused in the first step, main untouched.
    curl -s -o /dev/null -X PATCH -H "Authorization: Bearer $key" -d '{"branch":{"protected":true}}' \
        "$URL/projects/$project/branches/$kept_id"
    sc undo "$paused" --approve undo
    expect_rc 1
    expect_in err "the preserved branch $kept is protected"
    expect_eq "$(count_on "$uri" 'select count(*) from booking where "salonId" = 3')" "$lost" "bookings after a refused undo"
    sc abort "$(newest_run)"
    expect_rc 0
    # Unprotected again: the API changed it since the run, so it is refused still.
    curl -s -o /dev/null -X PATCH -H "Authorization: Bearer $key" -d '{"branch":{"protected":false}}' \
        "$URL/projects/$project/branches/$kept_id"
    sc undo "$paused" --approve undo
    expect_rc 1
    expect_in err "was changed since run $paused"
    expect_eq "$(count_on "$uri" 'select count(*) from booking where "salonId" = 3')" "$lost" "bookings after a refused undo"
    # An undo of an undo, or of another runbook's run, is refused.
    sc undo "$(newest_run)"
    expect_rc 2
    expect_in err "drctl undo reverses a finished accidental-deletion or corruption run"
    stop_neon_local
}

t_an_undo_killed_in_its_restore_resumes_without_repeating_it() {
    recovered_with restore
    set +e
    "$DRCTL" --runbooks "$SCENARIOS" undo "$run" --approve undo >out 2>err </dev/null &
    local pid=$!
    set -e
    for _ in $(seq 1 400); do
        grep -qs '"step-started","step":"undo"' drctl-audit/runs/*/*/*/*undo*/journal.jsonl && break
        sleep 0.05
    done
    sleep "${KILL_AFTER:-0.4}"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    undo=$(newest_run)
    ! grep -qs '"step-done","step":"undo"' "$(rundir drctl-audit "$undo")/journal.jsonl" || fail "the undo ended before the kill"
    sc resume "$undo" --approve undo
    expect_rc 0
    expect_eq "$(count_on "$uri" 'select count(*) from booking where "salonId" = 3')" 0 "salon 3's bookings after the undo"
    expect_eq "$(count_on "$uri" 'select count(*) from client where id = 9002')" 0 "the write after the recovery, on main"
    expect_eq "$(branch_names | tr ',' '\n' | grep -c 'before-undo' || true)" 1 "branches kept by the undo"
    stop_neon_local
}

t_undo_of_a_corruption_restore_brings_the_corrupted_state_back() {
    salons_project
    sleep 2
    good=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    sleep 1
    psql "$uri" -Xqc "update client set phone = 'broken'"
    sc run corruption -p "last_good=$good" --approve apply
    expect_rc 0
    run=$(run_id)
    expect_eq "$(count_on "$uri" "select count(*) from client where phone = 'broken'")" 0 "broken rows after the recovery"
    sc undo "$run" --approve undo
    expect_rc 0
    # Back as before the recovery: the corruption is there again, on main.
    expect_eq "$(count_on "$uri" "select count(*) from client where phone = 'broken'")" \
        "$(count_on "$uri" 'select count(*) from client')" "broken rows after the undo"
    expect_in "$(rundir drctl-audit "$(newest_run)")/report.md" "the same as main-corrupted-"
    stop_neon_local
}

for t in t_undo_of_a_restore_puts_the_branch_back_and_keeps_its_state \
         t_undo_of_a_promotion_gives_the_default_back \
         t_undo_of_a_reinsertion_deletes_exactly_the_rows_it_inserted \
         t_an_undo_that_cannot_be_done_says_why_and_changes_nothing \
         t_an_undo_killed_in_its_restore_resumes_without_repeating_it \
         t_undo_of_a_corruption_restore_brings_the_corrupted_state_back; do
    run_test "$t"
done
