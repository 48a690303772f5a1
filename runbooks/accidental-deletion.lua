-- Scenario 1 of the backup guide: rows deleted by mistake (a DELETE without
-- WHERE at incident_time). The restore point is incident_time - margin.
--   restore:  the branch goes back in place (same id, same connection string);
--             its damaged state is kept as <branch>-before-restore-<run>
--   promote:  the guide's way: restore-<run> at the restore point becomes the
--             default branch (the application's connection string changes)
--   reinsert: only the rows missing now are copied back, by primary key, in
--             one transaction; writes since the incident stay
local neon = require "neon"
local pg = require "pg"
local dr = require "dr"
local common = require "drctl.common"

local function restore_point(ctx)
  return common.before(ctx.params.incident_time, ctx.params.margin)
end

local function kept_name(ctx, branch_name)
  return common.kept_name(branch_name, "before-restore", ctx.run_id)
end

-- What restore and promote report in verify: the rows written since the
-- restore point (counted in the same scan as the rows now), which going
-- back loses from the branch.
local function log_written(_, _, _, written)
  dr.log("inserted or updated since the restore point: " .. common.format_counts(written))
  return {}
end

-- What each strategy does, step by step, in one entry: the prefix of its
-- point-in-time branch, what verify counts, and apply's plan, confirmation
-- and run, and check's run. Chosen by the strategy param (strategy(ctx)).
local STRATEGIES
local function strategy(ctx) return STRATEGIES[ctx.params.strategy] end

-- The point-in-time branch that shows the restore point.
local function point_name(ctx)
  return common.name(strategy(ctx).point_prefix, ctx)
end

-- That branch, made again when a cleanup removed it before a resume.
local function point(ctx)
  local rp = ctx.outputs["restore-point"]
  return common.make_branch(ctx, point_name(ctx), { parent_id = rp.branch_id, parent_timestamp = rp.restore_point })
end

STRATEGIES = {
  -- The branch goes back in place (same id, same connection string); its
  -- damaged state is kept under another name.
  restore = {
    point_prefix = "check",
    verify_plan = "",
    counts_now = common.counts_and_written,
    missing_now = log_written,
    apply_plan = function(ctx, b)
      return "restore " .. b .. " in place to " .. dr.show_time(restore_point(ctx)) .. ". Lost from it: every row "
             .. "written after that instant (counted by the verify step), kept on " .. kept_name(ctx, "<branch>")
    end,
    confirm = function(ctx, rp, v)
      return { challenge = rp.branch_name,
               summary = string.format("the branch %s goes back to %s: rows written since then (%s) will no "
                                       .. "longer be on %s; they stay on %s. Its connection string does not "
                                       .. "change.", rp.branch_name, dr.show_time(rp.restore_point),
                                       common.format_counts(v.written_since), rp.branch_name,
                                       kept_name(ctx, rp.branch_name)) }
    end,
    apply = function(ctx, rp)
      local p = ctx.params.project
      local kept = kept_name(ctx, rp.branch_name)
      if neon.find_branch(p, kept) then -- a resumed run: the restore was asked for
        common.settle(ctx, rp.branch_id)
        dr.log("the restore was done already: " .. kept .. " exists")
      else
        -- From the point-in-time branch, which holds the restore point
        -- already: the same data, without replaying the history again.
        neon.restore_branch(p, rp.branch_id, { source_branch_id = point(ctx).id, preserve_under_name = kept })
      end
      dr.figure("restored", rp.branch_name .. " to " .. rp.restore_point .. "; previous state kept as " .. kept)
      return common.kept_outputs(ctx, kept)
    end,
    check = function(ctx, rp, v)
      local live = common.connect(ctx, rp.branch_id)
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
      local still = common.missing_rows(at, live, by_key)
      for t, n in pairs(still) do
        if n > 0 then dr.fail(n .. " rows of " .. t .. " that the restore point has are missing after the restore") end
      end
      common.check_schema(ctx, rp.branch_id, { branch_id = point(ctx).id, label = "the restore point's" })
      return { checked = lost, checked_by_key = by_key, schema = "same" }
    end,
  },

  -- The guide's way: the point-in-time branch becomes the default branch
  -- (the application's connection string changes).
  promote = {
    point_prefix = "restore",
    verify_plan = "",
    counts_now = common.counts_and_written,
    missing_now = log_written,
    apply_plan = function(ctx, b)
      return "make " .. point_name(ctx) .. " the default branch: the application's connection string changes, "
             .. "and rows written on " .. b .. " after " .. dr.show_time(restore_point(ctx)) .. " are not on it"
    end,
    confirm = function(_, rp, v)
      return { challenge = rp.branch_name,
               summary = string.format("%s (the data of %s at %s) becomes the project's default branch in "
                                       .. "place of %s. The application's connection string CHANGES to %s's "
                                       .. "endpoint; rows written on %s since then (%s) are not on it.",
                                       rp.point_name, rp.branch_name, dr.show_time(rp.restore_point), rp.branch_name,
                                       rp.point_name, rp.branch_name, common.format_counts(v.written_since)) }
    end,
    apply = function(ctx, rp)
      -- Kept from now on: it must not expire, and Neon lets no expiring
      -- branch be the default.
      local promoted = common.keep_branch(ctx, point(ctx).id)
      local previous = common.default_before_promotion(ctx, promoted.id, rp.branch_id, rp.branch_name)
      neon.set_default(ctx.params.project, promoted.id)
      dr.figure("promoted", rp.point_name .. " is the default branch (at " .. rp.restore_point .. ")")
      return { default = rp.point_name, default_id = promoted.id, previous_default_id = previous.id,
               previous_default_name = previous.name }
    end,
    check = function(ctx, rp)
      local default = neon.default_branch(ctx.params.project)
      if default.name ~= rp.point_name then dr.fail("the default branch is " .. default.name .. ", not " .. rp.point_name) end
      common.check_schema(ctx, default.id, { branch_id = rp.branch_id, timestamp = rp.restore_point,
                                             label = rp.branch_name .. "'s at " .. rp.restore_point })
      return { default = default.name, schema = "same" }
    end,
  },

  -- Only the rows missing now are copied back, by primary key, in one
  -- transaction; writes since the incident stay.
  reinsert = {
    point_prefix = "check",
    verify_plan = ", and the rows missing now by primary key",
    counts_now = function(_, live, tables) return pg.row_counts(live, tables), {} end,
    missing_now = function(at, live, tables)
      local missing = common.missing_rows(at, live, tables)
      dr.log("missing now, by primary key: " .. common.format_counts(missing))
      return missing
    end,
    apply_plan = function()
      return "insert the rows missing now from the restore point, by primary key, in one transaction; nothing "
             .. "is deleted or overwritten"
    end,
    confirm = function(_, rp, v)
      return { challenge = rp.branch_name,
               summary = string.format("rows missing from %s since %s go back in: %s. Nothing is deleted or "
                                       .. "overwritten; writes since the incident stay.", rp.branch_name,
                                       dr.show_time(rp.restore_point), common.format_counts(v.missing)) }
    end,
    apply = function(ctx, rp, v)
      local live, at = common.connect(ctx, rp.branch_id), common.connect(ctx, point(ctx).id)
      local inserted, keys
      live:tx(function()
        inserted, keys = common.insert_missing_rows(at, live, common.parents_first(live, v.tables))
      end)
      dr.figure("rows inserted back", common.format_counts(inserted))
      -- What drctl undo deletes, and nothing else.
      if not keys then
        dr.log("the inserted rows' keys are more than " .. common.MAX_UNDO_KEY_BYTES .. " bytes: they are not "
               .. "recorded, so drctl undo cannot take this reinsertion back")
      end
      return { inserted = inserted, inserted_keys = keys }
    end,
    check = function(ctx, rp, v)
      local live = common.connect(ctx, rp.branch_id)
      local still = common.missing_rows(common.connect(ctx, point(ctx).id), live, v.tables)
      for t, n in pairs(still) do
        if n > 0 then dr.fail(n .. " rows of " .. t .. " are still missing after the reinsertion") end
      end
      -- The rows went back into today's schema: one changed since the
      -- restore point (a migration) is reported, not undone.
      local diff = common.schema_difference(ctx, rp.branch_id, { branch_id = point(ctx).id })
      if diff ~= "" then dr.log("the schema changed since the restore point:\n" .. common.first_lines(diff, 40)) end
      dr.figure("schema", diff == "" and "the same as at the restore point" or "changed since the restore point")
      return { missing = still, schema = diff == "" and "same" or "changed" }
    end,
  },
}

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
        return "create branch " .. point_name(ctx) .. " at " .. dr.show_time(restore_point(ctx)) .. " (incident "
               .. dr.show_time(ctx.params.incident_time) .. " minus " .. ctx.params.margin .. " s) from "
               .. (ctx.params.branch or "the default branch") .. ", to see the data as it was (it expires after "
               .. common.throwaway_ttl_text(ctx) .. " unless promoted)"
      end,
      run = function(ctx)
        local branch = common.branch(ctx)
        local at = restore_point(ctx)
        local point = common.make_branch(ctx, point_name(ctx), { parent_id = branch.id, parent_timestamp = at })
        dr.log("branch " .. point.name .. " shows " .. branch.name .. " at " .. at)
        dr.figure("restore point", dr.show_time(at))
        return { branch_id = branch.id, branch_name = branch.name, point_id = point.id, point_name = point.name,
                 restore_point = at }
      end },

    { name = "verify", idempotent = true, timeout = "1h",
      plan = function(ctx)
        return "count the rows of " .. (ctx.params.tables or "every table") .. " at the restore point and now, "
               .. "table by table" .. strategy(ctx).verify_plan
      end,
      run = function(ctx)
        local rp = ctx.outputs["restore-point"]
        local live, at = common.connect(ctx, rp.branch_id), common.connect(ctx, point(ctx).id)
        local tables = common.tables(live, ctx.params.tables)
        local s = strategy(ctx)
        local then_counts = pg.row_counts(at, tables)
        local now_counts, written = s.counts_now(at, live, tables)
        local delta = common.count_delta(then_counts, now_counts)
        for _, t in ipairs(tables) do
          dr.log(string.format("%-30s at the restore point %d, now %d (%+d)", t, then_counts[t], now_counts[t], delta[t]))
          dr.figure("rows of " .. t .. " at the restore point / now", then_counts[t] .. " / " .. now_counts[t])
        end
        -- The rows gone since, by primary key (reinsert brings them back), or
        -- the rows written since (what going back would lose from the branch).
        local missing = s.missing_now(at, live, tables, written)
        local lost = 0
        for _, d in pairs(delta) do if d < 0 then lost = lost - d end end
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
      plan = function(ctx) return strategy(ctx).apply_plan(ctx, ctx.params.branch or "the default branch") end,
      confirm = function(ctx)
        return strategy(ctx).confirm(ctx, ctx.outputs["restore-point"], ctx.outputs.verify)
      end,
      run = function(ctx) return strategy(ctx).apply(ctx, ctx.outputs["restore-point"], ctx.outputs.verify) end },

    { name = "check", idempotent = true,
      plan = function() return "check the result: row counts back as at the restore point, nothing missing" end,
      run = function(ctx) return strategy(ctx).check(ctx, ctx.outputs["restore-point"], ctx.outputs.verify) end },

    { name = "cleanup", always = true, idempotent = true,
      plan = function(ctx)
        return "delete the throwaway branch " .. point_name(ctx) .. " (a promoted one stays)"
      end,
      run = function(ctx)
        local promoted = (ctx.outputs.apply or {}).default ~= nil
        if promoted or common.kept_for_resume(ctx, { point_name(ctx) }, "apply") then return { removed = false } end
        common.drop_branch(ctx, point_name(ctx))
        return { removed = true }
      end },
  },
}
