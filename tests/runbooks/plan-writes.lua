-- Test runbook: plan functions that try to write, each in a way that gets
-- past a session that is read-only by default only. Every statement is
-- tried under pcall, as a hostile author would, and what was refused is
-- the plan's text; the test then looks at the database itself.
local neon = require "neon"
local pg = require "pg"

local function connect(ctx)
  local p = ctx.params.project
  return pg.connect(neon.connection_uri(p, { branch_id = neon.default_branch(p).id, database_name = "neondb",
                                             role_name = "neondb_owner" }))
end

local function message_of(e)
  return type(e) == "table" and tostring(e.message) or tostring(e)
end

-- Runs each statement (a string, or a function of the connection), goes
-- on after errors; returns "name: error | error ..." for the plan.
local function try(name, c, statements)
  local out = {}
  for _, s in ipairs(statements) do
    local ok, e = pcall(function()
      if type(s) == "function" then return s(c) end
      return c:query(s)
    end)
    out[#out + 1] = ok and "ran" or message_of(e)
  end
  return name .. ": " .. table.concat(out, " | ")
end

local kept -- a connection one step leaves behind for the next

local function attack(name, statements)
  return { name = name, run = function() end,
           plan = function(ctx) return try(name, connect(ctx), statements) end }
end

return runbook {
  name = "plan-writes", version = "1.0.0",
  summary = "Test runbook: plan functions that try to write",
  params = { project = { type = "string", required = true } },
  steps = {
    attack("set-default", { "SET default_transaction_read_only = off", "CREATE TABLE pw_set_default ()" }),
    attack("session-characteristics", { "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
                                        "CREATE TABLE pw_characteristics ()" }),
    attack("start-transaction", { "START TRANSACTION READ WRITE", "CREATE TABLE pw_start ()", "COMMIT" }),
    attack("one-string", { "COMMIT; BEGIN READ WRITE; CREATE TABLE pw_one_string (); COMMIT" }),
    attack("select-first-one-string", { "SELECT 1; COMMIT; BEGIN READ WRITE; CREATE TABLE pw_select_first (); COMMIT" }),
    attack("set-config", { "SELECT set_config('transaction_read_only', 'off', false)",
                           "SELECT set_config('default_transaction_read_only', 'off', false)",
                           "CREATE TABLE pw_set_config ()" }),
    -- Both pass the first-word filter: PostgreSQL itself must refuse the write.
    attack("with-set-config", { "WITH s AS (SELECT set_config('default_transaction_read_only', 'off', false) AS v) SELECT v FROM s",
                                "WITH d AS (INSERT INTO victim VALUES (7) RETURNING 1) SELECT count(*) FROM d",
                                "EXPLAIN ANALYZE INSERT INTO victim VALUES (7)",
                                "SELECT insert_victim(7)",
                                "SELECT sneaky_read_write(7)" }),
    attack("savepoint", { "SAVEPOINT a", "ROLLBACK TO a", "SET TRANSACTION READ WRITE",
                          "INSERT INTO victim VALUES (8)", "RELEASE a" }),
    attack("prepare-transaction", { "BEGIN", "INSERT INTO victim VALUES (9)", "PREPARE TRANSACTION 'pw'" }),
    attack("do-block", { "DO $$BEGIN SET default_transaction_read_only = off; END$$",
                         "DO $$BEGIN CREATE TABLE pw_do (); END$$", "CREATE TABLE pw_after_do ()" }),
    attack("procedure-commit", { "CALL commit_and_write(11)" }),
    attack("copy", { "COPY victim FROM STDIN", "COPY victim TO STDOUT", "COPY (SELECT 1) TO STDOUT",
                     "SELECT count(*) AS n FROM victim" }),
    attack("exec-and-tx", {
      function(c) return c:exec("INSERT INTO victim VALUES (12)") end,
      function(c) return c:exec("SELECT 1") end,
      function(c) return c:tx(function() c:query("INSERT INTO victim VALUES (13)") end) end,
    }),
    { name = "leave-a-session", run = function() end,
      plan = function(ctx)
        kept = connect(ctx)
        return try("leave-a-session", kept, { "SELECT set_config('default_transaction_read_only', 'off', false)",
                                              "SET default_transaction_read_only = off" })
      end },
    { name = "use-the-session", run = function() end,
      plan = function() return try("use-the-session", kept, { "CREATE TABLE pw_kept ()",
                                                              "INSERT INTO victim VALUES (14)",
                                                              "WITH d AS (INSERT INTO victim VALUES (15) RETURNING 1) SELECT count(*) FROM d" }) end },
  },
}
