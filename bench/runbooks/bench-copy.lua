-- Benchmark: one of pg.copy between two servers, dump.pg_dump or
-- dump.pg_restore, as the param `what` says; the module's own elapsed time
-- comes back as an output.
local pg = require "pg"
local dump = require "dump"

return runbook {
  name = "bench-copy", version = "1.0.0",
  summary = "Benchmark: streaming copy, dump and restore",
  params = {
    what = { type = "enum", values = { "copy", "dump", "restore" }, required = true },
    src = { type = "string", required = true, secret = true },
    dst = { type = "string", required = true, secret = true },
    file = { type = "string", required = true },
    folder = { type = "path", required = true, doc = "a folder that holds file: the dump's files are confined to it" },
  },
  steps = {
    { name = "work", run = function(ctx)
        local p = ctx.params
        if p.what == "copy" then
          local r = pg.copy(pg.connect(p.src), pg.connect(p.dst), { from = "big", to = "big" })
          return { seconds = r.seconds, peak_rss_kb = r.peak_rss_kb }
        elseif p.what == "dump" then
          local dir, name = p.file:match("^(.*)/([^/]+)%.dump$")
          return { seconds = dump.pg_dump{ uri = p.src, dest = dir, name = name }.seconds }
        end
        return { seconds = dump.pg_restore{ uri = p.dst, source = p.file }.seconds }
      end },
  },
}
