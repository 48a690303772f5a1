-- Scenario 2 of the backup guide: the data went bad at some instant. Given
-- last_good, or a check_sql that returns true when the data is sound (then
-- the last good instant is found by bisection over the history window, one
-- throwaway point-in-time branch per probe), a branch is made at that
-- instant, the rows written since are salvaged from the corrupted branch
-- (tables in `salvage`, rows whose primary key is absent; conflicts listed,
-- not overwritten), the result checked, and after confirmation the branch
-- is restored in place from it (or it is promoted).
local neon = require "neon"
local pg = require "pg"
local dr = require "dr"
local common = require "drctl.common"

local function probe_name(ctx, i) return common.name("probe" .. i, ctx) end
local function restored_name(ctx) return common.name("restore", ctx) end

-- true when check_sql says the data of that connection is sound.
local function sound(conn, sql)
  local rows, info = conn:query(sql)
  local first = rows[1] and rows[1][info.columns[1]]
  if type(first) ~= "boolean" then dr.fail("check_sql must return one boolean (true when the data is sound)") end
  return first
end

-- Is the data sound at instant t? A throwaway branch there, the check, gone.
local function probe(ctx, branch, t, i)
  local name = probe_name(ctx, i)
  local ok, b = pcall(common.make_branch, ctx, name, { parent_id = branch.id, parent_timestamp = dr.format_time(t) })
  if not ok then return nil, (type(b) == "table" and b.message or tostring(b)) end
  local verdict = sound(common.connect(ctx, b.id), ctx.params.check_sql)
  common.drop_branch(ctx, name)
  dr.log(string.format("probe %d at %s: %s", i, dr.format_time(t), verdict and "sound" or "CORRUPT"))
  dr.figure("probe " .. i .. " at " .. dr.format_time(t), verdict and "sound" or "corrupt")
  return verdict
end

