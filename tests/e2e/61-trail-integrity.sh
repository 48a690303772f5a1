# The trail proves it was not edited: hash-chained journals, the debris a
# crash may leave told apart from events added by hand, commits bound to
# what drctl writes, and nothing untracked passing for drctl's.

# The SHA-256 of line N of a journal, as written (without its newline).
line_hash() { # FILE N
    sed -n "${2}p" "$1" | tr -d '\n' | sha256sum | cut -d' ' -f1
}

# Appends an event as drctl would write it, chained to the last line
# (PREV overrides the chain; PREV=none leaves it out).
forge_event() { # FILE KIND STEP
    local f=$1 n prev
    n=$(($(wc -l <"$f") + 1))
    prev=${PREV:-$(line_hash "$f" $((n - 1)))}
    if [ "$prev" = none ]; then
        jq -cn --argjson n "$n" --arg t "$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)" --arg k "$2" --arg s "$3" \
            '{seq: $n, time: $t, kind: $k, step: (if $s == "" then null else $s end), data: {operator: "Mallory <m@example.org>"}}' >>"$f"
    else
        jq -cn --argjson n "$n" --arg p "$prev" --arg t "$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)" --arg k "$2" \
            --arg s "$3" '{seq: $n, prev: $p, time: $t, kind: $k, step: (if $s == "" then null else $s end), data: {operator: "Mallory <m@example.org>"}}' >>"$f"
    fi
}

paused_run() { # RUN_ID
    dr_notty run hold -p dir="$PWD" --run-id "$1"
    expect_rc 3
}

t_every_event_carries_the_hash_of_the_line_before() {
    dr_notty run hold -p dir="$PWD" --approve promote --run-id c
    expect_rc 0
    j=$(rundir drctl-audit "c")/journal.jsonl
    expect_eq "$(head -1 "$j" | jq -r .prev)" "$(printf %s c | sha256sum | cut -d' ' -f1)" "the first prev"
    n=$(wc -l <"$j")
    for i in $(seq 2 "$n"); do
        expect_eq "$(sed -n "${i}p" "$j" | jq -r .prev)" "$(line_hash "$j" $((i - 1)))" "prev of line $i"
    done
    # the head, the hash of the last line, is the report's anchor
    expect_in $(rundir drctl-audit "c")/report.md "| journal chain head | \`$(line_hash "$j" "$n")\` (event $n) |"
    dr audit verify --json
    expect_eq "$(jq -r '[.ok, .unchained_runs] | @tsv' out)" "true	0"
}

# A secret that happens to equal a hash in the chain is not redacted out
# of it: the chain is the engine's own field.
t_a_secret_equal_to_a_hash_leaves_the_chain_whole() {
    notify_failing_runbook
    hash=$(printf %s sec | sha256sum | cut -d' ' -f1)
    set +e
    DRCTL_PARAM_TOKEN="$hash" "$DRCTL" --runbooks "$PWD/rb" run failing --run-id sec >out 2>err </dev/null
    set -e
    expect_eq "$(head -1 $(rundir drctl-audit "sec")/journal.jsonl | jq -r .prev)" "$hash" "the first prev"
    expect_not_in $(rundir drctl-audit "sec")/report.md "$hash refused"
    dr audit verify
    expect_rc 0
}

t_events_added_by_hand_are_refused_naming_the_lines() {
    paused_run p
    j=$(rundir drctl-audit "p")/journal.jsonl
    n=$(wc -l <"$j")
    forge_event "$j" confirmation-given promote
    forge_event "$j" step-done promote
    cp "$j" forged.jsonl
    dr_notty resume p
    expect_rc 2
    expect_in err "lines $((n + 1)) (confirmation-given) and $((n + 2)) (step-done) are both transitions past the last commit"
    cmp "$j" forged.jsonl || fail "the journal was changed by a refused resume"
    [ ! -e promote.started ] || fail "the step ran"
    dr audit verify
    expect_rc 1
    expect_in out "are both transitions past the last commit"
    # One line with no prev after chained ones, or a wrong prev: refused too.
    git -C drctl-audit checkout -q HEAD -- "$(runrel p)"
    PREV=none forge_event "$j" confirmation-given promote
    dr_notty resume p
    expect_rc 2
    expect_in err "line $((n + 1)): it has no prev although the events before it are chained"
    git -C drctl-audit checkout -q HEAD -- "$(runrel p)"
    PREV=$(line_hash "$j" 1) forge_event "$j" confirmation-given promote
    dr_notty resume p
    expect_rc 2
    expect_in err "line $((n + 1)): its prev is not the hash of the line before it"
    # Back as committed, the run goes on.
    git -C drctl-audit checkout -q HEAD -- "$(runrel p)"
    dr_notty resume p --approve promote
    expect_rc 0
    dr audit verify
    expect_rc 0
}

