# Four eyes: a destructive step with approvers = N runs only once N distinct
# operators approved the very summary it shows, each from their own clone of
# the audit trail (drctl approve RUN_ID STEP), while the approvals are valid.

FE_ALICE="Alice <alice@example.org>"
FE_BOB="Bob <bob@example.org>"
FE_CAROL="Carol <carol@example.org>"

# rb/NAME.lua: a step that logs, then the destructive promote with the given
# approvers. Its summary quotes w/note, so a test changes the summary by
# writing that file; the step touches w/promoted when it really runs.
fe_runbook() { # NAME APPROVERS-LUA [DIR]
    local dir=${3:-rb}
    mkdir -p "$dir"
    cat >"$dir/$1.lua" <<EOF
local dr = require "dr"
local files = require "files"

return runbook {
  name = "$1", version = "1.0.0",
  summary = "Test runbook: a destructive step that needs approvers",
  params = { dir = { type = "path", required = true, doc = "the test's work folder" } },
  steps = {
    { name = "prepare", idempotent = true,
      run = function(ctx) dr.exec({ "sh", "-c", 'echo prepare >> "\$1/log"', "sh", ctx.params.dir }) end },
    { name = "promote", destructive = true, approvers = $2,
      confirm = function(ctx)
        local note = files.read_text(ctx.params.dir .. "/note"):gsub("%s+\$", "")
        return { summary = "replace main with the copy (" .. note .. "); writes since are lost",
                 challenge = "main" }
      end,
      run = function(ctx)
        dr.exec({ "sh", "-c", 'echo promote >> "\$1/log"; touch "\$1/promoted"', "sh", ctx.params.dir })
      end },
  },
}
EOF
}

# The test runbooks, the work folder, a bare origin and two clones of it:
# a/ is Alice's (she runs the runbook), b/ is Bob's (he approves).
fe_setup() {
    fe_runbook fe 2
    fe_runbook fe-from '{ count = 2, from = { "alice@example.org", "Bob@Example.org" } }'
    fe_runbook fe-stale '{ count = 2, valid_for = "2s" }'
    fe_runbook fe-three 3
    mkdir w
    echo v1 >w/note
    git init -q --bare -b main origin.git
    git init -q -b main a
    git -C a remote add origin "$PWD/origin.git"
    git -c init.defaultBranch=main clone -q origin.git b 2>/dev/null
}

fe_clone() { # NAME: one more operator's clone
    git -c init.defaultBranch=main clone -q origin.git "$1" 2>/dev/null
}

# drctl in a clone as an operator, without any terminal.
fe_in() { # CLONE OPERATOR args...
    local clone=$1 op=$2
    shift 2
    set +e
    DRCTL_OPERATOR="$op" setsid -w "$DRCTL" --runbooks "$PWD/rb" --audit "$clone" "$@" >out 2>err </dev/null
    rc=$?
    set -e
}

# drctl in a clone as an operator on a real pseudo-terminal, where the
# operator types ANSWER at the challenge (everything shown lands in out).
fe_pty() { # CLONE OPERATOR ANSWER args...
    local clone=$1 op=$2 answer=$3
    shift 3
    set +e
    DRCTL_OPERATOR="$op" "$PTYDRIVE" --expect "Type 'main' to proceed" --send "$answer" -- \
        "$DRCTL" --runbooks "$PWD/rb" --audit "$clone" "$@" >out 2>err
    rc=$?
    set -e
}

fe_journal() { # CLONE RUN
    echo "$(rundir "$1" "$2")/journal.jsonl"
}

# jq over the events of a kind in a clone's journal of a run.
fe_jq() { # CLONE RUN KIND FILTER
    jq -r "select(.kind == \"$3\") | $4" "$(fe_journal "$1" "$2")"
}

fe_count() { # CLONE RUN KIND
    jq -c "select(.kind == \"$3\")" "$(fe_journal "$1" "$2")" | wc -l
}

# The run's journal as origin has it.
fe_origin_journal() { # RUN
    git -C origin.git show "main:$(runrel origin.git "$1")/journal.jsonl"
}

fe_origin_kinds() { # RUN: the approval events on origin, in order
    fe_origin_journal "$1" | jq -r 'select(.kind | startswith("approval-")) | .kind' | tr '\n' ' '
}

fe_not_promoted() {
    [ ! -e w/promoted ] || fail "the step ran: $*"
}

