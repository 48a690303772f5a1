-- The guide's monthly integrity check: a test branch from a backup, its
-- rows counted, every foreign key checked for orphans, the business
-- queries run, the counts compared with the source branch at the backup's
-- LSN; the test branches deleted. Exit 0 only if everything holds. The
-- comparison is at the LSN, never at created_at: that is only to the
-- second, and a database written every second differs within one. When it
-- cannot be made (the backup has no LSN, or the source's history no longer
-- reaches back to it) it is reported as skipped, never as passed.
local neon = require "neon"
local pg = require "pg"
local dr = require "dr"
local files = require "files"
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
                                    source_id = b.parent_id, lsn = b.parent_lsn }
  end
  for _, s in ipairs(neon.list_snapshots(p) or {}) do
    candidates[#candidates + 1] = { kind = "snapshot", id = s.id, name = s.name, created_at = s.timestamp or s.created_at,
                                    source_id = s.source_branch_id, lsn = s.lsn }
  end
  if ctx.params.backup then
    local named = common.find(candidates, ctx.params.backup)
    if named then return named end
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

-- Why the source cannot be compared with the backup at its LSN, or nil
-- when it can be tried. The project's history retention is checked here
-- because an API may accept an LSN outside it (neon-local checks only
-- parent_timestamp against it).
local function comparison_impossible(ctx, backup)
  if not backup.lsn or backup.lsn == "" then
    return "the backup has no LSN (no parent_lsn), and its created_at (" .. backup.created_at
           .. ") is only to the second"
  end
  if not backup.source_id then return "the backup names no source branch" end
  local project = neon.get_project(ctx.params.project)
  local retention = project.history_retention_seconds
  if retention and dr.time(backup.created_at) < dr.time() - retention then
    return string.format("the backup (%s) is older than the project's history retention (%d s): the source's "
                         .. "history no longer reaches back to it", backup.created_at, retention)
  end
  return nil
end

local function test_name(ctx) return common.name("verify", ctx) end
local function source_name(ctx) return common.name("verify-source", ctx) end

