-- The pg module against two branches of a neon-local project (main and
-- b), each check failing its step with the figures that disagree.
local neon = require "neon"
local pg = require "pg"
local dr = require "dr"

local check = require "testing.check"

local function connect(ctx, branch_name)
  local p = ctx.params.project
  local b = neon.find_branch(p, branch_name)
  local uri = neon.connection_uri(p, { branch_id = b.id, database_name = "neondb", role_name = "neondb_owner" })
  -- Without its password: pg.connect reveals it through the Neon API.
  local bare = uri:gsub("^(postgresql://[^:]+):[^@]+@", "%1@")
  return pg.connect(bare, { project = p, branch_id = b.id })
end

local kept -- a connection from an earlier step: closed since

return runbook {
  name = "pg-tour", version = "1.0.0",
  summary = "Test runbook: the pg module, checked",
  params = { project = { type = "string", required = true } },
  steps = {
    { name = "types", run = function(ctx)
        local c = connect(ctx, "main")
        kept = c
        local r = c:query([[SELECT 1::int2 AS a, 2::int4 AS b, 9007199254740993::int8 AS c, 1.5::float8 AS d,
                                   12.345678901234567890::numeric AS e, true AS f, NULL::text AS g,
                                   '2026-01-11 14:29:59.5+02'::timestamptz AS h, '2026-01-11 14:29:59'::timestamp AS i,
                                   'x'::text AS j]])[1]
        check(r.a == 1 and math.type(r.a) == "integer", "int2", r.a, 1)
        check(r.c == 9007199254740993, "int8", r.c, "9007199254740993")
        check(r.d == 1.5, "float8", r.d, 1.5)
        check(r.e == "12.345678901234567890", "numeric as text", r.e, "12.345678901234567890")
        check(r.f == true, "bool", r.f, true)
        check(r.g == pg.null, "NULL", r.g, "pg.null")
        check(r.h == "2026-01-11T12:29:59.5Z", "timestamptz in UTC", r.h, "2026-01-11T12:29:59.5Z")
        check(r.i == "2026-01-11T14:29:59", "timestamp", r.i, "2026-01-11T14:29:59")
        local hostile = "a'b\"; drop table t; --"
        local p = c:query("SELECT $1::int + 1 AS n, $2::text AS s, $3::text IS NULL AS isnull", 41, hostile, pg.null)[1]
        check(p.n == 42 and p.s == hostile and p.isnull, "parameters", p.s, hostile)
        local t = c:query{ sql = "SELECT $1::text AS v", params = { "table form" }, timeout = "5s" }[1]
        check(t.v == "table form", "query{...}", t.v, "table form")
        local ok, err = pcall(c.query, c, "SELECT * FROM no_such_table")
        check(not ok and err.sqlstate == "42P01" and err.message:find("no_such_table"), "SQL error",
              type(err) == "table" and err.message or err, "42P01 naming the table")
        local slow_ok, slow = pcall(c.query, c, { sql = "SELECT pg_sleep(5)", timeout = 0.3 })
        check(not slow_ok and tostring(slow):find("statement's timeout"), "per-call timeout", tostring(slow), "cancelled")
        return { ok = true }
      end },
    { name = "transactions", run = function(ctx)
        local ok = pcall(kept.query, kept, "SELECT 1")
        check(not ok, "a connection from an earlier step", "open", "closed")
        local c = connect(ctx, "main")
        local before = c:query("SELECT count(*) AS n FROM salon")[1].n
        local rolled = pcall(c.tx, c, function()
          c:exec("INSERT INTO salon (id, name) VALUES ($1, $2)", 900, "rolled back")
          error("boom")
        end)
        check(not rolled, "tx raised", "ok", "boom")
        check(c:query("SELECT count(*) AS n FROM salon")[1].n == before, "rolled back", "a new row", before)
        c:tx(function() c:exec("INSERT INTO salon (id, name) VALUES ($1, $2)", 901, "kept") end)
        check(c:query("SELECT count(*) AS n FROM salon")[1].n == before + 1, "committed", before, before + 1)
        check(c:exec("DELETE FROM salon WHERE id = $1", 901) == 1, "exec returns affected rows", "?", 1)
        return { salons = before }
      end },
    { name = "integrity", run = function(ctx)
        local c = connect(ctx, "main")
        local pk = pg.primary_key(c, "booking")
        check(#pk == 1 and pk[1] == "id", "primary key", table.concat(pk, ","), "id")
        local fks = pg.foreign_keys(c)
        local list, total = pg.orphans(c)
        check(#fks == 1 and list[1].name == "booking_salon_fk", "foreign keys", #fks, 1)
        check(total == 2 and list[1].orphans == 2, "orphans", total, 2)
        local counts = pg.row_counts(c, { "salon", "booking" })
        check(counts.salon == ctx.outputs.transactions.salons and counts.booking == 12, "row counts",
              counts.booking, 12)
        local all = pg.row_counts(c)
        check(all.big == 1000000, "row counts of every table", all.big, 1000000)
        local ok, err = pcall(pg.row_counts, c, { "nope" })
        check(not ok and err.message:find("nope"), "an unknown table", tostring(ok), "an error naming it")
        local b = connect(ctx, "b")
        local fa, fb = pg.fingerprint(c), pg.fingerprint(b)
        check(fa.hash == fb.hash and fa.tables == 4, "same schema, same fingerprint", fb.hash, fa.hash)
        b:exec("ALTER TABLE salon ADD COLUMN extra int")
        check(pg.fingerprint(b).hash ~= fa.hash, "a changed schema", "the same hash", "another")
        b:exec("ALTER TABLE salon DROP COLUMN extra")
        return { ok = true }
      end },
    { name = "copy", run = function(ctx)
        local src, dst = connect(ctx, "main"), connect(ctx, "b")
        check(dst:query("SELECT count(*) AS n FROM big")[1].n == 0, "b's big table empty first", "rows", 0)
        local small = pg.copy(src, dst, { from = "SELECT id, payload FROM big WHERE id <= 10", to = "big" })
        check(small.rows == 10, "copy of a query", small.rows, 10)
        dst:exec("TRUNCATE big")
        local before = pg.copy(src, dst, { from = "salon", to = "salon_copy", columns = { "id", "name" } })
        check(before.rows > 0, "copy of a table with columns", before.rows, "> 0")
        local result = pg.copy(src, dst, { from = "big", to = "big" })
        check(result.rows == 1000000, "rows copied", result.rows, 1000000)
        check(dst:query("SELECT count(*) AS n, sum(length(payload)) AS s FROM big")[1].n == 1000000, "rows on b",
              "fewer", 1000000)
        return { rows = result.rows, bytes = result.bytes, seconds = result.seconds,
                 peak_rss_kb_small = before.peak_rss_kb, peak_rss_kb = result.peak_rss_kb }
      end },
  },
}
