# The command line: help, plan, params, bad runbooks, status.

t_help_is_true_for_every_command() {
    for cmd in list plan run resume status abort; do
        dr "$cmd" --help
        expect_rc 0
        expect_in out "usage: drctl $cmd"
    done
    dr --help
    expect_rc 0
    expect_in out "exit codes"
    dr frobnicate
    expect_rc 2
    expect_in err "unknown command 'frobnicate'"
}

t_list_shows_name_version_summary_and_blob() {
    dr list
    expect_rc 0
    expect_in out "hold"
    expect_in out "1.0.0"
    expect_in out "Test runbook: steps that can be held open"
    blob=$(git hash-object "$TEST_RUNBOOKS/hold.lua" | cut -c1-12)
    expect_in out "$blob"
    dr list --json
    expect_eq "$(jq -r '.[] | select(.name == "hold") | .blob_id' out)" "$(git hash-object "$TEST_RUNBOOKS/hold.lua")"
}

t_list_reports_a_broken_runbook_and_exits_2() {
    mkdir rb
    cp "$TEST_RUNBOOKS/hold.lua" rb/
    printf 'return runbook { name = "broken", version = "1", summary = "s", steps = { { name = "a" } } }\n' > rb/broken.lua
    "$DRCTL" --runbooks rb list >out 2>err && rc=0 || rc=$?
    expect_rc 2
    expect_in out "hold"
    expect_in out "broken.lua:1:"
}

t_plan_json_has_the_documented_shape() {
    dr plan hold -p dir=/tmp/x --json
    expect_rc 0
    expect_eq "$(jq -r .runbook out)" hold
    expect_eq "$(jq -r .version out)" 1.0.0
    expect_eq "$(jq -r '.steps | length' out)" 4
    expect_eq "$(jq -r '.steps[0] | [.name, .destructive, .idempotent, .always] | @csv' out)" '"snapshot",false,true,false'
    expect_eq "$(jq -r '.steps[0].plan' out)" "create a snapshot of main"
    expect_eq "$(jq -r '.steps[2].destructive' out)" true
    expect_eq "$(jq -r '.steps[2].confirm.challenge' out)" main
    expect_eq "$(jq -r '.steps[3].always' out)" true
}

t_plan_changes_nothing() {
    dr plan hold -p dir="$PWD"
    expect_rc 0
    expect_in out "[DESTRUCTIVE: asks for a typed confirmation]"
    [ ! -e drctl-audit ] || fail "plan created the audit directory"
    [ ! -e log ] || fail "plan ran a step"
}

t_bad_params_exit_2_and_record_nothing() {
    dr run hold -p dri=x
    expect_rc 2
    expect_in err "unknown param 'dri'"
    dr run hold
    expect_rc 2
    expect_in err "param 'dir' is required"
    dr run flaky -p dir=x -p mode=sideways
    expect_rc 2
    expect_in err "param 'mode': 'sideways' is not valid: expected one of retry, timeout"
    dr run hold -p dir
    expect_rc 2
    expect_in err "-p key=value"
    [ ! -e drctl-audit ] || fail "a refused run left an audit directory"
}

t_bad_runbook_exits_2_with_file_and_line() {
    mkdir rb
    cat > rb/oops.lua <<'LUA'
return runbook {
  name = "oops", version = "1", summary = "s",
  steps = {
    { name = "promote", destructive = true,
      run = function() end },
  },
}
LUA
    set +e; "$DRCTL" --runbooks rb run oops >out 2>err; rc=$?; set -e
    expect_rc 2
    expect_in err "rb/oops.lua:5: step 1 ('promote'): a destructive step needs confirm"
    [ ! -e drctl-audit ] || fail "a bad runbook left an audit directory"
}

t_an_unknown_runbook_says_where_it_looked() {
    dr run nope
    expect_rc 2
    expect_in err "no runbook named 'nope'"
    expect_in err "$TEST_RUNBOOKS/nope.lua"
}

t_options_that_do_not_apply_are_refused() {
    dr status --approve promote
    expect_rc 2
    expect_in err "--approve does not apply to 'status'"
    dr run hold -p dir=. --approve nosuchstep
    expect_rc 2
    expect_in err "has no step named 'nosuchstep'"
    dr run hold --bogus
    expect_rc 2
    expect_in err "unknown option '--bogus'"
}

