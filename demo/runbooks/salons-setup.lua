-- The demo's setup: a Neon project (found by name, else created) with the
-- guide's schema and generated rows at a chosen scale.
local neon = require "neon"
local pg = require "pg"
local dr = require "dr"

return runbook {
  name = "salons-setup", version = "1.0.0",
  summary = "Demo setup: a project with the salons schema and generated data",
  params = {
    name = { type = "string", default = "salons", doc = "the project's name" },
    scale = { type = "int", default = 5, doc = "data size: 2,000 bookings per unit" },
    sql = { type = "string", default = "demo", doc = "the folder of schema.sql and generate.sql" },
  },
  steps = {
    { name = "project", idempotent = true, timeout = "10m",
      plan = function(ctx) return "find or create the project " .. ctx.params.name end,
      run = function(ctx)
        for _, p in ipairs(neon.list_projects()) do
          if p.name == ctx.params.name then return { id = p.id, created = false } end
        end
        return { id = neon.create_project({ name = ctx.params.name }).project.id, created = true }
      end },
    { name = "data", idempotent = true, timeout = "1h",
      plan = function(ctx) return "load the schema and generate data at scale " .. ctx.params.scale end,
      run = function(ctx)
        local id = ctx.outputs.project.id
        local uri = neon.connection_uri(id, { database_name = "neondb", role_name = "neondb_owner" })
        local c = pg.connect(uri)
        if #pg.user_tables(c) > 0 then
          dr.log("the project has tables already: nothing loaded")
          return { rows = pg.row_counts(c) }
        end
        for _, file in ipairs({ "schema.sql", "generate.sql" }) do
          local r = dr.exec({ "psql", uri, "-X", "-q", "-v", "scale=" .. ctx.params.scale,
                              "-f", ctx.params.sql .. "/" .. file })
          if r.code ~= 0 then dr.fail("psql -f " .. file .. ": " .. r.stderr) end
        end
        local rows = pg.row_counts(c)
        for t, n in pairs(rows) do dr.figure("rows of " .. t, n) end
        return { rows = rows }
      end },
  },
}
