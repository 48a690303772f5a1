# A full disk, from the outside: the test build (bin-hooks/, or
# $DRCTL_HOOKS_BIN_DIR) fails the Nth durable write of a command with ENOSPC,
# and that one and every later one, for each N the command makes; and a real
# small tmpfs filled up before a run. Each time drctl must exit non-zero
# naming the file and the full disk, and once there is room again the run
# must go on to its end (a resume, or a new run when the first never began)
# with `drctl audit verify` passing and its journal gapless.

HOOKS_BIN_DIR=${DRCTL_HOOKS_BIN_DIR:-$ROOT/bin-hooks}

# drctl of the test build, like dr.
drh() {
    set +e
    "$HOOKS_BIN_DIR/drctl" --runbooks "$TEST_RUNBOOKS" "$@" >out 2>err </dev/null
    rc=$?
    set -e
}

need_test_build() {
    [ -x "$HOOKS_BIN_DIR/drctl" ] || fail "no test build at $HOOKS_BIN_DIR: make hooks"
}

# After a failed run: resume it with room again (with the approval its
# message asks for, if any: a step whose start is durable and whose end is
# not may have run), or run it anew when it never wrote a journal line.
go_on_with_room() { # RUNBOOK-ARGS...
    local id step
    id=$(run_id)
    if [ -n "$id" ] && [ -s "$(rundir drctl-audit "$id")/journal.jsonl" ]; then
        drh resume "$id"
        step=$(grep -o -- '--approve [a-z-]*' err | head -1 | cut -d' ' -f2 || true)
        if [ "$rc" = 3 ] && [ -n "$step" ]; then
            drh resume "$id" --approve "$step"
            touch ../approved-"$N"
        fi
    else
        drh run "$@"
        id=$(run_id)
    fi
    [ "$rc" = 0 ] || fail "with room again (full disk at write $N), the run did not complete"
    expect_eq "$(jq -r .status "$(rundir drctl-audit "$id")/state.json")" done "run status (full disk at write $N)"
    expect_eq "$(jq -s '[.[].seq] == [range(1; length + 1)]' "$(rundir drctl-audit "$id")/journal.jsonl")" true \
        "gapless journal (full disk at write $N)"
    drh audit verify
    [ "$rc" = 0 ] || fail "audit verify after a full disk at write $N"
}

t_a_full_disk_at_each_durable_write_of_a_run_leaves_it_resumable() {
    need_test_build
    local args=(skip -p dir="$PWD" -p answer=skip) total
    mkdir count
    (cd count && DRCTL_TEST_IO_TRACE="$PWD/trace" drh run "${args[@]}" && expect_rc 0)
    total=$(wc -l < count/trace)
    [ "$total" -gt 20 ] || fail "a run makes $total durable writes"
    for N in $(seq 1 "$total"); do
        mkdir "n$N"
        cd "n$N"
        DRCTL_TEST_FAIL_IO=$N:ENOSPC drh run "${args[@]}"
        [ "$rc" != 0 ] || fail "full disk at write $N of $total: exit 0"
        expect_in err "No space left on device"
        grep -q "drctl-audit/[^ ]*:" err || fail "full disk at write $N: the error names no file"
        go_on_with_room "${args[@]}"
        cd ..
    done
    echo "$total durable writes, each failed once; $(ls | grep -c '^approved-' || true) resumed with --approve"
}

t_a_full_disk_at_each_write_of_a_config_change_changes_nothing_or_all() {
    need_test_build
    local total
    mkdir count
    (cd count && DRCTL_TEST_IO_TRACE="$PWD/trace" drh config set contact "on-call" && expect_rc 0)
    total=$(wc -l < count/trace)
    [ "$total" -ge 5 ] || fail "a config change makes $total durable writes"
    for N in $(seq 1 "$total"); do
        mkdir "n$N"
        cd "n$N"
        DRCTL_TEST_FAIL_IO=$N:ENOSPC drh config set contact "on-call"
        [ "$rc" != 0 ] || fail "full disk at write $N of $total: exit 0"
        expect_in err "No space left on device"
        expect_in err "config.json"
        # config.json is absent or whole (old or new), never torn.
        [ ! -e drctl-audit/config.json ] || jq -e . drctl-audit/config.json >/dev/null ||
            fail "config.json torn at write $N"
        drh config set contact "on-call"
        [ "$rc" = 0 ] || fail "with room again (full disk at write $N), config set failed"
        expect_eq "$(jq -r .contact drctl-audit/config.json)" on-call
        drh audit verify
        [ "$rc" = 0 ] || fail "audit verify after a full disk at write $N of a config change"
        cd ..
    done
}

# A real full file system: a 4 MiB tmpfs holding the audit trail, filled to
# the last byte before the run; the run fails, the files stay whole, and
# once the filler is gone the run goes on to its end.
t_a_run_on_a_really_full_tmpfs_fails_cleanly_and_completes_once_space_is_freed() {
    need_test_build
    [ "$(id -u)" = 0 ] || fail "mounting a tmpfs needs root"
    mkdir fs
    mount -t tmpfs -o size=4m drctl-full-disk fs || fail "cannot mount a tmpfs"
    trap 'umount -l "$TEST_DIR/fs" 2>/dev/null || true' EXIT
    local args=(--audit fs/drctl-audit run skip -p dir="$PWD" -p answer=skip) id
    # A first run makes the trail; then the disk fills up.
    drh "${args[@]}"
    expect_rc 0
    dd if=/dev/zero of=fs/filler bs=4k 2>/dev/null || true
    [ "$(stat -f -c %a fs)" = 0 ] || fail "the tmpfs is not full"
    drh "${args[@]}"
    [ "$rc" != 0 ] || fail "a run on a full disk exited 0"
    expect_in err "No space left on device"
    grep -q "fs/drctl-audit" err || fail "the error names no file of the trail"
    for f in fs/drctl-audit/runs/*/*/*/*/state.json fs/drctl-audit/runs/*/*/*/*/run.json; do
        [ -e "$f" ] || continue
        jq -e . "$f" >/dev/null || fail "$f is torn"
    done
    rm fs/filler
    id=$(for d in fs/drctl-audit/runs/*/*/*/*/; do
             [ "$(jq -r .status "$d/state.json" 2>/dev/null)" = done ] || basename "$d"
         done | head -1)
    if [ -n "$id" ] && [ -s "$(rundir fs/drctl-audit "$id")/journal.jsonl" ]; then
        drh --audit fs/drctl-audit resume "$id"
    else
        drh "${args[@]}"
    fi
    [ "$rc" = 0 ] || fail "with space freed, the run did not complete"
    drh --audit fs/drctl-audit audit verify
    [ "$rc" = 0 ] || fail "audit verify after the disk was full"
    umount fs
    trap - EXIT
}

for t in t_a_full_disk_at_each_durable_write_of_a_run_leaves_it_resumable \
         t_a_full_disk_at_each_write_of_a_config_change_changes_nothing_or_all \
         t_a_run_on_a_really_full_tmpfs_fails_cleanly_and_completes_once_space_is_freed; do
    run_test "$t"
done
