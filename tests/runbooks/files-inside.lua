-- Test runbook: what a run may do inside its folders: write, read, list
-- and checksum in `dest` (a path param) and in its own run folder, whose
-- scratch file the next step still finds. `fail` fails the last step, so
-- that the run stops with its folder kept.
local files = require "files"
local dr = require "dr"
local check = require "testing.check"

return runbook {
  name = "files-inside", version = "1.0.0",
  summary = "Test runbook: file access inside the run's folders",
  params = {
    dest = { type = "path", required = true },
    fail = { type = "bool", default = false },
  },
  steps = {
    { name = "write", idempotent = true,
      plan = function(ctx)
        local folder = files.run_folder()
        local listed = #files.list(ctx.params.dest)
        local ok, e = pcall(files.write_text, ctx.params.dest .. "/from-plan.txt", "plan")
        return string.format("run folder %s; %d in dest; note %s; plan write: %s", folder, listed,
                             files.read_text(ctx.params.dest .. "/given.txt"), ok and "written" or tostring(e))
      end,
      run = function(ctx)
        local note = ctx.params.dest .. "/sub/note.txt"
        dr.exec({ "mkdir", "-p", ctx.params.dest .. "/sub" })
        files.write_text(note, "written inside dest")
        check(files.read_text(note) == "written inside dest", "the note read back", files.read_text(note), "as written")
        local folder = files.run_folder()
        files.write_text(folder .. "/scratch.txt", "scratch")
        local names = {}
        for _, f in ipairs(files.list(ctx.params.dest)) do names[#names + 1] = f.key end
        table.sort(names)
        return { folder = folder, listed = table.concat(names, ","), sha256 = files.sha256(note),
                 given = files.read_text(ctx.params.dest .. "/given.txt") }
      end },
    { name = "reuse", idempotent = true,
      run = function(ctx)
        local folder = files.run_folder()
        check(folder == ctx.outputs.write.folder, "the run folder", folder, ctx.outputs.write.folder)
        local scratch = files.read_text(folder .. "/scratch.txt")
        if ctx.params.fail then dr.fail("failing as asked, the run folder kept") end
        files.delete(folder .. "/scratch.txt")
        files.delete(ctx.params.dest .. "/sub")
        return { scratch = scratch }
      end },
  },
}