# A run of RUNBOOK paused for approvals after Alice's own --approve.
fe_paused_run() { # RUNBOOK RUN
    fe_in a "$FE_ALICE" run "$1" -p dir="$PWD/w" --approve promote --run-id "$2"
    expect_rc 3
    expect_eq "$(jq -r .status "$(rundir a "$2")/state.json")" paused "the run's status"
}

t_fe_two_operators_approve_from_their_clones_on_terminals() {
    fe_setup
    # Alice types the challenge at the run: her approval, then the pause.
    fe_pty a "$FE_ALICE" main run fe -p dir="$PWD/w" --run-id r1
    expect_rc 3
    expect_in out "replace main with the copy (v1); writes since are lost"
    expect_in out "step promote needs 2 approvals; counted 1 (Alice <alice@example.org>)"
    expect_in out "drctl approve r1 promote"
    fe_not_promoted "before any other approval"
    expect_eq "$(cat w/log)" prepare "what ran"
    expect_eq "$(fe_jq a r1 confirmation-given .data.operator)" "$FE_ALICE" "who confirmed"
    expect_eq "$(fe_jq a r1 approval-requested '[.data.operator, .data.required, (.data.approved_by | join(","))] | @tsv')" \
        "$FE_ALICE	2	$FE_ALICE" "the request"
    hash=$(fe_jq a r1 approval-requested .data.summary_hash)
    [ "${#hash}" = 64 ] || fail "the request's summary_hash: '$hash'"
    expect_eq "$(git -C origin.git log -1 --format=%s main)" "r1: run paused" "origin's last commit"
    expect_in <(git -C origin.git log --format='%an %s' main) "Alice r1: promote approval-requested"

    # Bob, on his clone, mistypes first: refused and recorded, nothing approved.
    fe_pty b "$FE_BOB" mian approve r1 promote
    expect_rc 3
    expect_in out "replace main with the copy (v1); writes since are lost"
    expect_eq "$(fe_jq b r1 approval-refused '[.data.operator, .data.reason] | @tsv')" \
        "$FE_BOB	the challenge was not typed" "the refusal"
    expect_eq "$(fe_count b r1 approval-given)" 0 "approvals given"
    # Then he types it: same summary shown, his approval committed and pushed.
    fe_pty b "$FE_BOB" main approve r1 promote
    expect_rc 0
    expect_in out "requested by Alice <alice@example.org>"
    expect_in out "replace main with the copy (v1); writes since are lost"
    expect_in out "approved step promote of run r1 as Bob <bob@example.org>"
    expect_eq "$(fe_jq b r1 approval-given '[.data.operator, .data.how, .data.summary_hash] | @tsv')" \
        "$FE_BOB	typed	$hash" "Bob's approval"
    expect_in <(git -C origin.git log --format='%an %s' main) "Bob r1: promote approval-given"
    expect_eq "$(git -C origin.git rev-parse main)" "$(git -C b rev-parse HEAD)" "origin has Bob's commits"
    fe_not_promoted "on Bob's approval alone"
    # Approving twice is refused: one person counts once.
    fe_in b "$FE_BOB" approve r1 promote --approve promote
    expect_rc 2
    expect_in err "Bob <bob@example.org> approved step promote of run r1 already: another operator must approve it"

    # Alice resumes, types again: two operators approved this summary.
    fe_pty a "$FE_ALICE" main resume r1
    expect_rc 0
    expect_in out "step promote: approved by 2 operators"
    [ -e w/promoted ] || fail "the step did not run after the second approval"
    expect_eq "$(tr '\n' ' ' <w/log)" "prepare promote " "what ran"
    expect_eq "$(jq -r .status $(rundir a "r1")/state.json)" done "the run's status"
    expect_eq "$(fe_jq a r1 approval-met '[.data.summary_hash, (.data.approved_by | join(","))] | @tsv')" \
        "$hash	$FE_ALICE,$FE_BOB" "approval-met"
    expect_eq "$(fe_count a r1 confirmation-given)" 2 "Alice's typed confirmations (run and resume)"

    # Origin's history holds the whole story, each commit by its operator.
    expect_eq "$(git -C origin.git rev-parse main)" "$(git -C a rev-parse HEAD)" "origin has Alice's commits"
    expect_eq "$(fe_origin_kinds r1)" \
        "approval-requested approval-refused approval-given approval-refused approval-met " "approvals on origin"
    expect_eq "$(git -C origin.git log --reverse --format='%an|%s' main | grep -E 'approval-(requested|given|met)' | tr '\n' ' ')" \
        "Alice|r1: promote approval-requested Bob|r1: promote approval-given Alice|r1: promote approval-met " \
        "origin's approval commits"
    expect_eq "$(fe_origin_journal r1 | jq -r 'select(.kind == "approval-given") | .data.operator')" "$FE_BOB" \
        "the approver on origin"
    fe_in a "$FE_ALICE" audit verify
    expect_rc 0
    fe_in b "$FE_BOB" audit verify
    expect_rc 0
    git -C b pull -q
    fe_in b "$FE_BOB" audit verify
    expect_rc 0
    expect_in out "verified 1 runs"

    # The report names both operators and shows the approvals.
    fe_in a "$FE_ALICE" audit show r1
    expect_rc 0
    expect_in out "| operators | Alice <alice@example.org>, Bob <bob@example.org> |"
    expect_in out "| promote | approval-requested | Alice <alice@example.org> | 2 approvals needed; counted: Alice <alice@example.org> (summary ${hash:0:12}) |"
    expect_in out "| promote | approval-given | Bob <bob@example.org> | from "
    expect_in out "| promote | approval-refused | Bob <bob@example.org> | the challenge was not typed (summary ${hash:0:12}) |"
    expect_in out "| promote | approval-met |  | approved by Alice <alice@example.org>, Bob <bob@example.org> (summary ${hash:0:12}) |"
}

