# Secrets never reach the terminal, the files or the git history.

t_secrets_are_absent_from_every_file_and_the_whole_history() {
    git init -q --bare -b main origin.git
    git init -q -b main audit
    git -C audit remote add origin "$PWD/origin.git"
    mkdir rb
    cat > rb/leaky.lua <<'LUA'
local dr = require "dr"
return runbook {
  name = "leaky", version = "1", summary = "tries hard to leak",
  params = {
    token = { type = "string", secret = true, required = true },
    note = { type = "string", default = "" },
  },
  steps = {
    { name = "use", run = function(ctx)
        dr.log("token", ctx.params.token, "note", ctx.params.note)
        dr.figure("connection", "postgresql://owner:Pw-In-Uri-3141@ep-x.example/db")
        return { token = ctx.params.token, note = ctx.params.note,
                 uri = "postgres://owner:Pw-In-Uri-3141@h/db", dsn = "host=h password=Kw-Pass-2718 dbname=d" }
      end },
    { name = "gate", destructive = true,
      confirm = function(ctx) return { summary = "uses " .. ctx.params.token, challenge = "go" } end,
      run = function(ctx) dr.fail("failing with " .. ctx.params.token .. " and " .. ctx.params.note) end },
  },
}
LUA
    export NEON_API_KEY="napi_Env-Key-1618"
    export DRCTL_PARAM_TOKEN="Param-Secret-0577"
    set +e
    "$DRCTL" --runbooks rb --audit audit -v run leaky -p note="$NEON_API_KEY" --approve gate --run-id s1 \
        >out 2>err </dev/null
    rc=$?
    "$DRCTL" --runbooks rb --audit audit status s1 --json >>out 2>>err
    "$DRCTL" --runbooks rb --audit audit audit show s1 >>out 2>>err
    "$DRCTL" --runbooks rb --audit audit plan leaky >>out 2>>err
    set -e
    expect_rc 1
    expect_in err "failing with <redacted> and <redacted>"
    git -C audit log -p --all > history.txt
    git -C origin.git log -p --all >> history.txt
    [ -s history.txt ] || fail "no history to search"
    for secret in Env-Key-1618 Param-Secret-0577 Pw-In-Uri-3141 Kw-Pass-2718; do
        ! grep -rq -- "$secret" out err audit origin.git history.txt || fail "$secret leaked"
    done
    expect_in $(rundir audit "s1")/report.md "postgresql://owner:<redacted>@ep-x.example/db"
}

run_test t_secrets_are_absent_from_every_file_and_the_whole_history