t_status_lists_runs_and_shows_steps() {
    dr run hold -p dir="$PWD" --approve promote --run-id first-run
    expect_rc 0
    dr status
    expect_rc 0
    expect_in out "first-run"
    expect_in out "hold@1.0.0"
    expect_in out "done"
    dr status first-run --json
    expect_rc 0
    expect_eq "$(jq -r .state.status out)" done
    expect_eq "$(jq -r '.state.steps[1].outputs.copied' out)" 3
    expect_eq "$(jq -r .run.operator out)" "Test Operator <test@example.org>"
    dr status no-such-run
    expect_rc 2
    expect_in err "there is no run no-such-run"
}

t_a_run_id_cannot_be_reused() {
    dr run hold -p dir="$PWD" --approve promote --run-id same
    expect_rc 0
    dr run hold -p dir="$PWD" --approve promote --run-id same
    expect_rc 2
    expect_in err "run same already exists"
    dr run hold -p dir="$PWD" --run-id "../escape"
    expect_rc 2
}

# Each refusal is checked in a folder of its own, which must stay empty:
# no audit repository, no neon-local folder, nothing.
expect_refused_and_nothing_made() { # dr|sc EXPECTED-ERROR drctl-args...
    local how=$1 want=$2
    shift 2
    mkdir fresh
    (cd fresh && "$how" "$@"; echo "$rc" > ../rc) || true
    rc=$(cat rc)
    mv fresh/out fresh/err .
    expect_rc 2
    expect_in err "$want"
    [ -z "$(ls -A fresh)" ] || fail "the refused 'drctl $*' left: $(ls -A fresh | tr '\n' ' ')"
    rm -rf fresh
}

t_a_refused_command_creates_no_audit_repository() {
    local bad_id="must be 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'"
    expect_refused_and_nothing_made dr "--run-id '../escape' $bad_id" run hold -p dir="$PWD" --run-id ../escape
    expect_refused_and_nothing_made dr "--run-id '.hidden' $bad_id" run hold -p dir="$PWD" --run-id .hidden
    # A runbook on Neon with --local: neon-local is not started either.
    expect_refused_and_nothing_made dr "--run-id 'a/b' $bad_id" --local run neon-get -p project=x --run-id a/b
    expect_refused_and_nothing_made sc "--run-id '../escape' $bad_id" --local drill accidental-deletion --run-id ../escape
    expect_refused_and_nothing_made dr "unknown param 'dri'" run hold -p dri=x
    expect_refused_and_nothing_made dr "no runbook named 'nope'" run nope
    expect_refused_and_nothing_made dr "unknown option '--bogus'" run hold --bogus
    expect_refused_and_nothing_made dr "has no step named 'nosuchstep'" run hold -p dir=. --approve nosuchstep
    expect_refused_and_nothing_made dr "'../escape' is not a run id" resume ../escape
    expect_refused_and_nothing_made dr "'../escape' is not a run id" abort ../escape
    expect_refused_and_nothing_made dr "there is no audit repository" resume no-such-run
    expect_refused_and_nothing_made dr "there is no run no-such-run" status no-such-run
}

t_an_unusable_audit_directory_is_bad_input() {
    echo "not a directory" > audit-file
    dr --audit audit-file run hold -p dir="$PWD" --approve promote
    expect_rc 2
    expect_in err "the audit directory audit-file cannot be used"
    expect_in err "--audit DIR"
    [ ! -e log ] || fail "a step ran"
}

for t in t_an_unusable_audit_directory_is_bad_input t_help_is_true_for_every_command t_list_shows_name_version_summary_and_blob \
         t_list_reports_a_broken_runbook_and_exits_2 t_plan_json_has_the_documented_shape \
         t_plan_changes_nothing t_bad_params_exit_2_and_record_nothing \
         t_bad_runbook_exits_2_with_file_and_line t_an_unknown_runbook_says_where_it_looked \
         t_options_that_do_not_apply_are_refused t_status_lists_runs_and_shows_steps \
         t_a_run_id_cannot_be_reused t_a_refused_command_creates_no_audit_repository; do
    run_test "$t"
done