t_an_event_edited_in_the_middle_breaks_the_chain_at_the_next_line() {
    dr_notty run hold -p dir="$PWD" --approve promote --run-id e
    expect_rc 0
    j=$(rundir drctl-audit "e")/journal.jsonl
    # an edit that keeps every other rule: same seq, same kind, a later time
    sed -i '3s/"data":{/"data":{"note":"harmless",/' "$j"
    grep -q harmless "$j" || fail "the test did not edit line 3"
    git -C drctl-audit -c user.name=M -c user.email=m@x commit -qam "e: run done" --amend
    dr audit verify
    expect_rc 1
    expect_in out "run e: $(runrel e)/journal.jsonl: the hash chain breaks at line 4: its prev is not the hash of the line before it"
}

t_a_crash_commit_carries_at_most_the_one_transition_left() {
    paused_run q
    j=$(rundir drctl-audit "q")/journal.jsonl
    forge_event "$j" confirmation-given promote
    forge_event "$j" step-started promote
    forge_event "$j" run-resumed ""
    git -C drctl-audit -c user.name=M -c user.email=m@x commit -qam "q: run resumed"
    dr audit verify
    expect_rc 1
    expect_in out "the commit adds 3 transitions, ending with run-resumed"
}

t_files_drctl_did_not_write_are_flagged() {
    dr_notty run hold -p dir="$PWD" --approve promote --run-id f
    expect_rc 0
    dr audit verify
    expect_rc 0
    echo note >$(rundir drctl-audit "f")/notes.txt
    dr audit verify
    expect_rc 1
    expect_in out "$(runrel f)/notes.txt is not a file drctl writes in a run's folder"
    dr_notty run hold -p dir="$PWD" --approve promote --run-id f2
    expect_rc 2
    expect_in err "$(runrel f)/notes.txt is not a file drctl writes in a run's folder"
    rm $(rundir drctl-audit "f")/notes.txt
    mkdir -p $(rundir drctl-audit "stray")
    echo x >$(rundir drctl-audit "stray")/run.json
    dr audit verify
    expect_rc 1
    expect_in out "$(runrel stray)/journal.jsonl was changed outside drctl: it is missing"
    rm -r $(rundir drctl-audit "stray")
    echo x >drctl-audit/stray.txt
    mkdir drctl-audit/extra && echo y >drctl-audit/extra/file
    dr audit verify
    expect_rc 1
    expect_in out "stray.txt is not tracked (untracked)"
    expect_in out "extra/ is not tracked (untracked)"
    rm -r drctl-audit/stray.txt drctl-audit/extra
    # the pages drctl docs writes into the trail are drctl's
    dr config set docs.dir wiki
    dr docs --out drctl-audit/wiki
    expect_rc 0
    dr audit verify
    expect_rc 0
}

t_journals_of_an_older_drctl_are_read_and_reported_unchained() {
    AUDIT_LAYOUT=flat AUDIT_ENDED=0 bash "$ROOT/bench/make_audit_repo.sh" drctl-audit 3
    dr audit verify --json
    expect_rc 0
    expect_eq "$(jq -r '[.unchained_runs, .partly_chained_runs] | @tsv' out)" "3	0"
    dr audit verify
    expect_in out "unchained journals (written by an older drctl, so no hash chain to check): 3 runs wholly, 0 up to a resume"
    # closed by this drctl: the events it adds are chained from the old last line
    id=$(run_id)
    dr_notty abort "$id"
    j=$(rundir drctl-audit "$id")/journal.jsonl
    expect_eq "$(sed -n 2p "$j" | jq -r .prev)" "$(line_hash "$j" 1)" "the first chained event"
    dr audit verify --json
    expect_rc 0
    expect_eq "$(jq -r '[.unchained_runs, .partly_chained_runs] | @tsv' out)" "2	1"
    dr audit show "$id"
    expect_in out "| journal chain head | \`$(line_hash "$j" "$(wc -l <"$j")")\`"
}

t_a_notification_carries_the_chain_head() {
    notify_receiver_start 200
    dr config set notify.webhook "http://127.0.0.1:$RECV_PORT/hook"
    paused_run n
    notify_receiver_stop
    j=$(rundir drctl-audit "n")/journal.jsonl
    seq=$(notify_body_to /hook | jq -r .journal_chain.seq)
    expect_eq "$(notify_body_to /hook | jq -r .journal_chain.head)" "$(line_hash "$j" "$seq")" "the head sent"
    # what was sent is what the journal says up to that event, now and later
    dr_notty resume n --approve promote
    expect_rc 0
    expect_eq "$(line_hash "$j" "$seq")" "$(notify_body_to /hook | jq -r .journal_chain.head)" "after the resume"
}

for t in t_every_event_carries_the_hash_of_the_line_before t_a_secret_equal_to_a_hash_leaves_the_chain_whole \
         t_events_added_by_hand_are_refused_naming_the_lines \
         t_an_event_edited_in_the_middle_breaks_the_chain_at_the_next_line \
         t_a_crash_commit_carries_at_most_the_one_transition_left t_files_drctl_did_not_write_are_flagged \
         t_journals_of_an_older_drctl_are_read_and_reported_unchained t_a_notification_carries_the_chain_head; do
    run_test "$t"
done
