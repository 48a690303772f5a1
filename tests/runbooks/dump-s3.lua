-- dump to S3 (s3rver in the tests): pg_dump uploaded, listed, downloaded,
-- checked, restored into a new project with the same row counts.
local neon = require "neon"
local pg = require "pg"
local dump = require "dump"
local check = require "testing.check"

local uri_of = require "testing.uri"

return runbook {
  name = "dump-s3", version = "1.0.0",
  summary = "Test runbook: the dump module with an S3 destination",
  params = { project = { type = "string", required = true }, dest = { type = "path", required = true },
             work = { type = "path", required = true } },
  steps = {
    { name = "export", run = function(ctx)
        local d = dump.pg_dump{ uri = uri_of(ctx.params.project), dest = ctx.params.dest, name = "weekly" }
        check(d.path == ctx.params.dest .. "/weekly.dump", "dump url", d.path, ctx.params.dest .. "/weekly.dump")
        local again, err = pcall(dump.pg_dump, { uri = uri_of(ctx.params.project), dest = ctx.params.dest, name = "weekly" })
        check(not again and tostring(err):find("never overwritten"), "a second dump of the same name", tostring(err),
              "refused before dumping")
        local listed = dump.list_remote(ctx.params.dest .. "/")
        check(#listed == 1 and listed[1].url == d.path and listed[1].size == d.bytes, "listed", #listed, 1)
        return { url = d.path, sha256 = d.sha256, bytes = d.bytes }
      end },
    { name = "restore", run = function(ctx)
        local local_copy = ctx.params.work .. "/weekly.dump"
        dump.download(ctx.outputs.export.url, local_copy)
        check(dump.sha256(local_copy) == ctx.outputs.export.sha256, "sha256 after the round trip",
              dump.sha256(local_copy), ctx.outputs.export.sha256)
        local made = neon.create_project({ name = "from-s3" })
        dump.pg_restore{ uri = uri_of(made.project.id), source = local_copy }
        local before = pg.row_counts(pg.connect(uri_of(ctx.params.project)))
        local after = pg.row_counts(pg.connect(uri_of(made.project.id)))
        for t, n in pairs(before) do check(after[t] == n, "rows of " .. t, after[t], n) end
        dump.delete(ctx.outputs.export.url)
        check(#dump.list_remote(ctx.params.dest .. "/") == 0, "deleted from S3", "still there", "gone")
        return { project = made.project.id }
      end },
  },
}
