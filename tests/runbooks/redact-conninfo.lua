-- A connection string in free text: in a param that is not secret, in a
-- log line, in an output, and in the error that fails the step, as a
-- driver's or a runbook's message would carry it.
local dr = require "dr"

return runbook {
  name = "redact-conninfo", version = "1.0.0",
  summary = "Test runbook: a connection string inside messages",
  params = {
    dsn = { type = "string", required = true },
  },
  steps = {
    { name = "connect", run = function(ctx)
        dr.log("connecting to", ctx.params.dsn)
        return { dsn = ctx.params.dsn }
      end },
    { name = "fail", run = function(ctx)
        error("could not connect with " .. ctx.params.dsn .. ": timeout expired", 0)
      end },
  },
}
