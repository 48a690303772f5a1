-- Test runbook: a plan that only reads, in every form a plan may use.
local neon = require "neon"
local pg = require "pg"

local check = require "testing.check"

return runbook {
  name = "plan-reads", version = "1.0.0",
  summary = "Test runbook: reads in a plan",
  params = { project = { type = "string", required = true } },
  steps = {
    { name = "reads", run = function() end,
      plan = function(ctx)
        local p = ctx.params.project
        local c = pg.connect(neon.connection_uri(p, { branch_id = neon.default_branch(p).id,
                                                      database_name = "neondb", role_name = "neondb_owner" }))
        local n = c:query("SELECT count(*) AS n FROM victim")[1].n
        local w = c:query("WITH v AS (SELECT id FROM victim) SELECT coalesce(sum(id), 0) AS s FROM v")[1].s
        local ro = c:query("SHOW transaction_read_only")[1].transaction_read_only
        check(ro == "on", "transaction_read_only", ro, "on")
        local commented = c:query("-- the rows\n/* nested /* comment */ */ SELECT $1::int AS v", 5)[1].v
        check(commented == 5, "a statement after comments", commented, 5)
        local t = c:query("TABLE victim")
        local e = c:query("EXPLAIN SELECT * FROM victim")
        check(#e > 0, "EXPLAIN", #e, "> 0")
        local again = c:query("SELECT count(*) AS n FROM victim")[1].n
        local tables = #pg.user_tables(c)
        return string.format("victim has %d rows (sum %d, %d by TABLE), read twice: %d; %d tables", n, w, #t,
                             again, tables)
      end },
  },
}