t_fe_the_requester_cannot_approve_their_own_step() {
    fe_setup
    fe_paused_run fe r1
    hash=$(fe_jq a r1 approval-requested .data.summary_hash)
    # The same person, however the name and the address are spelled.
    fe_in a "ALICE <Alice@Example.ORG>" approve r1 promote --approve promote
    expect_rc 2
    expect_in err "ALICE <Alice@Example.ORG> approved step promote of run r1 already: another operator must approve it"
    expect_in err "nothing was approved"
    expect_eq "$(fe_jq a r1 approval-refused '[.data.operator, .data.summary_hash] | @tsv')" \
        "ALICE <Alice@Example.ORG>	$hash" "the refusal"
    expect_eq "$(fe_count a r1 approval-given)" 0 "approvals given"
    expect_in <(fe_origin_journal r1 | jq -r .kind) approval-refused
    # From another clone it is the same: refused, and asked nothing.
    fe_pty b "$FE_ALICE" main approve r1 promote
    expect_rc 2
    expect_not_in out "Type 'main' to proceed"
    expect_in out "approved step promote of run r1 already"
    expect_eq "$(fe_count b r1 approval-refused)" 2 "refusals"
    expect_eq "$(fe_count b r1 approval-given)" 0 "approvals given"
    # Her resume still waits: the refusals count for nothing.
    fe_in a "$FE_ALICE" resume r1 --approve promote
    expect_rc 3
    expect_in err "step promote waits for 1 more approval"
    fe_not_promoted "after self-approval"
    expect_eq "$(fe_count a r1 approval-met)" 0 "approval-met events"
    fe_in a "$FE_ALICE" audit verify
    expect_rc 0
}

t_fe_an_operator_outside_the_list_is_refused() {
    fe_setup
    fe_paused_run fe-from r1
    expect_eq "$(fe_jq a r1 approval-requested '.data.from | join(",")')" "alice@example.org,Bob@Example.org" \
        "who may approve, in the request"
    fe_clone c
    fe_in c "$FE_CAROL" approve r1 promote --approve promote
    expect_rc 2
    expect_in err "Carol <carol@example.org> may not approve step promote: only alice@example.org, Bob@Example.org may"
    expect_eq "$(fe_jq c r1 approval-refused .data.operator)" "$FE_CAROL" "who was refused"
    expect_eq "$(fe_count c r1 approval-given)" 0 "approvals given"
    fe_in a "$FE_ALICE" resume r1 --approve promote
    expect_rc 3
    expect_in err "from alice@example.org, Bob@Example.org"
    fe_not_promoted "on Carol's refused approval"
    # Bob is on the list (addresses compared without case): his counts.
    fe_in b "$FE_BOB" approve r1 promote --approve promote
    expect_rc 0
    fe_in a "$FE_ALICE" resume r1 --approve promote
    expect_rc 0
    [ -e w/promoted ] || fail "the step did not run with Bob's approval"
    expect_eq "$(fe_jq a r1 approval-met '.data.approved_by | join(",")')" "$FE_ALICE,$FE_BOB" "approved by"
}

