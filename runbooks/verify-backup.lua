-- The guide's monthly integrity check: a test branch from a backup, its
-- rows counted, every foreign key checked for orphans, the business
-- queries run, the counts compared with the source branch at the backup's
-- instant; the test branches deleted. Exit 0 only if everything holds.
local neon = require "neon"
local pg = require "pg"
local dr = require "dr"
local common = require "drctl.common"

local GUIDE_QUERY = [[SELECT s.name, COUNT(b.id) AS total_bookings
  FROM salon s LEFT JOIN booking b ON s.id = b."salonId" GROUP BY s.name]]

-- The backup: the one named, else the newest branch or snapshot whose
-- name starts with backup-, auto-backup- or github-backup-.
local function find_backup(ctx)
  local p = ctx.params.project
  local candidates = {}
  for _, b in ipairs(neon.list_branches(p)) do
    candidates[#candidates + 1] = { kind = "branch", id = b.id, name = b.name, created_at = b.created_at,
                                    source_id = b.parent_id }
  end
  for _, s in ipairs(neon.list_snapshots(p) or {}) do
    candidates[#candidates + 1] = { kind = "snapshot", id = s.id, name = s.name, created_at = s.timestamp or s.created_at,
                                    source_id = s.source_branch_id }
  end
  if ctx.params.backup then
    for _, c in ipairs(candidates) do
      if c.name == ctx.params.backup or c.id == ctx.params.backup then return c end
    end
    dr.fail("no backup branch or snapshot named '" .. ctx.params.backup .. "' in project " .. p)
  end
  local newest
  for _, c in ipairs(candidates) do
    local n = c.name
    if (n:find("^backup%-") or n:find("^auto%-backup%-") or n:find("^github%-backup%-"))
       and (not newest or c.created_at > newest.created_at) then newest = c end
  end
  if not newest then dr.fail("project " .. p .. " has no backup (no branch or snapshot named backup-...)") end
  return newest
end

local function test_name(ctx) return common.name("verify", ctx) end
local function source_name(ctx) return common.name("verify-source", ctx) end

return runbook {
  name = "verify-backup", version = "1.0.0",
  summary = "Check a backup: row counts, orphans, business queries, against the source at its instant",
  params = common.params {
    backup = { type = "string", doc = "the backup branch or snapshot, by name or id (default: the newest)" },
    checks = { type = "string", doc = "a SQL file of business queries, separated by ';' (default: the guide's "
                                      .. "salon/booking query when those tables exist)" },
    tables = { type = "string", doc = "tables to count, comma-separated (default: all)" },
  },
  steps = {
    { name = "test-branches", idempotent = true, timeout = "30m",
      plan = function(ctx)
        return "create " .. test_name(ctx) .. " from the backup " .. (ctx.params.backup or "(the newest)")
               .. " and " .. source_name(ctx) .. " from its source branch at the backup's instant"
      end,
      run = function(ctx)
        local backup = find_backup(ctx)
        local test
        if backup.kind == "branch" then
          test = common.make_branch(ctx, test_name(ctx), { parent_id = backup.id })
        else
          test = neon.find_branch(ctx.params.project, test_name(ctx))
          if not test then
            test = neon.restore_snapshot(ctx.params.project, backup.id, { name = test_name(ctx) }).branch
          end
        end
        -- The source as it was at the backup's instant, when its history
        -- still reaches back that far (a backup often outlives it).
        local ok, source = pcall(common.make_branch, ctx, source_name(ctx),
                                 { parent_id = backup.source_id, parent_timestamp = backup.created_at })
        local skipped = not ok and (type(source) == "table" and source.message or tostring(source)) or nil
        if skipped then
          dr.log("no comparison with the source: " .. skipped)
          dr.figure("comparison with the source", "not possible: " .. skipped)
        end
        dr.figure("backup checked", backup.name .. " (" .. backup.kind .. ", " .. backup.created_at .. ")")
        return { backup = backup, test_id = test.id, source_id = ok and source.id or nil, source_skipped = skipped }
      end },
    { name = "check", timeout = "2h",
      plan = function() return "count rows, check every foreign key for orphans, run the business queries, compare" end,
      run = function(ctx)
        local t = ctx.outputs["test-branches"]
        local conn = common.connect(ctx, t.test_id)
        local tables = common.tables(conn, ctx.params.tables)
        local counts = pg.row_counts(conn, tables)
        local source_counts = t.source_id and pg.row_counts(common.connect(ctx, t.source_id), tables) or counts
        local problems = {}
        for _, name in ipairs(tables) do
          dr.figure("rows of " .. name .. " (backup / source at its instant)", counts[name] .. " / " .. source_counts[name])
          if counts[name] ~= source_counts[name] then
            problems[#problems + 1] = string.format("%s has %d rows in the backup, %d in the source at %s", name,
                                                    counts[name], source_counts[name], t.backup.created_at)
          end
        end
        local fks, orphans = pg.orphans(conn)
        for _, fk in ipairs(fks) do
          dr.figure("orphans of " .. fk.name .. " (" .. fk.table .. " -> " .. fk.ref_table .. ")", fk.orphans)
          if fk.orphans > 0 then
            problems[#problems + 1] = string.format("%d rows of %s point to no row of %s (%s)", fk.orphans, fk.table,
                                                    fk.ref_table, fk.name)
          end
        end
        local queries = {}
        if ctx.params.checks then
          local r = dr.exec({ "cat", "--", ctx.params.checks })
          if r.code ~= 0 then dr.fail("cannot read " .. ctx.params.checks .. ": " .. r.stderr) end
          for q in r.stdout:gmatch("[^;]+") do
            if q:find("%S") then queries[#queries + 1] = q end
          end
        else
          local names = {}
          for _, n in ipairs(pg.user_tables(conn)) do names[n] = true end
          if names.salon and names.booking then queries[1] = GUIDE_QUERY end
        end
        for i, q in ipairs(queries) do
          local ok, rows = pcall(conn.query, conn, q)
          if ok then
            dr.figure("business query " .. i .. " rows", #rows)
          else
            problems[#problems + 1] = "business query " .. i .. " failed: " .. (type(rows) == "table" and rows.message or tostring(rows))
          end
        end
        dr.figure("foreign keys checked", #fks)
        dr.figure("problems", #problems)
        if #problems > 0 then dr.fail("the backup does not hold: " .. table.concat(problems, "; ")) end
        return { rows = counts, foreign_keys = #fks, orphans = orphans, queries = #queries }
      end },
    { name = "cleanup", always = true, idempotent = true,
      plan = function(ctx) return "delete " .. test_name(ctx) .. " and " .. source_name(ctx) end,
      run = function(ctx)
        common.drop_branch(ctx, test_name(ctx))
        common.drop_branch(ctx, source_name(ctx))
        return {}
      end },
  },
}
