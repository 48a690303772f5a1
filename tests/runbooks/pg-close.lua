-- A connection declared `local c <close>` is closed when its scope ends,
-- normally or by an error: its session is gone from the server, and the
-- handle says it is closed.
local neon = require "neon"
local pg = require "pg"
local dr = require "dr"

local check = require "testing.check"

local function connect(ctx)
  local p = ctx.params.project
  local b = neon.find_branch(p, "main")
  local uri = neon.connection_uri(p, { branch_id = b.id, database_name = "neondb", role_name = "neondb_owner" })
  return pg.connect(uri)
end

-- Whether the server still has a session of that backend. A closed
-- session leaves pg_stat_activity once its backend has exited: asked
-- again until then, at most 100 times.
local function session_left(observer, pid)
  for _ = 1, 100 do
    if observer:query("SELECT count(*) AS n FROM pg_stat_activity WHERE pid = $1", pid)[1].n == 0 then
      return false
    end
    dr.sleep(0.05)
  end
  return true
end

local function check_closed(observer, c, pid, how)
  local ok, err = pcall(c.query, c, "SELECT 1")
  check(not ok and tostring(err):find("closed"), how .. ": a query on the handle", tostring(err), "closed")
  check(tostring(c):find("(closed)", 1, true), how .. ": the handle", tostring(c), "(closed)")
  check(not session_left(observer, pid), how .. ": the server's session of backend " .. pid, "still there", "gone")
  c:close() -- closing again does nothing
end

return runbook {
  name = "pg-close", version = "1.0.0",
  summary = "Test runbook: pg connections are to-be-closed values",
  params = { project = { type = "string", required = true } },
  steps = {
    { name = "close", run = function(ctx)
        local observer = connect(ctx)
        local held, pid
        do
          local c <close> = connect(ctx)
          held = c
          pid = c:query("SELECT pg_backend_pid() AS p")[1].p
        end
        check_closed(observer, held, pid, "at the end of its block")
        local raised, raised_pid
        local ok, err = pcall(function()
          local c <close> = connect(ctx)
          raised = c
          raised_pid = c:query("SELECT pg_backend_pid() AS p")[1].p
          error("boom")
        end)
        check(not ok and tostring(err):find("boom"), "the error inside the block", tostring(err), "boom")
        check_closed(observer, raised, raised_pid, "after an error in its block")
        return { pids = pid .. "," .. raised_pid }
      end },
  },
}