t_fe_an_approval_counts_only_for_the_summary_it_saw() {
    fe_setup
    fe_paused_run fe r1
    first=$(fe_jq a r1 approval-requested .data.summary_hash)
    fe_in b "$FE_BOB" approve r1 promote --approve promote
    expect_rc 0
    # What the step would destroy changes after Bob saw it.
    echo v2 >w/note
    fe_in a "$FE_ALICE" resume r1 --approve promote
    expect_rc 3
    expect_in err "approvals not counted: Bob <bob@example.org>: approved another summary (it changed since)"
    expect_in err "step promote waits for 1 more approval"
    fe_not_promoted "on an approval of another summary"
    second=$(fe_jq a r1 approval-requested .data.summary_hash | tail -1)
    [ "$first" != "$second" ] || fail "the summary hash did not change with the summary"
    expect_eq "$(fe_jq a r1 approval-requested .data.summary | tail -1)" \
        "replace main with the copy (v2); writes since are lost" "the new request's summary"
    expect_eq "$(fe_jq a r1 approval-requested .data.not_counted | tail -1)" \
        "Bob <bob@example.org>: approved another summary (it changed since)" "not_counted in the request"
    # Bob sees the new summary and approves it; then it runs.
    fe_pty b "$FE_BOB" main approve r1 promote
    expect_rc 0
    expect_in out "replace main with the copy (v2); writes since are lost"
    expect_eq "$(fe_jq b r1 approval-given .data.summary_hash | tr '\n' ' ')" "$first $second " "Bob's approvals"
    fe_in a "$FE_ALICE" resume r1 --approve promote
    expect_rc 0
    [ -e w/promoted ] || fail "the step did not run once Bob approved the new summary"
    expect_eq "$(fe_jq a r1 approval-met .data.summary_hash)" "$second" "the summary approved"
    fe_in a "$FE_ALICE" audit verify
    expect_rc 0
}

t_fe_an_approval_older_than_valid_for_does_not_count() {
    fe_setup
    # A validity in seconds is accepted when the runbook loads.
    fe_in a "$FE_ALICE" list
    expect_rc 0
    expect_in out fe-stale
    fe_paused_run fe-stale r1
    expect_eq "$(fe_jq a r1 approval-requested .data.valid_for_seconds)" 2 "valid_for in the request"
    fe_in b "$FE_BOB" approve r1 promote --approve promote
    expect_rc 0
    given_at=$(fe_jq b r1 approval-given .time)
    sleep 3
    fe_in a "$FE_ALICE" resume r1 --approve promote
    expect_rc 3
    expect_in err "approvals not counted: Bob <bob@example.org>: approved at $given_at, and an approval is valid for 2"
    fe_not_promoted "on a stale approval"
    expect_eq "$(fe_count a r1 approval-met)" 0 "approval-met events"
    expect_eq "$(fe_count a r1 approval-requested)" 2 "requests"
}

# Bob approves while his clone cannot reach origin; Alice resumes in between
# and sees nothing; the approval arrives once Bob's clone pushes again.
fe_offline_approval() {
    fe_setup
    fe_paused_run fe r1
    git -C b pull -q # Bob's clone had the run before the network went
    mv origin.git moved.git
    fe_in b "$FE_BOB" approve r1 promote --approve promote
    expect_rc 0
    expect_in out "approved step promote of run r1 as Bob <bob@example.org>"
    expect_in err "The commits are safe in b; the next drctl command that records something"
    expect_eq "$(fe_count b r1 approval-given)" 1 "approvals in Bob's clone"
    expect_eq "$(git -C b status --porcelain)" "" "b is clean"
    mv moved.git origin.git
    expect_not_in <(fe_origin_journal r1 | jq -r .kind) approval-given
    fe_in a "$FE_ALICE" resume r1 --approve promote
    expect_rc 3
    expect_in err "step promote waits for 1 more approval"
    fe_not_promoted "before Alice's clone sees Bob's approval"
    expect_eq "$(fe_count a r1 approval-given)" 0 "approvals in Alice's clone"
}

