-- A runbook for crash, lock and confirmation tests. Each step appends its
-- name to LOG (so tests count how often it ran), touches DIR/<step>.started,
-- then waits while DIR/hold-<step> exists, so a test can hold any step open
-- and kill the process inside it.
local dr = require "dr"

local function enter(ctx, name)
  local dir = ctx.params.dir
  dr.exec({ "sh", "-c", 'echo "$1" >> "$2/log"; touch "$2/$1.started"', "sh", name, dir })
  dr.exec({ "sh", "-c", 'while [ -e "$1/hold-$2" ]; do sleep 0.05; done', "sh", dir, name })
end

return runbook {
  name = "hold", version = "1.0.0",
  summary = "Test runbook: steps that can be held open",
  params = {
    dir = { type = "string", required = true, doc = "the test's directory" },
    target = { type = "string", default = "main" },
  },
  lock = function(ctx) return "branch/" .. ctx.params.target end,
  steps = {
    { name = "snapshot", idempotent = true,
      plan = function(ctx) return "create a snapshot of " .. ctx.params.target end,
      run = function(ctx)
        enter(ctx, "snapshot")
        return { token = string.format("%d-%d", os.time(), math.random(1, 1 << 30)) }
      end },
    { name = "copy",
      run = function(ctx)
        enter(ctx, "copy")
        return { copied = 3, from = ctx.outputs.snapshot.token }
      end },
    { name = "promote", destructive = true,
      confirm = function(ctx)
        return { summary = "make the copy the new " .. ctx.params.target .. "; writes after the snapshot are lost",
                 challenge = ctx.params.target }
      end,
      run = function(ctx)
        enter(ctx, "promote")
        return { promoted = ctx.outputs.copy.from }
      end },
    { name = "cleanup", always = true, idempotent = true,
      run = function(ctx) enter(ctx, "cleanup") end },
  },
}
