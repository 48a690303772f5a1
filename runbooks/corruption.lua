-- Scenario 2 of the backup guide: the data went bad at some instant. Given
-- last_good, or a check_sql that returns true when the data is sound (then
-- the last good instant is found by bisection over the history window, one
-- throwaway point-in-time branch per probe), a branch is made at that
-- instant, the rows written since are salvaged from the corrupted branch
-- (tables in `salvage`, rows whose primary key is absent; conflicts listed,
-- not overwritten), the result checked, and after confirmation the branch
-- is restored in place from it (or it is promoted).
local neon = require "neon"
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

-- SQL errors that mean an object check_sql reads did not exist yet at that
-- instant (undefined table, column, function, object, schema): a probe
-- there is from before the data existed. check_sql runs on the branch's
-- head first, where such an error fails the run, so a typo is not taken
-- for the past.
local NOT_YET = { ["42P01"] = true, ["42703"] = true, ["42883"] = true, ["42704"] = true, ["3F000"] = true }

local function not_yet(e)
  if type(e) ~= "table" then return false end
  if NOT_YET[e.sqlstate] then return true end
  -- Connecting to a database not yet created fails before any SQLSTATE.
  return tostring(e.message):find('database "[^"]*" does not exist') ~= nil
end

-- A probe: is the data sound at instant t? A throwaway branch there, the
-- check, the branch gone. Outcomes:
--   "sound", "corrupt";
--   "before-data": check_sql cannot run, an object it reads does not exist
--     yet. Corruption happens to data that exists, so this counts as before
--     the corruption: the search goes on later;
--   "refused": the API will not make a branch there (400: before the
--     branch's history starts, or outside the retention window);
--   "error": anything else (the run fails, saying so).
-- Each probe and its outcome go to the log and the report.
local function probe(ctx, branch, t, i, trail)
  local name = probe_name(ctx, i)
  local at = dr.format_time(t)
  local outcome, detail
  local ok, b = pcall(common.make_branch, ctx, name, { parent_id = branch.id, parent_timestamp = at })
  if not ok then
    outcome = (type(b) == "table" and b.status == 400) and "refused" or "error"
    detail = common.message_of(b)
  else
    local connected, conn = pcall(common.connect, ctx, b.id)
    local checked, verdict = connected, conn
    if connected then checked, verdict = pcall(sound, conn, ctx.params.check_sql) end
    if checked then
      outcome = verdict and "sound" or "corrupt"
    elseif not_yet(verdict) then
      outcome, detail = "before-data", common.message_of(verdict)
    else
      outcome, detail = "error", common.message_of(verdict)
    end
    if connected then conn:close() end
    common.drop_branch(ctx, name)
  end
  local shown = ({ sound = "sound", corrupt = "corrupt", ["before-data"] = "before the data existed",
                   refused = "refused", error = "failed" })[outcome]
  if detail then shown = shown .. " (" .. detail .. ")" end
  dr.log(string.format("probe %d at %s: %s", i, at, shown))
  dr.figure("probe " .. i .. " at " .. at, shown)
  trail[#trail + 1] = { at = at, outcome = outcome, detail = detail }
  return outcome, detail
end

-- The instant a 400 refusal says the history starts at, when it says: a
-- time before the branch's history ("... starts (T)"), or outside the
-- project's retention window ("(N seconds)": the start is now - N).
local function start_from_refusal(message)
  local t = message:match("history of branch %S+ starts %((%d%d%d%d%-%d%d%-%d%dT[%d:.]+Z)%)")
  if t then return dr.time(t) end
  local window = message:match("history retention window %((%d+) seconds%)")
  if window then return dr.time() - tonumber(window) + 1 end
  return nil
end

-- When the branch's own timeline was last made: its latest finished
-- create_timeline operation (its creation, or a restore in place, after
-- which its history starts again). Its history cannot start before that.
local function timeline_made(ctx, branch)
  local latest
  for _, op in ipairs(neon.list_operations(ctx.params.project) or {}) do
    if op.branch_id == branch.id and op.action == "create_timeline" and op.status == "finished" then
      local t = dr.time(op.updated_at or op.created_at)
      if not latest or t > latest then latest = t end
    end
  end
  return latest
end

-- Finds the last good instant by bisection. Where the search window
-- really starts, as the API tells it (a branch's fields do not: created_at
-- is when it was made, and a restore in place starts its history again
-- later):
--   1. search_from when given, else the later of the retention window's
--      start and the branch's creation;
--   2. moved up to when the branch's timeline was last made (its latest
--      create_timeline operation: a restore in place);
--   3. a first probe refused with 400 that names where the history starts
--      (neon-local: "... starts (T)"; or the retention window) moves it
--      there;
--   4. a refusal that names nothing: the first instant accepted is found
--      by bisection between the refused instant and now, each refused probe
--      moving the low end up; an accepted one also gives its verdict.
-- A probe before the data existed counts as before the corruption; the
-- answer must be an instant where check_sql ran and said sound.
local function bisect(ctx, branch)
  local project = neon.get_project(ctx.params.project)
  local precision = ctx.params.precision
  local hi = dr.time()
  local lo, why
  if ctx.params.search_from then
    lo, why = dr.time(ctx.params.search_from), "search_from"
  else
    lo = math.max(hi - (project.history_retention_seconds or 86400) + 60, dr.time(branch.created_at) + 2)
    why = "the history window (retention, branch creation)"
  end
  local remade = timeline_made(ctx, branch)
  if remade and remade > lo then
    lo, why = remade, "the branch's timeline was last made then (a restore in place restarts its history)"
  end
  local trail, i = {}, 0
  local function at(t)
    i = i + 1
    return probe(ctx, branch, t, i, trail)
  end
  local outcome, detail = at(lo)
  for _ = 1, 3 do
    if outcome ~= "refused" then break end
    local start = start_from_refusal(detail)
    if not start or start <= lo or start >= hi then break end
    lo, why = start + 0.001, "the API's refusal says the branch's history starts then"
    outcome, detail = at(lo)
  end
  if outcome == "refused" then
    local refused = lo
    while outcome == "refused" or outcome == "corrupt" do
      if hi - refused <= precision then
        dr.fail(string.format("the data is corrupt from the first instant the history gives: refused at %s (%s), "
                              .. "corrupt at %s; restore a backup older than that", dr.format_time(refused),
                              detail or "?", dr.format_time(hi)))
      end
      local mid = refused + (hi - refused) / 2
      local o, d = at(mid)
      if o == "refused" then refused, detail = mid, d
      elseif o == "corrupt" then hi = mid
      elseif o == "error" then dr.fail("probe at " .. dr.format_time(mid) .. " failed: " .. d)
      else lo, outcome, detail, why = mid, o, d, "the first instant the API accepted, found by probing" end
    end
  end
  if outcome == "error" then dr.fail("cannot look at " .. dr.format_time(lo) .. ": " .. detail .. "; give -p search_from=") end
  if outcome == "corrupt" then
    dr.fail("the data is already corrupt at " .. dr.format_time(lo) .. ", the start of the search (" .. why
            .. "): give an earlier search_from, or restore a backup older than that")
  end
  local window_start = dr.format_time(lo)
  dr.log("the search starts at " .. window_start .. ": " .. why)
  dr.figure("search window", dr.show_time(window_start) .. " (" .. why .. ") to " .. dr.show_time(hi))
  local lo_outcome, lo_detail = outcome, detail
  while hi - lo > precision do
    local mid = lo + (hi - lo) / 2
    dr.progress(string.format("bisecting: probe %d of about %d, the last good instant between %s and %s", i + 1,
                              i + math.ceil(math.log((hi - lo) / precision, 2)), dr.show_time(lo), dr.show_time(hi)))
    local o, d = at(mid)
    if o == "sound" or o == "before-data" then lo, lo_outcome, lo_detail = mid, o, d
    elseif o == "corrupt" then hi = mid
    else dr.fail("probe at " .. dr.format_time(mid) .. " " .. (o == "refused" and "refused" or "failed") .. ": " .. d) end
  end
  dr.progress()
  if lo_outcome ~= "sound" then
    dr.fail(string.format("check_sql never found the data sound: at %s it could not run yet (%s) and at %s it says "
                          .. "corrupt; the data was corrupt as soon as it existed", dr.format_time(lo),
                          lo_detail or "before the data existed", dr.format_time(hi)))
  end
  return lo, hi, i, window_start, why, trail
end

local function kept_name(ctx, branch_name)
  return common.kept_name(branch_name, "corrupted", ctx.run_id)
end

-- What each strategy does in apply, and after it, in one entry: apply's
-- plan, confirmation and run; whether check runs check_sql on the branch
-- now in use (a promoted branch is the rebuilt one, checked by verify);
-- whether the rebuilt branch stays once it is the default. `lost` says what
-- the result lacks.
local STRATEGIES = {
  -- The branch is restored in place from the rebuilt branch (same
  -- connection string); its corrupted state is kept under another name.
  restore = {
    checks_after = true,
    apply_plan = function(ctx, lost)
      return "restore the branch in place from the rebuilt branch. Lost from it: " .. lost
             .. "; kept on " .. kept_name(ctx, "<branch>")
    end,
    confirm = function(ctx, g, r, lost)
      return { challenge = g.branch_name,
               summary = string.format("the branch %s gets the data of %s (as at %s, plus salvaged rows: %s). "
                                       .. "Lost from %s: %s; they stay on %s. Its connection string does not "
                                       .. "change.", g.branch_name, restored_name(ctx), dr.show_time(g.at),
                                       common.format_counts(r.copied), g.branch_name, lost,
                                       kept_name(ctx, g.branch_name)) }
    end,
    apply = function(ctx, g, r)
      local p = ctx.params.project
      local kept = kept_name(ctx, g.branch_name)
      if not neon.find_branch(p, kept) then
        neon.restore_branch(p, g.branch_id, { source_branch_id = r.restored_id, preserve_under_name = kept })
      else -- a resumed run: the restore was asked for, and may still be under way
        common.settle(ctx, g.branch_id)
      end
      dr.figure("restored", g.branch_name .. " from " .. restored_name(ctx) .. "; corrupted state kept as " .. kept)
      return common.kept_outputs(ctx, kept)
    end,
  },
  -- The rebuilt branch becomes the default branch (the connection string
  -- changes).
  promote = {
    keeps_promoted = true,
    apply_plan = function(_, lost)
      return "make the rebuilt branch the default branch: the connection string changes; not on it: " .. lost
    end,
    confirm = function(ctx, g, _, lost)
      return { challenge = g.branch_name,
               summary = string.format("%s becomes the default branch in place of %s; the application's "
                                       .. "connection string CHANGES. Not on it: %s.", restored_name(ctx),
                                       g.branch_name, lost) }
    end,
    apply = function(ctx, g, r)
      -- Kept from now on: it must not expire, and Neon lets no expiring
      -- branch be the default.
      common.keep_branch(ctx, r.restored_id)
      local previous = common.default_before_promotion(ctx, r.restored_id, g.branch_id, g.branch_name)
      neon.set_default(ctx.params.project, r.restored_id)
      return { default = restored_name(ctx), default_id = r.restored_id, previous_default_id = previous.id,
               previous_default_name = previous.name }
    end,
  },
}
local function strategy(ctx) return STRATEGIES[ctx.params.strategy] end

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
        if ctx.params.last_good then
          return "use the last good instant given: " .. dr.show_time(ctx.params.last_good)
        end
        return "bisect the history window with throwaway branches (each expiring after "
               .. common.throwaway_ttl_text(ctx) .. ") until check_sql flips, to within " .. ctx.params.precision .. " s"
      end,
      run = function(ctx)
        common.throwaway_expiry(ctx) -- a TTL Neon would refuse fails here, before anything is made
        local branch = common.branch(ctx)
        if ctx.params.last_good then
          return { at = ctx.params.last_good, branch_id = branch.id, branch_name = branch.name, probes = 0 }
        end
        if not ctx.params.check_sql then dr.fail("give -p last_good=<timestamp> or -p check_sql=<query>") end
        if sound(common.connect(ctx, branch.id), ctx.params.check_sql) then
          dr.fail("check_sql says " .. branch.name .. " is sound now: there is no corruption to go back from")
        end
        local lo, hi, probes, window_start, why, trail = bisect(ctx, branch)
        dr.figure("last good instant", dr.show_time(lo))
        dr.figure("probes", probes)
        return { at = dr.format_time(lo), first_bad = dr.format_time(hi), branch_id = branch.id,
                 branch_name = branch.name, probes = probes, search_from = window_start, search_from_why = why,
                 trail = trail }
      end },
    { name = "rebuild", idempotent = true, timeout = "6h",
      plan = function(ctx)
        return "create " .. restored_name(ctx) .. " at the last good instant (expiring after "
               .. common.throwaway_ttl_text(ctx) .. " unless promoted), then copy the rows of "
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
        return strategy(ctx).apply_plan(ctx, "rows written after the last good instant outside the salvaged tables, "
                                             .. "and conflicting rows")
      end,
      confirm = function(ctx)
        local g, r = ctx.outputs["last-good"], ctx.outputs.rebuild
        local lost = "rows written after " .. dr.show_time(g.at) .. " outside the salvaged tables, and the "
                     .. common.format_counts(r.conflicts) .. " conflicting rows"
        return strategy(ctx).confirm(ctx, g, r, lost)
      end,
      run = function(ctx) return strategy(ctx).apply(ctx, ctx.outputs["last-good"], ctx.outputs.rebuild) end },
    { name = "check", idempotent = true,
      plan = function() return "compare the schema of the branch now in use with the last good instant's, and run check_sql on it" end,
      run = function(ctx)
        local g, r = ctx.outputs["last-good"], ctx.outputs.rebuild
        -- The schema of the branch now in use is the last good instant's.
        if strategy(ctx).checks_after then
          common.check_schema(ctx, g.branch_id, { branch_id = r.restored_id, label = restored_name(ctx) .. "'s" })
        else
          common.check_schema(ctx, r.restored_id, { branch_id = g.branch_id, timestamp = g.at,
                                                    label = g.branch_name .. "'s at " .. g.at })
        end
        if not ctx.params.check_sql or not strategy(ctx).checks_after then return { checked = false, schema = "same" } end
        if not sound(common.connect(ctx, g.branch_id), ctx.params.check_sql) then
          dr.fail("check_sql fails on the restored branch")
        end
        return { checked = true, schema = "same" }
      end },
    { name = "cleanup", always = true, idempotent = true,
      plan = function(ctx) return "delete the probe branches, and " .. restored_name(ctx) .. " unless promoted" end,
      run = function(ctx)
        for _, b in ipairs(neon.list_branches(ctx.params.project, { search = "probe" })) do
          if b.name:match("^probe%d+%-" .. ctx.run_id:lower():gsub("%-", "%%-") .. "$") then
            neon.delete_branch(ctx.params.project, b.id)
          end
        end
        if not (strategy(ctx).keeps_promoted and (ctx.outputs.apply or {}).default)
           and not common.kept_for_resume(ctx, { restored_name(ctx) }, "apply") then
          common.drop_branch(ctx, restored_name(ctx))
        end
        return {}
      end },
  },
}
