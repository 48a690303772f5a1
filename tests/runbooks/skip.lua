-- A runbook for the confirm function's { skip = "why" }: a destructive step
-- with nothing to do is not run and asks nothing; an empty answer still
-- fails the step.
local dr = require "dr"

return runbook {
  name = "skip", version = "1.0.0",
  summary = "Test runbook: a destructive step that may have nothing to do",
  params = {
    dir = { type = "string", required = true, doc = "the test's directory" },
    answer = { type = "enum", values = { "skip", "confirm", "empty" }, default = "confirm" },
  },
  steps = {
    { name = "look", idempotent = true, run = function(ctx) return { answer = ctx.params.answer } end },
    { name = "destroy", destructive = true,
      confirm = function(ctx)
        local answer = ctx.outputs.look.answer
        if answer == "skip" then return { skip = "nothing to destroy" } end
        if answer == "empty" then return {} end
        return { summary = "destroy the copy", challenge = "copy" }
      end,
      run = function(ctx)
        dr.exec({ "touch", ctx.params.dir .. "/destroyed" })
        return { destroyed = true }
      end },
  },
}
