# The audit trail with a remote: push, concurrent operators, resume elsewhere.

# A bare origin and two clones a/ and b/ of it, after a first run from a/.
setup_origin() {
    git init -q --bare -b main origin.git
    git init -q -b main a
    git -C a remote add origin "$PWD/origin.git"
    git -c init.defaultBranch=main clone -q origin.git b 2>/dev/null
}

in_clone() { # CLONE OPERATOR args...
    local clone=$1 op=$2
    shift 2
    set +e
    DRCTL_OPERATOR="$op" setsid -w "$DRCTL" --runbooks "$TEST_RUNBOOKS" --audit "$clone" "$@" >out 2>err </dev/null
    rc=$?
    set -e
}

t_each_commit_is_pushed_to_origin() {
    setup_origin
    mkdir w
    in_clone a "Alice <alice@example.org>" run hold -p dir="$PWD/w" --approve promote --run-id r1
    expect_rc 0
    expect_eq "$(git -C origin.git rev-parse main)" "$(git -C a rev-parse HEAD)" "origin's main"
    expect_eq "$(git -C origin.git rev-list --count main)" "$(git -C a rev-list --count HEAD)" "commits on origin"
}

t_two_operators_pushing_at_once_both_reach_origin() {
    setup_origin
    mkdir wa wb
    # b needs a first commit from origin to share history; a makes it.
    in_clone a "Alice <alice@example.org>" run hold -p dir="$PWD/wa" -p target=a0 --approve promote --run-id a0
    expect_rc 0
    git -C b pull -q
    (DRCTL_OPERATOR="Alice <alice@example.org>" setsid -w "$DRCTL" --runbooks "$TEST_RUNBOOKS" --audit a \
        run hold -p dir="$PWD/wa" -p target=ta --approve promote --run-id ra >a.out 2>a.err </dev/null; echo $? > a.rc) &
    (DRCTL_OPERATOR="Bob <bob@example.org>" setsid -w "$DRCTL" --runbooks "$TEST_RUNBOOKS" --audit b \
        run hold -p dir="$PWD/wb" -p target=tb --approve promote --run-id rb >b.out 2>b.err </dev/null; echo $? > b.rc) &
    wait
    expect_eq "$(cat a.rc)/$(cat b.rc)" 0/0 "exit codes"
    git clone -q origin.git check
    [ -f $(rundir check "ra")/report.md ] || fail "Alice's run is not on origin"
    [ -f $(rundir check "rb")/report.md ] || fail "Bob's run is not on origin"
    expect_eq "$(git -C check rev-list --merges --count HEAD)" 0 "merge commits"
    dr --audit check audit verify
    expect_rc 0
    expect_eq "$(git -C check log --format=%an | sort -u | tr '\n' ,)" "Alice,Bob," "authors on origin"
}

t_a_run_paused_on_one_clone_resumes_on_another() {
    setup_origin
    mkdir w
    in_clone a "Alice <alice@example.org>" run hold -p dir="$PWD/w" --run-id p1
    expect_rc 3
    [ ! -e $(rundir b "p1") ] || fail "b had the run before fetching"
    in_clone b "Bob <bob@example.org>" resume p1 --approve promote
    expect_rc 0
    expect_eq "$(jq -r .status $(rundir b "p1")/state.json)" done
    expect_eq "$(jq -r 'select(.kind == "run-resumed") | .data.operator' $(rundir b "p1")/journal.jsonl)" "Bob <bob@example.org>"
    expect_eq "$(jq -r 'select(.kind == "run-started") | .data.operator' $(rundir b "p1")/journal.jsonl)" "Alice <alice@example.org>"
    expect_eq "$(grep -c snapshot w/log)" 1 "snapshot ran once"
    expect_eq "$(git -C origin.git rev-parse main)" "$(git -C b rev-parse HEAD)" "origin has Bob's commits"
    expect_eq "$(git -C b status --porcelain)" "" "b is clean"
}

t_an_unreachable_remote_never_blocks_and_is_caught_up_later() {
    setup_origin
    mkdir w
    git -C a remote set-url origin "$PWD/nowhere.git"
    # the target cannot be locked on origin: going on with the local lock
    # alone is asked, then approved
    in_clone a "Alice <alice@example.org>" run hold -p dir="$PWD/w" --approve promote --run-id off
    expect_rc 3
    expect_in err "Approve it explicitly, once you agree: drctl resume off --approve local-lock"
    in_clone a "Alice <alice@example.org>" resume off --approve promote --approve local-lock
    expect_rc 0
    expect_in err "the next drctl command that records something"
    expect_eq "$(jq -r .status $(rundir a "off")/state.json)" done
    expect_eq "$(git -C a status --porcelain)" "" "a is clean"
    git -C a remote set-url origin "$PWD/origin.git"
    in_clone a "Alice <alice@example.org>" run hold -p dir="$PWD/w" -p target=t2 --approve promote --run-id on
    expect_rc 0
    expect_eq "$(git -C origin.git rev-parse main)" "$(git -C a rev-parse HEAD)" "origin caught up"
    git -C origin.git cat-file -e main:"$(runrel origin.git off)"/report.md || fail "the earlier run was not pushed"
}

t_a_setting_changed_offline_is_replayed_onto_a_moved_origin() {
    setup_origin
    mkdir w
    in_clone a "Alice <alice@example.org>" run hold -p dir="$PWD/w" --approve promote --run-id first
    expect_rc 0
    in_clone b "Bob <bob@example.org>" config set contact "support ticket, priority P1"
    expect_rc 0
    # Offline, Alice sets a threshold while Bob's commit moved origin ahead.
    git -C a remote set-url origin "$PWD/nowhere.git"
    in_clone a "Alice <alice@example.org>" config set check.export_max_age 9d
    expect_rc 0
    git -C a remote set-url origin "$PWD/origin.git"
    in_clone a "Alice <alice@example.org>" run hold -p dir="$PWD/w" -p target=t2 --approve promote --run-id second
    expect_rc 0
    expect_eq "$(git -C origin.git rev-parse main)" "$(git -C a rev-parse HEAD)" "origin caught up"
    expect_eq "$(git -C origin.git show main:config.json | jq -r '."check.export_max_age"')" 9d "Alice's setting, replayed"
    expect_eq "$(git -C origin.git show main:config.json | jq -r .contact)" "support ticket, priority P1" \
        "Bob's setting, kept (each key replayed, not the whole file)"
    in_clone a "Alice <alice@example.org>" audit verify
    expect_rc 0
    in_clone a "Alice <alice@example.org>" config
    expect_rc 0
    expect_in out "support ticket, priority P1"
    in_clone a "Alice <alice@example.org>" config set check.backup_max_age 25h
    expect_rc 0
    expect_eq "$(git -C a status --porcelain)" "" "a is clean"
}

for t in t_each_commit_is_pushed_to_origin t_two_operators_pushing_at_once_both_reach_origin \
         t_a_run_paused_on_one_clone_resumes_on_another t_an_unreachable_remote_never_blocks_and_is_caught_up_later \
         t_a_setting_changed_offline_is_replayed_onto_a_moved_origin; do
    run_test "$t"
done
