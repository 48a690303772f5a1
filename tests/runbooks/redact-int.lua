-- A secret that is not a string: an int, logged, shown as a figure,
-- returned as a number and inside text, and named in the error of a step
-- that fails until DIR/go exists (so the run is resumed with it again).
local dr = require "dr"

return runbook {
  name = "redact-int", version = "1.0.0",
  summary = "Test runbook: a secret int param",
  params = {
    dir = { type = "string", required = true },
    pin = { type = "int", secret = true, required = true },
  },
  steps = {
    { name = "use", run = function(ctx)
        dr.log("pin is", ctx.params.pin)
        dr.figure("pin", ctx.params.pin)
        return { pin = ctx.params.pin, text = "pin " .. ctx.params.pin, list = { ctx.params.pin } }
      end },
    { name = "check", idempotent = true, run = function(ctx)
        if dr.exec({ "test", "-e", ctx.params.dir .. "/go" }).code ~= 0 then
          dr.fail("pin " .. ctx.params.pin .. " was refused")
        end
        return { again = ctx.params.pin }
      end },
  },
}
