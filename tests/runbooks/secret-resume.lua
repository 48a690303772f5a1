-- A secret param that a resumed run needs again: the second step fails
-- until a file exists, so the run is resumed, and the secret (never
-- stored) must be given again.
local dr = require "dr"

return runbook {
  name = "secret-resume", version = "1.0.0",
  summary = "Test runbook: a secret param given again on resume",
  params = {
    dir = { type = "string", required = true },
    api_token = { type = "string", secret = true, required = true },
  },
  steps = {
    { name = "first", run = function() return { done = true } end },
    { name = "use", idempotent = true, run = function(ctx)
        if dr.exec({ "test", "-e", ctx.params.dir .. "/go" }).code ~= 0 then dr.fail("not yet") end
        if ctx.params.api_token:sub(1, 4) ~= "tok-" then dr.fail("not the token given") end
        return { token_length = #ctx.params.api_token }
      end },
  },
}
