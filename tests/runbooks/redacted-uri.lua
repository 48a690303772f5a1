-- A connection string returned by one step (its password redacted in the
-- stored outputs) and used by the next: pg.connect must get the password
-- back from the target, or say that the string was redacted.
--   mode=search:  branch b's connection string, pg.connect(uri)
--   mode=project: the same, pg.connect(uri, { project = ... })
--   mode=unknown: a string for an endpoint no project has
local neon = require "neon"
local pg = require "pg"

return runbook {
  name = "redacted-uri", version = "1.0.0",
  summary = "Test runbook: pg.connect on a connection string from an earlier step's outputs",
  params = {
    project = { type = "string", required = true },
    mode = { type = "enum", values = { "search", "project", "unknown" }, required = true },
  },
  steps = {
    { name = "uri", run = function(ctx)
        local p = ctx.params.project
        if ctx.params.mode == "unknown" then
          return { uri = "postgresql://neondb_owner:not-a-real-one@127.0.0.1:1/neondb" }
        end
        local b = neon.find_branch(p, "b")
        return { uri = neon.connection_uri(p, { branch_id = b.id, database_name = "neondb", role_name = "neondb_owner" }) }
      end },
    { name = "connect", run = function(ctx)
        local uri = ctx.outputs.uri.uri
        local opts = ctx.params.mode == "project" and { project = ctx.params.project } or nil
        local c = pg.connect(uri, opts)
        return { which = c:query("SELECT which FROM t")[1].which, uri_seen = uri }
      end },
  },
}