return runbook {
  name = "verify-backup", version = "1.0.0",
  summary = "Check a backup: row counts, orphans, business queries, against the source at its LSN",
  params = common.params {
    backup = { type = "string", doc = "the backup branch or snapshot, by name or id (default: the newest)" },
    checks = { type = "path", doc = "a SQL file of business queries, separated by ';' (default: the guide's "
                                      .. "salon/booking query when those tables exist)" },
    tables = { type = "string", doc = "tables to count, comma-separated (default: all)" },
  },
  steps = {
    { name = "test-branches", idempotent = true, timeout = "30m",
      plan = function(ctx)
        return "create " .. test_name(ctx) .. " from the backup " .. (ctx.params.backup or "(the newest)")
               .. " and " .. source_name(ctx) .. " from its source branch at the backup's LSN, both expiring after "
               .. common.throwaway_ttl_text(ctx)
      end,
      run = function(ctx)
        local expires_at = common.throwaway_expiry(ctx) -- a TTL Neon would refuse fails here, before anything is made
        local backup = find_backup(ctx)
        local test
        if backup.kind == "branch" then
          test = common.make_branch(ctx, test_name(ctx), { parent_id = backup.id })
        else
          test = neon.find_branch(ctx.params.project, test_name(ctx))
          if test then
            -- One an earlier attempt asked for, just before it died, may still be in the making.
            test = common.settle(ctx, test.id)
          else
            test = neon.restore_snapshot(ctx.params.project, backup.id, { name = test_name(ctx) }).branch
          end
          -- A snapshot's restore takes no expires_at: the branch gets it
          -- next (again on a resume that finds it without one).
          if not test.expires_at then test = neon.update_branch(ctx.params.project, test.id, { expires_at = expires_at }) end
        end
        -- The source as it was at the backup's LSN, when its history still
        -- reaches back that far (a backup often outlives it).
        local skipped = comparison_impossible(ctx, backup)
        local source
        if not skipped then
          local ok, made = pcall(common.make_branch, ctx, source_name(ctx),
                                 { parent_id = backup.source_id, parent_lsn = backup.lsn })
          -- Only the API's refusal of that LSN skips the comparison: an
          -- answer lost or a server error is no verdict on the history, and
          -- passing it off as one would let a flaky API skip the check.
          local refused = type(made) == "table" and type(made.status) == "number" and made.status >= 400
                          and made.status < 500 and made.status ~= 429 and made.status ~= 423
          if ok then
            source = made
          elseif refused then
            skipped = "the source's history does not give the backup's LSN " .. backup.lsn .. ": "
                      .. common.message_of(made)
          else
            error(made, 0)
          end
        end
        if skipped then dr.log("the comparison with the source is skipped: " .. skipped) end
        dr.figure("backup checked", backup.name .. " (" .. backup.kind .. ", " .. backup.created_at
                                    .. (backup.lsn and (", LSN " .. backup.lsn) or "") .. ")")
        return { backup = backup, test_id = test.id, source_id = source and source.id or nil, source_skipped = skipped }
      end },
    { name = "check", timeout = "2h",
      plan = function()
        return "count rows, check every foreign key for orphans, run the business queries, compare the counts and "
               .. "the schema with the source"
      end,
      run = function(ctx)
        local t = ctx.outputs["test-branches"]
        local conn = common.connect(ctx, t.test_id)
        local tables = common.tables(conn, ctx.params.tables)
        local counts = pg.row_counts(conn, tables)
        local problems = {}
        -- Compared only with a source branch made at the backup's LSN; the
        -- backup's own counts are never the other side.
        local comparison, source_counts
        if t.source_id then
          source_counts = pg.row_counts(common.connect(ctx, t.source_id), tables)
          comparison = "pass"
          for _, name in ipairs(tables) do
            dr.figure("rows of " .. name .. " (backup / source at the backup's LSN)",
                      counts[name] .. " / " .. tostring(source_counts[name]))
            if counts[name] ~= source_counts[name] then
              comparison = "fail"
              problems[#problems + 1] = string.format("%s has %d rows in the backup, %s in the source at LSN %s",
                                                      name, counts[name], tostring(source_counts[name]), t.backup.lsn)
            end
          end
          -- The schema too: a backup whose tables or columns differ is no backup of that instant.
          local diff = common.schema_difference(ctx, t.test_id, { branch_id = t.source_id })
          dr.figure("schema (backup / source at the backup's LSN)", diff == "" and "the same" or "differs")
          if diff ~= "" then
            comparison = "fail"
            problems[#problems + 1] = "the backup's schema differs from the source's at LSN " .. t.backup.lsn .. ":\n"
                                      .. common.first_lines(diff, 40)
          end
          dr.figure("comparison with the source", comparison .. " (at LSN " .. t.backup.lsn .. ")")
        else
          comparison = "skipped"
          for _, name in ipairs(tables) do dr.figure("rows of " .. name .. " (backup)", counts[name]) end
          dr.figure("comparison with the source", "skipped: " .. t.source_skipped)
        end
        dr.log("comparison with the source: " .. comparison
               .. (comparison == "skipped" and (" (" .. t.source_skipped .. ")") or (" at LSN " .. t.backup.lsn)))
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
          local ok, text = pcall(files.read_text, ctx.params.checks)
          if not ok then dr.fail("cannot read " .. ctx.params.checks .. ": " .. common.message_of(text)) end
          for q in text:gmatch("[^;]+") do
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
            problems[#problems + 1] = "business query " .. i .. " failed: " .. common.message_of(rows)
          end
        end
        dr.figure("foreign keys checked", #fks)
        dr.figure("problems", #problems)
        if #problems > 0 then dr.fail("the backup does not hold: " .. table.concat(problems, "; ")) end
        return { rows = counts, foreign_keys = #fks, orphans = orphans, queries = #queries, comparison = comparison,
                 source_rows = source_counts, comparison_skipped = t.source_skipped }
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
