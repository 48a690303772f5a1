# neon-local under a small load with its faults on: the reduced version of
# make load (tests/load/run.sh): 50 clients, 2,000 requests, 4 branches made
# (real servers) and most deleted again, at a fixed seed. The load generator
# is built from tests/load/loadgen.c into the test's folder.

# Builds the load generator into ./loadgen.
load_build_loadgen() {
    cc -O2 -std=c11 -D_GNU_SOURCE $(pkg-config --cflags libcurl libcjson) -o loadgen \
        "$ROOT/tests/load/loadgen.c" $(pkg-config --libs libcurl libcjson) -lm || fail "loadgen does not build"
}

t_neon_local_under_load_keeps_every_branch_its_memory_and_a_clean_exit() {
    chmod 755 . # the branches' servers run as the postgres user, under this folder
    load_build_loadgen
    local sanitizer=
    case "$BIN_DIR" in *asan*) sanitizer=asan ;; *tsan*) sanitizer=tsan ;; esac
    set +e
    NEON_LOCAL=$BIN_DIR/neon-local LOADGEN=$PWD/loadgen LOAD_SANITIZER=$sanitizer TMPDIR=$PWD \
        LOAD_CLIENTS=50 LOAD_REQUESTS=2000 LOAD_CREATIONS=4 LOAD_THINK_MS=200 \
        LOAD_WARMUP=500 LOAD_WARMUP_CREATIONS=1 LOAD_SEED=7 \
        bash "$ROOT/tests/load/run.sh" >out 2>err
    rc=$?
    set -e
    cat out
    expect_rc 0
    expect_in out "load: 2000 requests answered of 2000 issued"
    expect_in out "timeout=0"
    expect_in out "load: passed (0 failed checks)"
    expect_in out "exit status on SIGTERM: 0"
    # The load made branches and deleted some: the checks had something to check.
    grep -qE 'branches created=[1-9][0-9]* deleted=[1-9]' out || fail "no branch was both made and deleted"
}

for t in t_neon_local_under_load_keeps_every_branch_its_memory_and_a_clean_exit; do
    run_test "$t"
done