t_fe_an_approval_made_offline_counts_once_pushed() {
    fe_offline_approval
    # A command that commits pushes what was left: a setting, here.
    fe_in b "$FE_BOB" config set contact "ops on-call"
    expect_rc 0
    expect_in <(fe_origin_journal r1 | jq -r .kind) approval-given
    fe_in a "$FE_ALICE" resume r1 --approve promote
    expect_rc 0
    [ -e w/promoted ] || fail "the step did not run once Bob's approval reached origin"
    expect_eq "$(fe_jq a r1 approval-met '.data.approved_by | join(",")')" "$FE_ALICE,$FE_BOB" "approved by"
}

# Fixed since: a run commit replayed onto a moved
# origin (audit_remote.c, replayed_tree) upserts the run's whole folder as
# the local commit has it. Two operators now write to one run's journal, so
# the replay drops the events the other pushed in between: Alice's resume
# (run-resumed ... approval-requested, run-paused) vanishes from origin's
# journal, and audit verify then fails "the journal is not append-only".
t_fe_a_replayed_approval_keeps_the_requesters_events() {
    fe_offline_approval
    alice_events=$(wc -l <"$(fe_journal a r1)")
    fe_in b "$FE_BOB" config set contact "ops on-call"
    expect_rc 0
    fe_origin_journal r1 >origin-journal
    expect_eq "$(jq -r 'select(.kind == "approval-requested") | .kind' origin-journal | wc -l)" 2 \
        "requests on origin (Alice's resume kept)"
    expect_eq "$(wc -l <origin-journal)" $((alice_events + 1)) "events on origin: Alice's and Bob's approval"
    git clone -q origin.git check
    fe_in check "$FE_ALICE" audit verify
    expect_rc 0
}

# Fixed since, the same replay with two approvers: Bob
# and Carol approve a step that needs three; Carol's commit, made offline,
# is replayed onto origin after Bob's and overwrites the journal with hers,
# so Bob's approval is lost and the step still waits for one approval.
t_fe_two_approvals_at_once_both_count() {
    fe_setup
    fe_paused_run fe-three r1
    fe_clone c # Carol's clone has the run, then loses the network
    mv origin.git moved.git
    fe_in c "$FE_CAROL" approve r1 promote --approve promote
    expect_rc 0
    mv moved.git origin.git
    fe_in b "$FE_BOB" approve r1 promote --approve promote
    expect_rc 0
    fe_in c "$FE_CAROL" config set contact "ops on-call"
    expect_rc 0
    expect_eq "$(fe_origin_journal r1 | jq -r 'select(.kind == "approval-given") | .data.operator' | sort | tr '\n' ,)" \
        "$FE_BOB,$FE_CAROL," "approvals on origin"
    fe_in a "$FE_ALICE" resume r1 --approve promote
    expect_rc 0
    [ -e w/promoted ] || fail "the step did not run with three approvals"
}

