# Contract test with Neon's official TypeScript SDK (@neondatabase/api-client):
# the SDK drives every operation neon-local serves, errors included, and
# every answer is validated against the spec the SDK ships
# (tests/contract/sdk/contract.mjs). Any mismatch fails the test. The SDK and
# the validator come from tests/contract/install.sh (make test runs it).

SDK_CONTRACT=$ROOT/tests/contract/sdk

t_neons_sdk_finds_every_answer_as_the_spec_says() {
    # The branches' servers run as the postgres user: they must reach the
    # contract's data folder, made below this one.
    chmod 755 .
    set +e
    TMPDIR=$PWD DRCTL_BIN_DIR=$BIN_DIR bash "$SDK_CONTRACT/run.sh" > contract.out 2>&1
    rc=$?
    set -e
    local summary
    summary=$(grep '^sdk contract: ' contract.out | tail -1)
    if [ "$rc" -ne 0 ] || [ -z "$summary" ]; then
        grep -v '^ok ' contract.out | sed 's/^/    | /' >&2
        fail "the SDK contract test failed (exit $rc): ${summary:-it did not finish}"
    fi
    expect_eq "$(echo "$summary" | sed -E 's/.* ([0-9]+) mismatches$/\1/')" 0 "mismatches ($summary)"
    # A run cut short, or an operation neon-local serves that it did not
    # drive, counts as a mismatch in contract.mjs itself.
}

if [ -f "$SDK_CONTRACT/node_modules/@neondatabase/api-client/package.json" ]; then
    run_test t_neons_sdk_finds_every_answer_as_the_spec_says
else
    echo "FAIL t_neons_sdk_finds_every_answer_as_the_spec_says: the SDK is not installed (bash tests/contract/install.sh)"
    TESTS_FAILED=$((TESTS_FAILED + 1))
    FAILED_NAMES+=(t_neons_sdk_finds_every_answer_as_the_spec_says)
fi
