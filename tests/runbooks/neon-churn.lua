-- 30 branch creations then 20 deletions in one project: with faults on, the
-- end state must still be exactly c21..c30 beside main.
local neon = require "neon"
local dr = require "dr"

return runbook {
  name = "neon-churn", version = "1.0.0",
  summary = "Test runbook: many branch creations and deletions",
  params = { project = { type = "string", required = true } },
  steps = {
    { name = "churn", run = function(ctx)
        local p = ctx.params.project
        local ids = {}
        for i = 1, 30 do
          ids[i] = neon.create_branch(p, { name = "c" .. i }).branch.id
        end
        for i = 1, 20 do
          neon.delete_branch(p, ids[i])
        end
        dr.log("30 created, 20 deleted")
        return { created = 30, deleted = 20 }
      end },
  },
}