t_fe_bad_input_is_refused() {
    fe_setup
    fe_paused_run fe r1
    lines=$(wc -l <"$(fe_journal a r1)")
    git -C b pull -q
    fe_in b "$FE_BOB" approve nosuch promote
    expect_rc 2
    expect_in err "there is no run nosuch"
    fe_in b "$FE_BOB" approve ../r1 promote
    expect_rc 2
    expect_in err "'../r1' is not a run id"
    fe_in b "$FE_BOB" approve r1 nosuch
    expect_rc 2
    expect_in err "run r1 has no step 'nosuch'"
    fe_in b "$FE_BOB" approve r1 prepare --approve prepare
    expect_rc 2
    expect_in err "step prepare of run r1 is not waiting for approval"
    fe_in b "$FE_BOB" approve r1 promote -p dir=elsewhere
    expect_rc 2
    expect_in err "drctl approve takes no -p"
    fe_in b "$FE_BOB" approve r1 promote --approve prepare
    expect_rc 2
    expect_in err "--approve prepare: drctl approve r1 promote approves step promote only"
    fe_in b "$FE_BOB" approve r1
    expect_rc 2
    # None of these touched the run: nothing journaled, nothing pushed.
    expect_eq "$(wc -l <"$(fe_journal b r1)")" "$lines" "events in Bob's clone"
    expect_eq "$(fe_origin_journal r1 | wc -l)" "$lines" "events on origin"
    # A step that no longer waits: approved, run, done.
    fe_in b "$FE_BOB" approve r1 promote --approve promote
    expect_rc 0
    fe_in a "$FE_ALICE" resume r1 --approve promote
    expect_rc 0
    fe_in b "$FE_BOB" approve r1 promote --approve promote
    expect_rc 2
    expect_in err "step promote of run r1 is not waiting for approval (the run is done)"

    # Runbooks with approvers that make no sense do not load.
    count_msg="approvers must be a whole number from 1 to 10"
    i=0
    while IFS='|' read -r approvers message; do
        i=$((i + 1))
        fe_runbook bad "$approvers" "bad$i"
        set +e
        "$DRCTL" --runbooks "bad$i" list >out 2>err </dev/null
        rc=$?
        set -e
        expect_rc 2
        expect_in out "step 2 ('promote'): $message"
        set +e
        "$DRCTL" --runbooks "bad$i" plan bad -p dir="$PWD/w" >out 2>err </dev/null
        rc=$?
        set -e
        expect_rc 2
        expect_in err "bad$i/bad.lua:"
        expect_in err "$message"
    done <<EOF
0|$count_msg
11|$count_msg
2.5|$count_msg
"2"|$count_msg
{ count = "x" }|$count_msg
{ count = 0, from = { "bob@example.org" } }|$count_msg
{ count = 2, from = {} }|approvers.from is empty
{ count = 2, from = "bob@example.org" }|approvers.from must be a list of e-mail addresses
{ count = 2, from = { "" } }|approvers.from[1] must be an operator's e-mail address
{ count = 2, valid_for = "soon" }|'valid_for': 'soon' is not a valid duration
{ count = 2, who = 1 }|unknown field 'who' (fields: count, from, valid_for)
EOF
    # On a step that is not destructive.
    mkdir nd
    sed 's/{ name = "prepare", idempotent = true,/{ name = "prepare", idempotent = true, approvers = 2,/' rb/fe.lua >nd/fe.lua
    grep -q 'idempotent = true, approvers = 2' nd/fe.lua || fail "the test did not edit the runbook"
    set +e
    "$DRCTL" --runbooks nd list >out 2>err </dev/null
    rc=$?
    set -e
    expect_rc 2
    expect_in out "step 1 ('prepare'): approvers is only for destructive steps; add destructive = true"
}

t_fe_approve_without_a_terminal_is_one_approval_only() {
    fe_setup
    fe_paused_run fe r1
    expect_eq "$(fe_count a r1 confirmation-preapproved)" 1 "preapprovals"
    expect_eq "$(fe_jq a r1 approval-requested '.data.approved_by | join(",")')" "$FE_ALICE" "counted at the run"
    # --approve twice, or under another spelling of her name: still her one.
    fe_in a "$FE_ALICE" resume r1 --approve promote --approve promote
    expect_rc 3
    expect_in err "step promote waits for 1 more approval"
    fe_in a "alice <ALICE@example.org>" resume r1 --approve promote
    expect_rc 3
    expect_in err "step promote waits for 1 more approval"
    fe_not_promoted "on --approve alone"
    expect_eq "$(fe_count a r1 approval-met)" 0 "approval-met events"
    expect_eq "$(fe_jq a r1 approval-requested '.data.approved_by | length' | tr '\n' ' ')" "1 1 1 " \
        "approvals counted at each request"
    # Without a terminal and without --approve, she is not even asked.
    fe_in a "$FE_ALICE" resume r1
    expect_rc 3
    expect_in err "no terminal to ask on"
    expect_eq "$(fe_count a r1 approval-requested)" 3 "requests"
    fe_not_promoted "without any confirmation"
}

for t in t_fe_two_operators_approve_from_their_clones_on_terminals t_fe_the_requester_cannot_approve_their_own_step \
         t_fe_an_operator_outside_the_list_is_refused t_fe_an_approval_counts_only_for_the_summary_it_saw \
         t_fe_an_approval_older_than_valid_for_does_not_count t_fe_an_approval_made_offline_counts_once_pushed \
         t_fe_bad_input_is_refused t_fe_approve_without_a_terminal_is_one_approval_only \
         t_fe_a_replayed_approval_keeps_the_requesters_events t_fe_two_approvals_at_once_both_count; do
    run_test "$t"
done
