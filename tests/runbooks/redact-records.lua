-- Secrets that look like the run's own words (an event kind, a step name,
-- one letter) must not change what the run records. The first step is not
-- idempotent (a re-run of it would ask first); the second fails until
-- DIR/go exists, so the run is resumed.
local dr = require "dr"

return runbook {
  name = "redact-records", version = "1.0.0",
  summary = "Test runbook: secrets equal to the run's own vocabulary",
  params = {
    dir = { type = "string", required = true },
    secret = { type = "string", secret = true },
  },
  steps = {
    { name = "test-x", run = function(ctx)
        dr.log("test-x uses its secret")
        return { echo = ctx.params.secret or "", state = "done" }
      end },
    { name = "verify-data", idempotent = true, run = function(ctx)
        if dr.exec({ "test", "-e", ctx.params.dir .. "/go" }).code ~= 0 then dr.fail("verify-data: not yet") end
        return { ok = true }
      end },
  },
}
