# The team's four-eyes policy (config.json's approvals): rules raise what a
# runbook asks, by runbook, step, project and branch, never lower it.

policy_runbook() {
    mkdir -p rb
    cat >rb/wipe.lua <<'LUA'
local dr = require "dr"
return runbook {
  name = "wipe", version = "1", summary = "a destructive step on project/branch",
  params = { project = { type = "string", default = "P" }, branch = { type = "string", default = "main" },
             dir = { type = "string", required = true } },
  steps = {
    { name = "apply", destructive = true,
      confirm = function(ctx) return { summary = "wipe " .. ctx.params.branch, challenge = "wipe" } end,
      run = function(ctx) dr.exec({ "touch", ctx.params.dir .. "/wiped-" .. ctx.params.branch }); return {} end },
  },
}
LUA
}

as() { # OPERATOR args...
    local op=$1
    shift
    set +e
    DRCTL_OPERATOR="$op" setsid -w "$DRCTL" --runbooks rb "$@" >out 2>err </dev/null
    rc=$?
    set -e
}

t_a_rule_raises_the_approvals_of_the_steps_it_matches() {
    policy_runbook
    as "Alice <alice@example.org>" config set approvals "project=P branch=main count=2 from=alice@example.org,bob@example.org"
    expect_rc 0
    as "Alice <alice@example.org>" plan wipe -p dir="$PWD"
    expect_in out "[needs 2 approvers: drctl approve]"
    as "Alice <alice@example.org>" plan wipe -p dir="$PWD" -p branch=dev --json
    expect_eq "$(jq -r '.steps[0].approvers' out)" null "approvers off the rule's branch"
    # off the rule: one confirmation is enough
    as "Alice <alice@example.org>" run wipe -p dir="$PWD" -p branch=dev --approve apply --run-id dev1
    expect_rc 0
    [ -e wiped-dev ] || fail "the step did not run off the rule"
    # on it: paused, and only the rule's list may approve
    as "Alice <alice@example.org>" run wipe -p dir="$PWD" --approve apply --run-id main1
    expect_rc 3
    expect_in err "waits for 1 more approval, from alice@example.org, bob@example.org"
    [ ! -e wiped-main ] || fail "the step ran with one approval"
    as "Carol <carol@example.org>" approve main1 apply --approve apply
    expect_rc 2
    expect_in err "only alice@example.org, bob@example.org may"
    as "Bob <bob@example.org>" approve main1 apply --approve apply
    expect_rc 0
    as "Alice <alice@example.org>" resume main1 --approve apply
    expect_rc 0
    [ -e wiped-main ] || fail "the step did not run once approved"
    dr audit verify
    expect_rc 0
}

t_a_bad_rule_is_refused_and_changes_nothing() {
    policy_runbook
    as "Alice <alice@example.org>" config set approvals "project=P count=many"
    expect_rc 2
    expect_in err "'count=many' is not a count from 1 to 10"
    as "Alice <alice@example.org>" config set approvals "colour=red count=2"
    expect_rc 2
    expect_in err "'colour=red' is not one of count=, from=, valid_for=, runbook=, step=, project=, branch="
    as "Alice <alice@example.org>" config set approvals "project=P"
    expect_rc 2
    expect_in err "has no count=N"
    [ ! -e drctl-audit/config.json ] || fail "a refused rule was written"
    # one edited by hand: no destructive run starts on it, and nothing is made
    as "Alice <alice@example.org>" config set contact "ops@example.org"
    jq '.approvals = ["count=2", "count=zero"]' drctl-audit/config.json >c.json && mv c.json drctl-audit/config.json
    line=$(grep -n '"count=zero"' drctl-audit/config.json | cut -d: -f1)
    as "Alice <alice@example.org>" run wipe -p dir="$PWD" --approve apply --run-id bad
    expect_rc 2
    expect_in err "config.json:$line: the approvals rule 'count=zero' is not valid: 'count=zero' is not a count from 1 to 10"
    expect_in err "drctl config unset approvals 'count=zero'"
    [ ! -e $(rundir drctl-audit "bad") ] || fail "a run was made on a policy that does not parse"
    [ ! -e wiped-main ] || fail "the step ran under a policy that does not parse"
    # a run with nothing destructive is not held up by it
    cat >rb/look.lua <<'LUA'
return runbook { name = "look", version = "1", summary = "reads only", steps = { { name = "read", run = function() return {} end } } }
LUA
    as "Alice <alice@example.org>" run look --run-id look1
    expect_rc 0
}

for t in t_a_rule_raises_the_approvals_of_the_steps_it_matches t_a_bad_rule_is_refused_and_changes_nothing; do
    run_test "$t"
done
