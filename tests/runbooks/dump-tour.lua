-- dump: pg_dump of a neon-local branch to a directory, checked, then
-- restored into a new project whose row counts must match.
local neon = require "neon"
local pg = require "pg"
local dump = require "dump"
local dr = require "dr"

local check = require "testing.check"

local uri_of = require "testing.uri"

return runbook {
  name = "dump-tour", version = "1.0.0",
  summary = "Test runbook: the dump module, checked",
  params = { project = { type = "string", required = true }, dest = { type = "path", required = true } },
  steps = {
    { name = "dump", run = function(ctx)
        local d = dump.pg_dump{ uri = uri_of(ctx.params.project), dest = ctx.params.dest, name = "salons" }
        local listed = dump.list(d.path)
        check(listed.tables == 2, "tables in the dump", listed.tables, 2)
        check(dump.sha256(d.path) == d.sha256, "sha256 read back", dump.sha256(d.path), d.sha256)
        local ok, err = pcall(dump.pg_dump, { uri = uri_of(ctx.params.project), dest = ctx.params.dest, name = "salons" })
        check(not ok and tostring(err):find("never overwritten"), "a second dump of the same name", tostring(err), "refused")
        local dir = dump.pg_dump{ uri = uri_of(ctx.params.project), dest = ctx.params.dest, name = "salons-dir",
                                  format = "directory", jobs = 2 }
        check(dump.list(dir.path).tables == 2, "tables in the directory dump", dump.list(dir.path).tables, 2)
        return { path = d.path, sha256 = d.sha256, bytes = d.bytes, version = d.pg_dump_version,
                 server = d.server_version, dir_sha256 = dir.sha256 }
      end },
    { name = "restore", run = function(ctx)
        local made = neon.create_project({ name = "restored" })
        local target = uri_of(made.project.id)
        local r = dump.pg_restore{ uri = target, source = ctx.outputs.dump.path, jobs = 2 }
        local a, b = pg.connect(uri_of(ctx.params.project)), pg.connect(target)
        local before, after = pg.row_counts(a), pg.row_counts(b)
        for t, n in pairs(before) do check(after[t] == n, "rows of " .. t .. " after the restore", after[t], n) end
        return { project = made.project.id, seconds = r.seconds, tables = #pg.user_tables(b) }
      end },
  },
}
