-- Lists (or downloads) one S3 URL and says what came back: the test's
-- fake S3 answers in the ways a hostile or broken service might.
local dump = require "dump"

return runbook {
  name = "s3-list", version = "1.0.0",
  summary = "Test runbook: one S3 listing or download against a given endpoint",
  params = { url = { type = "string", required = true }, op = { type = "string", default = "list" },
             work = { type = "path", default = "." } },
  steps = {
    { name = "ask", run = function(ctx)
        if ctx.params.op == "download" then
          dump.download(ctx.params.url, ctx.params.work .. "/object")
          return { downloaded = true }
        end
        local keys = {}
        for i, o in ipairs(dump.list_remote(ctx.params.url)) do keys[i] = o.key end
        return { count = #keys, keys = keys }
      end },
  },
}
