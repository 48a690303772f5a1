# drctl audit log / show / verify, and tampering that verify must catch.

gitc() { git -C drctl-audit -c user.name=Mallory -c user.email=m@example.org "$@"; }

two_runs() {
    dr_notty run hold -p dir="$PWD" --approve promote --run-id r1
    expect_rc 0
    dr_notty run flaky -p dir="$PWD" -p mode=retry --run-id r2
    expect_rc 0
}

t_verify_passes_on_an_untouched_trail() {
    two_runs
    dr audit verify
    expect_rc 0
    expect_in out "verified 2 runs and"
    expect_in out ": ok"
    dr audit verify --json
    expect_eq "$(jq -r .ok out)" true
    expect_eq "$(jq -r .runs out)" 2
    expect_eq "$(jq -r .commits out)" "$(git -C drctl-audit rev-list --count HEAD)"
}

t_audit_log_and_show() {
    two_runs
    dr audit log
    expect_rc 0
    expect_eq "$(head -1 out | awk '{print $1}')" r2 "newest first"
    expect_in out "hold@1.0.0"
    expect_in out "Test Operator <test@example.org>"
    dr audit log --json
    expect_eq "$(jq -r '.[1] | [.run_id, .runbook, .version, .status, .operator] | join(",")' out)" \
              "r1,hold,1.0.0,done,Test Operator <test@example.org>"
    dr audit show r1
    expect_rc 0
    expect_in out "| 2026-"
    expect_in out "| promote | preapproved | Test Operator <test@example.org>"
    dr audit show r1 --json
    expect_eq "$(jq -r '.events | length' out)" "$(wc -l < $(rundir drctl-audit "r1")/journal.jsonl)"
    dr audit show nope
    expect_rc 2
}

t_verify_catches_a_deleted_event() {
    two_runs
    sed -i '4d' $(rundir drctl-audit "r1")/journal.jsonl
    gitc commit -qam "r1: run done"
    dr audit verify
    expect_rc 1
    expect_in out "run r1: $(runrel r1)/journal.jsonl:"
    expect_in out "has seq 5 where 4 was expected"
    expect_in out "events were removed or edited: the journal is not append-only"
}

t_verify_catches_an_edited_output_in_state() {
    two_runs
    sed -i 's/"copied":\(\s*\)3/"copied":\1300/' $(rundir drctl-audit "r1")/state.json
    grep -q '"copied":.*300' $(rundir drctl-audit "r1")/state.json || fail "the test did not edit"
    gitc commit -qam "r1: run done"
    dr audit verify
    expect_rc 1
    expect_in out "run r1: $(runrel r1)/state.json: step 'copy' in state.json disagrees with the journal"
}

t_verify_catches_an_edited_output_in_the_journal() {
    two_runs
    # Rewrite the output in the journal and state.json consistently: only
    # history can tell.
    sed -i 's/"copied":3/"copied":300/' $(rundir drctl-audit "r1")/journal.jsonl
    sed -i 's/"copied":\(\s*\)3/"copied":\1300/' $(rundir drctl-audit "r1")/state.json
    gitc commit -qam "r1: run done"
    dr audit verify
    expect_rc 1
    expect_in out "run r1: $(runrel r1)/journal.jsonl: events were removed or edited: the journal is not append-only"
}

t_verify_catches_rewritten_history() {
    two_runs
    msg=$(git -C drctl-audit log -1 --format=%s)
    gitc reset -q --soft HEAD~2
    gitc commit -qm "$msg"
    dr audit verify
    expect_rc 1
    expect_in out "adds 2 transitions where drctl commits one (a commit was removed or squashed)"
}

t_verify_catches_a_merge() {
    two_runs
    gitc checkout -q -b side HEAD~3
    echo '{}' > $(rundir drctl-audit "r2")/side.json
    gitc add $(runrel r2)/side.json
    gitc commit -qm "r2: run done"
    gitc checkout -q main
    gitc merge -q --no-ff -m "r2: run done" side
    [ "$(git -C drctl-audit rev-list --merges --count HEAD)" = 1 ] || fail "the test made no merge"
    dr audit verify
    expect_rc 1
    expect_in out "history is not linear: this is a merge commit"
}

t_verify_catches_a_commit_outside_its_run() {
    two_runs
    echo '{}' > $(rundir drctl-audit "r2")/extra.json
    gitc add $(runrel r2)/extra.json
    gitc commit -qm "r1: run done"
    dr audit verify
    expect_rc 1
    expect_in out "the commit of run r1 also changes $(runrel r2)/extra.json, outside its folder"
}

t_verify_names_a_corrupt_journal_line() {
    two_runs
    sed -i '3s/.*/{not json/' $(rundir drctl-audit "r2")/journal.jsonl
    gitc commit -qam "r2: run done"
    dr audit verify
    expect_rc 1
    expect_in out "run r2: $(runrel r2)/journal.jsonl: $(runrel r2)/journal.jsonl line 3 is not a journal event"
}

t_verify_catches_an_uncommitted_edit() {
    two_runs
    sed -i 's/"done"/"failed"/' $(rundir drctl-audit "r1")/state.json
    dr audit verify
    expect_rc 1
    expect_in out "$(rundir drctl-audit "r1")/state.json was changed outside drctl"
}

t_verify_checks_long_histories_in_shares() {
    local layout
    for layout in dated flat; do
        rm -rf drctl-audit
        AUDIT_LAYOUT=$layout AUDIT_ENDED=0 bash "$ROOT/bench/make_audit_repo.sh" drctl-audit 600
        dr audit verify --json
        expect_rc 0
        expect_eq "$(jq -r .commits out)" 600 "commits ($layout)"
        expect_eq "$(jq -r .runs out)" 600 "runs ($layout)"
        # A bad commit at the end, in the last share.
        first=$(run_ids | head -1)
        last=$(run_ids | tail -1)
        echo '{}' > "$(rundir drctl-audit "$first")/extra.json"
        gitc add "$(runrel "$first")/extra.json"
        gitc commit -qm "$last: run started"
        dr audit verify
        expect_rc 1
        expect_in out "the commit of run $last also changes $(runrel "$first")/extra.json, outside its folder"
    done
}

for t in t_verify_checks_long_histories_in_shares t_verify_passes_on_an_untouched_trail t_audit_log_and_show t_verify_catches_a_deleted_event \
         t_verify_catches_an_edited_output_in_state t_verify_catches_an_edited_output_in_the_journal \
         t_verify_catches_rewritten_history t_verify_catches_a_merge t_verify_catches_a_commit_outside_its_run \
         t_verify_names_a_corrupt_journal_line t_verify_catches_an_uncommitted_edit; do
    run_test "$t"
done