return runbook {
  name = "corruption", version = "1.0.0",
  summary = "Find the last good instant (or take it), rebuild from it, salvage later rows, restore",
  params = common.params {
    last_good = { type = "timestamp", doc = "the last instant the data was sound, when known" },
    check_sql = { type = "string", doc = "a query returning true when the data is sound (to find last_good)" },
    precision = { type = "duration", default = "1s", doc = "how close the bisection gets to the corruption" },
    search_from = { type = "timestamp", doc = "where the search starts (default: the start of the history window)" },
    salvage = { type = "string", doc = "tables whose rows written after the good instant are copied over" },
    strategy = { type = "enum", values = { "restore", "promote" }, default = "restore" },
  },
  lock = function(ctx) return "project/" .. ctx.params.project end,
  steps = {
    { name = "last-good", idempotent = true, timeout = "2h",
      plan = function(ctx)
        if ctx.params.last_good then return "use the last good instant given: " .. ctx.params.last_good end
        return "bisect the history window with throwaway branches until check_sql flips, to within "
               .. ctx.params.precision .. " s"
      end,
      run = function(ctx)
        local branch = common.branch(ctx)
        if ctx.params.last_good then
          return { at = ctx.params.last_good, branch_id = branch.id, branch_name = branch.name, probes = 0 }
        end
        if not ctx.params.check_sql then dr.fail("give -p last_good=<timestamp> or -p check_sql=<query>") end
        if sound(common.connect(ctx, branch.id), ctx.params.check_sql) then
          dr.fail("check_sql says " .. branch.name .. " is sound now: there is no corruption to go back from")
        end
        local project = neon.get_project(ctx.params.project)
        local hi = dr.time()
        local lo = ctx.params.search_from and dr.time(ctx.params.search_from)
                   or math.max(hi - (project.history_retention_seconds or 86400) + 60, dr.time(branch.created_at) + 2)
        local i = 1
        local good, why = probe(ctx, branch, lo, i)
        if good == nil then dr.fail("cannot look at " .. dr.format_time(lo) .. ": " .. why .. "; give -p search_from=") end
        if not good then
          dr.fail("the data is already corrupt at " .. dr.format_time(lo) .. ", the start of the search: give an "
                  .. "earlier search_from, or restore a backup older than that")
        end
        while hi - lo > ctx.params.precision do
          i = i + 1
          local mid = lo + (hi - lo) / 2
          local verdict, probe_error = probe(ctx, branch, mid, i)
          if verdict == nil then dr.fail("probe at " .. dr.format_time(mid) .. " failed: " .. probe_error) end
          if verdict then lo = mid else hi = mid end
        end
        dr.figure("last good instant", dr.format_time(lo))
        dr.figure("probes", i)
        return { at = dr.format_time(lo), first_bad = dr.format_time(hi), branch_id = branch.id,
                 branch_name = branch.name, probes = i }
      end },
    { name = "rebuild", idempotent = true, timeout = "6h",
      plan = function(ctx)
        return "create " .. restored_name(ctx) .. " at the last good instant, then copy the rows of "
               .. (ctx.params.salvage or "(no table)") .. " written after it from the corrupted branch"
      end,
      run = function(ctx)
        local g = ctx.outputs["last-good"]
        local restored = common.make_branch(ctx, restored_name(ctx), { parent_id = g.branch_id, parent_timestamp = g.at })
        local copied, conflicts = {}, {}
        if ctx.params.salvage then
          local live, target = common.connect(ctx, g.branch_id), common.connect(ctx, restored.id)
          local tables = common.parents_first(target, common.tables(target, ctx.params.salvage))
          -- Salvaged once: a resumed run finds them there and copies nothing twice.
          target:tx(function() copied, conflicts = common.salvage(live, target, tables) end)
          dr.log("salvaged: " .. common.format_counts(copied) .. "; conflicts left as they were: "
                 .. common.format_counts(conflicts))
        end
        dr.figure("rows salvaged", common.format_counts(copied))
        dr.figure("conflicts (not overwritten)", common.format_counts(conflicts))
        return { restored_id = restored.id, copied = copied, conflicts = conflicts }
      end },
    { name = "verify", idempotent = true,
      plan = function() return "run check_sql on the rebuilt branch" end,
      run = function(ctx)
        if not ctx.params.check_sql then
          dr.log("no check_sql: the rebuilt branch is not checked")
          return { checked = false }
        end
        local r = ctx.outputs.rebuild
        if not sound(common.connect(ctx, r.restored_id), ctx.params.check_sql) then
          dr.fail("check_sql fails on the rebuilt branch too: the salvaged rows may carry the corruption")
        end
        return { checked = true }
      end },
    { name = "apply", destructive = true, timeout = "2h",
      plan = function(ctx)
        local lost = "rows written after the last good instant outside the salvaged tables, and conflicting rows"
        return ctx.params.strategy == "restore"
               and ("restore the branch in place from the rebuilt branch. Lost from it: " .. lost
                    .. "; kept on <branch>-corrupted-" .. ctx.run_id:lower())
               or ("make the rebuilt branch the default branch: the connection string changes; not on it: " .. lost)
      end,
      confirm = function(ctx)
        local g, r = ctx.outputs["last-good"], ctx.outputs.rebuild
        local lost = "rows written after " .. g.at .. " outside the salvaged tables, and the "
                     .. common.format_counts(r.conflicts) .. " conflicting rows"
        if ctx.params.strategy == "restore" then
          return { challenge = g.branch_name,
                   summary = string.format("the branch %s gets the data of %s (as at %s, plus salvaged rows: %s). "
                                           .. "Lost from %s: %s; they stay on %s-corrupted-%s. Its connection "
                                           .. "string does not change.", g.branch_name, restored_name(ctx), g.at,
                                           common.format_counts(r.copied), g.branch_name, lost, g.branch_name,
                                           ctx.run_id:lower()) }
        end
        return { challenge = g.branch_name,
                 summary = string.format("%s becomes the default branch in place of %s; the application's "
                                         .. "connection string CHANGES. Not on it: %s.", restored_name(ctx),
                                         g.branch_name, lost) }
      end,
      run = function(ctx)
        local g, r = ctx.outputs["last-good"], ctx.outputs.rebuild
        local p = ctx.params.project
        if ctx.params.strategy == "promote" then
          neon.set_default(p, r.restored_id)
          return { default = restored_name(ctx) }
        end
        local kept = g.branch_name .. "-corrupted-" .. ctx.run_id:lower()
        if not neon.find_branch(p, kept) then
          neon.restore_branch(p, g.branch_id, { source_branch_id = r.restored_id, preserve_under_name = kept })
        end
        dr.figure("restored", g.branch_name .. " from " .. restored_name(ctx) .. "; corrupted state kept as " .. kept)
        return { kept = kept }
      end },
    { name = "check", idempotent = true,
      plan = function() return "run check_sql on the branch now in use" end,
      run = function(ctx)
        if not ctx.params.check_sql or ctx.params.strategy == "promote" then return { checked = false } end
        if not sound(common.connect(ctx, ctx.outputs["last-good"].branch_id), ctx.params.check_sql) then
          dr.fail("check_sql fails on the restored branch")
        end
        return { checked = true }
      end },
    { name = "cleanup", always = true, idempotent = true,
      plan = function(ctx) return "delete the probe branches, and " .. restored_name(ctx) .. " unless promoted" end,
      run = function(ctx)
        for _, b in ipairs(neon.list_branches(ctx.params.project, { search = "probe" })) do
          if b.name:match("^probe%d+%-" .. ctx.run_id:lower():gsub("%-", "%%-") .. "$") then
            neon.delete_branch(ctx.params.project, b.id)
          end
        end
        if ctx.params.strategy ~= "promote" or not (ctx.outputs.apply or {}).default then
          common.drop_branch(ctx, restored_name(ctx))
        end
        return {}
      end },
  },
}
