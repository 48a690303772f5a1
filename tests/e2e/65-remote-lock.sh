# The target lock across machines: with a remote, a run also locks its
# target on origin (refs/drctl/locks/...), so an operator on another clone
# of the same trail is refused, told who holds it; an expired lock is taken
# over and recorded; origin out of reach needs a typed go-ahead.

two_clones() {
    git init -q --bare -b main origin.git
    git init -q -b main a
    git -C a remote add origin "$PWD/origin.git"
    DRCTL_OPERATOR="Alice <alice@example.org>" "$DRCTL" --audit a config set contact "ops@example.org" >/dev/null 2>&1
    git clone -q origin.git b
    mkdir -p bdir
}

on() { # CLONE OPERATOR DIR args...
    local clone=$1 op=$2 dir=$3
    shift 3
    set +e
    DRCTL_OPERATOR="$op" setsid -w "$DRCTL" --runbooks "$TEST_RUNBOOKS" --audit "$clone" "$@" -p dir="$dir" \
        >out 2>err </dev/null
    rc=$?
    set -e
}

# Alice's run holds the target in the background, inside its copy step
# (held open while ./hold-copy exists); sets pid.
alice_holds() { # RUN_ID
    touch hold-copy
    DRCTL_OPERATOR="Alice <alice@example.org>" setsid "$DRCTL" --runbooks "$TEST_RUNBOOKS" --audit a \
        run hold -p dir="$PWD" --approve promote --run-id "$1" >bg.out 2>bg.err </dev/null &
    pid=$!
    wait_for copy.started
}

# lock.ttl set on a, and b up to date with it.
short_ttl() { # DURATION
    DRCTL_OPERATOR="Alice <alice@example.org>" "$DRCTL" --audit a config set lock.ttl "$1" >/dev/null 2>&1
    git -C b pull -q origin main
}

origin_locks() {
    git -C origin.git for-each-ref --format='%(refname)' refs/drctl/locks | wc -l
}

t_a_second_clone_is_refused_naming_the_first() {
    two_clones
    alice_holds first
    expect_eq "$(origin_locks)" 1 "locks on origin while the first run holds the target"
    holder=$(git -C origin.git log -1 --format=%B "$(git -C origin.git for-each-ref --format='%(refname)' refs/drctl/locks)")
    expect_eq "$(echo "$holder" | jq -r '[.run_id, .operator, .key] | @tsv')" \
        "first	Alice <alice@example.org>	branch/main" "the holder on origin"
    on b "Bob <bob@example.org>" "$PWD/bdir" run hold --approve promote --run-id second
    expect_rc 4
    expect_in err "the target 'branch/main' is locked on origin by run first of Alice <alice@example.org>"
    [ ! -e bdir/log ] || fail "the second run ran a step"
    rm -f hold-copy
    wait $pid
    expect_eq "$(origin_locks)" 0 "locks on origin once the first run ended"
    # free again: the second clone goes on
    on b "Bob <bob@example.org>" "$PWD/bdir" run hold --approve promote --run-id second
    expect_rc 0
    expect_eq "$(origin_locks)" 0 "locks left on origin"
    # another target is never blocked
    alice_holds third
    on b "Bob <bob@example.org>" "$PWD/bdir" run hold -p target=staging --approve promote --run-id fourth
    expect_rc 0
    rm -f hold-copy
    wait $pid
}

t_an_expired_lock_is_taken_over_and_recorded() {
    two_clones
    short_ttl 2s
    alice_holds dead
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    expect_eq "$(origin_locks)" 1 "the dead run's lock stays on origin"
    on b "Bob <bob@example.org>" "$PWD/bdir" run hold --approve promote --run-id soon
    expect_rc 4
    sleep 2.5
    on b "Bob <bob@example.org>" "$PWD/bdir" run hold --approve promote --run-id later
    expect_rc 0
    expect_in err "took over the target lock on origin, which had expired"
    expect_eq "$(jq -r 'select(.kind == "lock-takeover") | [.data.lock, .data.previous_holder.run_id] | @tsv' \
        $(rundir b "later")/journal.jsonl)" "target on origin	dead" "the takeover in the journal"
    "$DRCTL" --audit b audit verify >out 2>err || fail "verify: $(cat out err)"
}

# A step longer than lock.ttl keeps its lock: it is renewed while the
# holder lives, not only at transitions.
t_a_long_step_keeps_its_lock_past_the_ttl() {
    two_clones
    short_ttl 2s
    alice_holds long
    sleep 4.5 # more than twice the ttl, inside one step
    on b "Bob <bob@example.org>" "$PWD/bdir" run hold --approve promote --run-id meanwhile
    expect_rc 4
    expect_in err "is locked on origin by run long of Alice <alice@example.org>"
    rm -f hold-copy
    wait $pid
    expect_eq "$(origin_locks)" 0 "locks on origin once the long run ended"
}

t_origin_out_of_reach_needs_a_typed_go_ahead() {
    two_clones
    mv origin.git away.git
    on b "Bob <bob@example.org>" "$PWD/bdir" run hold --approve promote --run-id offline
    expect_rc 3
    expect_in err "step 'local-lock' needs a confirmation"
    expect_in err "cannot be reached"
    [ ! -e bdir/log ] || fail "a step ran without the go-ahead"
    expect_eq "$(jq -r 'select(.kind == "confirmation-missing") | .data.reason' $(rundir b "offline")/journal.jsonl)" \
        remote-unreachable
    set +e
    DRCTL_OPERATOR="Bob <bob@example.org>" setsid -w "$DRCTL" --runbooks "$TEST_RUNBOOKS" --audit b resume offline \
        --approve promote --approve local-lock >out 2>err </dev/null
    rc=$?
    set -e
    expect_rc 0
    expect_eq "$(jq -r 'select(.kind == "confirmation-preapproved") | .data.operator' $(rundir b "offline")/journal.jsonl | head -1)" \
        "Bob <bob@example.org>"
    # back online: the commits reach origin with the next command
    mv away.git origin.git
    on b "Bob <bob@example.org>" "$PWD/bdir" run hold --approve promote --run-id online
    expect_rc 0
    git -C origin.git log --format=%s main | grep -q "^offline: run done" || fail "the offline run never reached origin"
}

for t in t_a_second_clone_is_refused_naming_the_first t_an_expired_lock_is_taken_over_and_recorded \
         t_a_long_step_keeps_its_lock_past_the_ttl \
         t_origin_out_of_reach_needs_a_typed_go_ahead; do
    run_test "$t"
done
