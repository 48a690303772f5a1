-- Reads one project (in its plan too); with mode=post its plan tries to
-- create one, which plan mode must refuse.
local neon = require "neon"

return runbook {
  name = "neon-get", version = "1.0.0",
  summary = "Test runbook: read a project through the neon module",
  params = {
    project = { type = "string", required = true },
    mode = { type = "enum", values = { "get", "post" }, default = "get" },
  },
  steps = {
    { name = "read", idempotent = true,
      plan = function(ctx)
        if ctx.params.mode == "post" then
          neon.request("POST", "/projects", { project = { name = "from-a-plan" } })
        end
        return "read project " .. neon.get_project(ctx.params.project).name
      end,
      run = function(ctx) return { name = neon.get_project(ctx.params.project).name } end },
  },
}
