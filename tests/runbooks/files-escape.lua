-- Test runbook: one way out of the folders the run was given, tried in its
-- step (and in its plan). `dest` is the run's only path param; `outside`
-- is a folder it was not given (a plain string). `api` picks the module:
-- "files", or "dump" for the older names of the same functions. What a
-- function returned is the step's output, so an escape shows.
local function attack(ctx)
  local m = require(ctx.params.api)
  local dump = require "dump"
  local dest, outside = ctx.params.dest, ctx.params.outside
  local ways = {
    ["read-absolute"] = function() return m.read_text("/etc/passwd") end,
    ["read-dotdot"] = function() return m.read_text(dest .. "/../secret.txt") end,
    ["read-symlink"] = function() return m.read_text(dest .. "/etc/passwd") end,
    ["read-file-symlink"] = function() return m.read_text(dest .. "/pw") end,
    ["list-symlink"] = function() return #(m.list_files or m.list)(dest .. "/etc") end,
    ["sha256-absolute"] = function() return m.sha256("/etc/passwd") end,
    ["read-relative"] = function() return m.read_text("secret.txt") end,
    ["read-relative-dotdot"] = function() return m.read_text("../" .. ctx.params.cwd_name .. "/secret.txt") end,
    ["write-outside"] = function() return m.write_text(outside .. "/planted.txt", "planted") end,
    ["write-symlink"] = function() return m.write_text(dest .. "/out/planted.txt", "planted") end,
    ["delete-outside"] = function() return m.delete(outside) end,
    ["delete-root"] = function() return m.delete(dest) end,
    ["delete-parent"] = function() return m.delete(dest .. "/..") end,
    ["delete-holder"] = function() return m.delete(ctx.params.holder) end,
    ["pg-dump-elsewhere"] = function()
      return dump.pg_dump{ uri = "postgresql://nobody@127.0.0.1:9/none", dest = outside .. "/elsewhere", name = "x" }.path
    end,
    ["pg-restore-elsewhere"] = function()
      return dump.pg_restore{ uri = "postgresql://nobody@127.0.0.1:9/none", source = outside .. "/x.dump" }.seconds
    end,
    ["dump-list-elsewhere"] = function() return dump.list(outside .. "/x.dump").entries end,
  }
  local way = ways[ctx.params.attack]
  if not way then error("no attack " .. ctx.params.attack, 0) end
  return tostring((way()))
end

return runbook {
  name = "files-escape", version = "1.0.0",
  summary = "Test runbook: a way out of the run's folders",
  params = {
    attack = { type = "string", required = true },
    api = { type = "string", default = "files" },
    dest = { type = "path", required = true, doc = "the only folder the run is given" },
    outside = { type = "string", required = true, doc = "a folder it is not given" },
    holder = { type = "string", default = "", doc = "a folder that holds dest" },
    cwd_name = { type = "string", default = "", doc = "the working directory's name" },
  },
  steps = {
    { name = "escape", plan = attack, run = function(ctx) return { got = attack(ctx) } end },
  },
}
