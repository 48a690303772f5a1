-- Scenario 1 of the backup guide: rows deleted by mistake (a DELETE without
-- WHERE at incident_time). The restore point is incident_time - margin.
--   restore:  the branch goes back in place (same id, same connection string);
--             its damaged state is kept as <branch>-before-restore-<run>
--   promote:  the guide's way: restore-<run> at the restore point becomes the
--             default branch (the application's connection string changes)
--   reinsert: only the rows missing now are copied back, by primary key, in
--             one transaction; writes since the incident stay
local neon = require "neon"
local dr = require "dr"
local common = require "drctl.common"

local function restore_point(ctx)
  return common.before(ctx.params.incident_time, ctx.params.margin)
end

-- The point-in-time branch that shows the restore point.
local function point_name(ctx)
  return common.name(ctx.params.strategy == "promote" and "restore" or "check", ctx)
end

-- That branch, made again when a cleanup removed it before a resume.
local function point(ctx)
  local rp = ctx.outputs["restore-point"]
  return common.make_branch(ctx, point_name(ctx), { parent_id = rp.branch_id, parent_timestamp = rp.restore_point })
end

return runbook {
  name = "accidental-deletion", version = "1.0.0",
  summary = "Bring back rows deleted by mistake, from just before the incident",
  description = "Scenario 1 of the backup guide, by restore in place, promotion of a point-in-time branch, "
                .. "or reinsertion of the missing rows only.",
  params = common.params {
    incident_time = { type = "timestamp", required = true, doc = "when the bad statement ran" },
    margin = { type = "duration", default = "1s", doc = "the restore point is incident_time - margin" },
    strategy = { type = "enum", values = { "restore", "promote", "reinsert" }, default = "restore" },
    tables = { type = "string", doc = "tables to compare and (reinsert) fill, comma-separated (default: all)" },
  },
  lock = function(ctx) return "project/" .. ctx.params.project end,
  steps = {
    { name = "restore-point", idempotent = true, timeout = "30m",
      plan = function(ctx)
        return "create branch " .. point_name(ctx) .. " at " .. restore_point(ctx) .. " (incident "
               .. ctx.params.incident_time .. " minus " .. ctx.params.margin .. " s) from "
               .. (ctx.params.branch or "the default branch") .. ", to see the data as it was"
      end,
      run = function(ctx)
        local branch = common.branch(ctx)
        local at = restore_point(ctx)
        local point = common.make_branch(ctx, point_name(ctx), { parent_id = branch.id, parent_timestamp = at })
        dr.log("branch " .. point.name .. " shows " .. branch.name .. " at " .. at)
        dr.figure("restore point", at)
        return { branch_id = branch.id, branch_name = branch.name, point_id = point.id, point_name = point.name,
                 restore_point = at }
      end },

    { name = "verify", idempotent = true, timeout = "1h",
      plan = function(ctx)
        return "count the rows of " .. (ctx.params.tables or "every table") .. " at the restore point and now, "
               .. "table by table" .. (ctx.params.strategy == "reinsert" and ", and the rows missing now by primary key" or "")
      end,
      run = function(ctx)
        local rp = ctx.outputs["restore-point"]
        local live, at = common.connect(ctx, rp.branch_id), common.connect(ctx, point(ctx).id)
        local tables = common.tables(live, ctx.params.tables)
        local pg = require "pg"
        local then_counts, now_counts, written = pg.row_counts(at, tables), nil, {}
        if ctx.params.strategy == "reinsert" then
          now_counts = pg.row_counts(live, tables)
        else -- the rows written since, in the same scan: what going back loses
          now_counts, written = common.counts_and_written(at, live, tables)
        end
        local delta = common.count_delta(then_counts, now_counts)
        for _, t in ipairs(tables) do
          dr.log(string.format("%-30s at the restore point %d, now %d (%+d)", t, then_counts[t], now_counts[t], delta[t]))
          dr.figure("rows of " .. t .. " at the restore point / now", then_counts[t] .. " / " .. now_counts[t])
        end
        -- The rows gone since, by primary key (reinsert brings them back), or
        -- the rows written since (what going back would lose from the branch).
        local missing = {}
        if ctx.params.strategy == "reinsert" then
          missing = common.missing_rows(at, live, tables, false)
          dr.log("missing now, by primary key: " .. common.format_counts(missing))
        else
          dr.log("inserted or updated since the restore point: " .. common.format_counts(written))
        end
        local lost, gained = 0, 0
        for _, d in pairs(delta) do if d < 0 then lost = lost - d else gained = gained + d end end
        local missing_total = 0
        for _, n in pairs(missing) do missing_total = missing_total + n end
        if lost == 0 and missing_total == 0 then
          dr.fail("nothing is missing: at " .. rp.restore_point .. " no table of " .. rp.branch_name
                  .. " had rows that are gone now; check incident_time")
        end
        return { tables = tables, at_restore_point = then_counts, now = now_counts, missing = missing,
                 written_since = written }
      end },

    { name = "apply", destructive = true, timeout = "2h",
      plan = function(ctx)
        local s = ctx.params.strategy
        local b = ctx.params.branch or "the default branch"
        if s == "restore" then
          return "restore " .. b .. " in place to " .. restore_point(ctx) .. ". Lost from it: every row written "
                 .. "after that instant (counted by the verify step), kept on <branch>-before-restore-"
                 .. ctx.run_id:lower()
        elseif s == "promote" then
          return "make " .. point_name(ctx) .. " the default branch: the application's connection string changes, "
                 .. "and rows written on " .. b .. " after " .. restore_point(ctx) .. " are not on it"
        end
        return "insert the rows missing now from the restore point, by primary key, in one transaction; nothing "
               .. "is deleted or overwritten"
      end,
      confirm = function(ctx)
        local rp, v = ctx.outputs["restore-point"], ctx.outputs.verify
        local s = ctx.params.strategy
        if s == "restore" then
          return { challenge = rp.branch_name,
                   summary = string.format("the branch %s goes back to %s: rows written since then (%s) will no "
                                           .. "longer be on %s; they stay on %s-before-restore-%s. Its connection "
                                           .. "string does not change.", rp.branch_name, rp.restore_point,
                                           common.format_counts(v.written_since), rp.branch_name, rp.branch_name,
                                           ctx.run_id:lower()) }
        elseif s == "promote" then
          return { challenge = rp.branch_name,
                   summary = string.format("%s (the data of %s at %s) becomes the project's default branch in "
                                           .. "place of %s. The application's connection string CHANGES to %s's "
                                           .. "endpoint; rows written on %s since then (%s) are not on it.",
                                           rp.point_name, rp.branch_name, rp.restore_point, rp.branch_name,
                                           rp.point_name, rp.branch_name, common.format_counts(v.written_since)) }
        end
        return { challenge = rp.branch_name,
                 summary = string.format("rows missing from %s since %s go back in: %s. Nothing is deleted or "
                                         .. "overwritten; writes since the incident stay.", rp.branch_name,
                                         rp.restore_point, common.format_counts(v.missing)) }
      end,
      run = function(ctx)
        local rp, v = ctx.outputs["restore-point"], ctx.outputs.verify
        local p = ctx.params.project
        local s = ctx.params.strategy
        if s == "restore" then
          local kept = rp.branch_name .. "-before-restore-" .. ctx.run_id:lower()
          if neon.find_branch(p, kept) then -- a resumed run: the restore was asked for
            common.settle(ctx, rp.branch_id)
            dr.log("the restore was done already: " .. kept .. " exists")
          else
            -- From the point-in-time branch, which holds the restore point
            -- already: the same data, without replaying the history again.
            neon.restore_branch(p, rp.branch_id, { source_branch_id = point(ctx).id, preserve_under_name = kept })
          end
          dr.figure("restored", rp.branch_name .. " to " .. rp.restore_point .. "; previous state kept as " .. kept)
          return { kept = kept }
        elseif s == "promote" then
          neon.set_default(p, point(ctx).id)
          dr.figure("promoted", rp.point_name .. " is the default branch (at " .. rp.restore_point .. ")")
          return { default = rp.point_name }
        end
        local live, at = common.connect(ctx, rp.branch_id), common.connect(ctx, point(ctx).id)
        local inserted
        live:tx(function()
          inserted = common.missing_rows(at, live, common.parents_first(live, v.tables), true)
        end)
        dr.figure("rows inserted back", common.format_counts(inserted))
        return { inserted = inserted }
      end },

    { name = "check", idempotent = true,
      plan = function() return "check the result: row counts back as at the restore point, nothing missing" end,
      run = function(ctx)
        local rp, v = ctx.outputs["restore-point"], ctx.outputs.verify
        local pg = require "pg"
        local s = ctx.params.strategy
        if s == "promote" then
          local default = neon.default_branch(ctx.params.project)
          if default.name ~= rp.point_name then dr.fail("the default branch is " .. default.name .. ", not " .. rp.point_name) end
          return { default = default.name }
        end
        local live = common.connect(ctx, rp.branch_id)
        if s == "restore" then
          -- The rows the incident took must be back. Counts alone would
          -- fail on a database the application writes to again as soon as
          -- it is restored: the tables that lost rows are checked by key.
          -- First by count, in one scan: the rows not written since the
          -- restore point must be as many as it had. Only a table the
          -- application has changed since needs the check by key.
          local lost = {}
          for _, t in ipairs(v.tables) do
            if (v.now[t] or 0) < (v.at_restore_point[t] or 0) then lost[#lost + 1] = t end
          end
          local at = common.connect(ctx, point(ctx).id)
          local counts, written = common.counts_and_written(at, live, lost)
          local by_key = {}
          for _, t in ipairs(lost) do
            if counts[t] - written[t] ~= v.at_restore_point[t] then by_key[#by_key + 1] = t end
          end
          local still = common.missing_rows(at, live, by_key, false)
          for t, n in pairs(still) do
            if n > 0 then dr.fail(n .. " rows of " .. t .. " that the restore point has are missing after the restore") end
          end
          return { checked = lost, checked_by_key = by_key }
        end
        local still = common.missing_rows(common.connect(ctx, point(ctx).id), live, v.tables, false)
        for t, n in pairs(still) do
          if n > 0 then dr.fail(n .. " rows of " .. t .. " are still missing after the reinsertion") end
        end
        return { missing = still }
      end },

    { name = "cleanup", always = true, idempotent = true,
      plan = function(ctx)
        return "delete the throwaway branch " .. point_name(ctx) .. " (a promoted one stays)"
      end,
      run = function(ctx)
        local promoted = (ctx.outputs.apply or {}).default ~= nil
        if not promoted then common.drop_branch(ctx, point_name(ctx)) end
        return { removed = not promoted }
      end },
  },
}
