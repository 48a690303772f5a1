-- Puts a branch back as it was before a finished recovery run of
-- accidental-deletion or corruption (drctl undo RUN_ID runs this with
-- run = RUN_ID, on the target that run acted on). What the run did, its
-- apply step's outputs say:
--   restore:  the branch is restored in place from the branch the run
--             preserved; its state now is kept as <branch>-before-undo-<run>
--   promote:  the branch that was the default before the run is the default
--             again; the promoted branch stays, with its writes
--   reinsert: exactly the rows the run inserted are deleted, by the primary
--             keys it recorded, in one transaction
-- Nothing changes before the typed confirmation, which says what the undo
-- loses: what was written since the recovery.
local neon = require "neon"
local dr = require "dr"
local json = require "json"
local pg = require "pg"
local common = require "drctl.common"

local UNDOABLE = { ["accidental-deletion"] = true, ["corruption"] = true }

local function is_set(v) return v ~= nil and v ~= json.null end

-- The run to undo, checked again here: drctl undo checks the trail before
-- starting, and a resumed undo finds the same run (its own link is in
-- undone_by, not done yet).
local function original(ctx)
  local rec = dr.run(ctx.params.run)
  if not UNDOABLE[rec.runbook] then
    dr.fail("run " .. rec.run_id .. " is a run of " .. rec.runbook .. ": only accidental-deletion and corruption "
            .. "runs can be undone")
  end
  if rec.status ~= "done" then dr.fail("run " .. rec.run_id .. " is " .. rec.status .. ", not done: it cannot be undone") end
  for _, u in ipairs(rec.undone_by) do
    if u.run_id ~= ctx.run_id and u.status == "done" then
      dr.fail("run " .. rec.run_id .. " was undone already, by run " .. u.run_id)
    end
  end
  local apply = rec.outputs.apply
  if not apply then dr.fail("run " .. rec.run_id .. " has no outputs for its apply step: nothing to undo") end
  return rec, apply
end

-- The branch the run recovered: the first step's outputs name it.
local function recovered_branch(rec)
  local first = rec.outputs["restore-point"] or rec.outputs["last-good"] or {}
  if not is_set(first.branch_id) then dr.fail("run " .. rec.run_id .. " does not say which branch it recovered") end
  return first.branch_id, first.branch_name
end

-- The branch with that id, or a failure saying it is gone.
local function existing_branch(ctx, id, what)
  local ok, b = pcall(neon.get_branch, ctx.params.project, id)
  if not ok then
    if common.not_found(b) then dr.fail(what .. " (" .. id .. ") is gone: the run cannot be undone") end
    error(b, 0)
  end
  return b
end

-- Row counts of every user table of a branch, through its endpoint. A
-- branch kept data-only (as a restore preserves it: data_only) gets one
-- for the count, and has every endpoint deleted afterwards, the count
-- failed or not, so it stays as it was: an endpoint found there is this
-- step's own, made by an attempt whose answer was lost or that died after
-- the creation, and must not be left behind.
local function counts_of(ctx, branch_id, data_only)
  local p = ctx.params.project
  local endpoints = neon.list_endpoints(p, branch_id) or {}
  if #endpoints > 0 then
    -- One an earlier attempt made, or began to delete, just before it
    -- died, may still be changing: what is there once it settles counts.
    common.settle(ctx, branch_id)
    endpoints = neon.list_endpoints(p, branch_id) or {}
  end
  if #endpoints == 0 then
    if not data_only then dr.fail("the branch " .. branch_id .. " has no endpoint to count its rows through") end
    endpoints = { neon.create_endpoint(p, { branch_id = branch_id, type = "read_write" }) }
  end
  local ok, counts = pcall(function()
    local conn = common.connect(ctx, branch_id)
    local c = pg.row_counts(conn, pg.user_tables(conn))
    conn:close()
    return c
  end)
  if data_only then
    for _, e in ipairs(endpoints) do
      local gone, why = pcall(neon.delete_endpoint, p, e.id)
      -- Not found: an earlier attempt's deletion, just before it died, ended since.
      if not gone and not common.not_found(why) then error(why, 0) end
    end
  end
  if not ok then error(counts, 0) end
  return counts
end

local function same_counts(a, b)
  for t, n in pairs(a) do if b[t] ~= n then return false, t end end
  for t in pairs(b) do if a[t] == nil then return false, t end end
  return true
end

local function undo_kept_name(ctx, branch_name)
  return common.kept_name(branch_name, "before-undo", ctx.run_id)
end

-- What each kind of recovery needs to be undone: inspect (everything
-- checked, nothing changed), the confirmation, the change, the check.
local KINDS = {
  restore = {
    inspect = function(ctx, rec, apply, branch_id, branch_name)
      local p = ctx.params.project
      local kept = is_set(apply.kept_id) and existing_branch(ctx, apply.kept_id, "the preserved branch " .. apply.kept)
                   or neon.find_branch(p, apply.kept)
      if not kept then dr.fail("the preserved branch " .. apply.kept .. " is gone: run " .. rec.run_id .. " cannot be undone") end
      if kept.protected then
        dr.fail("the preserved branch " .. kept.name .. " is protected: drctl undo does not act on a protected branch; "
                .. "unprotect it first if it is to be restored from. Nothing was changed")
      end
      if is_set(apply.kept_updated_at) and kept.updated_at ~= apply.kept_updated_at then
        dr.fail("the preserved branch " .. kept.name .. " was changed since run " .. rec.run_id .. " (updated at "
                .. tostring(kept.updated_at) .. ", the run left it at " .. apply.kept_updated_at .. "): it may no "
                .. "longer hold the state before the recovery. Nothing was changed")
      end
      local endpoints = neon.list_endpoints(p, kept.id) or {}
      if #endpoints > 0 then
        dr.fail("the preserved branch " .. kept.name .. " has an endpoint now (" .. endpoints[1].id .. "): it may "
                .. "have been written to since run " .. rec.run_id .. ". Delete the endpoint if it was only read, "
                .. "then undo again. Nothing was changed")
      end
      existing_branch(ctx, branch_id, "the branch " .. branch_name)
      return { source_id = kept.id, source_name = kept.name }
    end,
    plan = function(ctx, branch)
      return "restore " .. branch .. " in place from the branch the run preserved; its state now is kept as "
             .. undo_kept_name(ctx, branch)
    end,
    confirm = function(ctx, i)
      return string.format("the branch %s goes back to its state before run %s (the data of %s). What was written "
                           .. "on %s since that run recovered it will no longer be on it: it stays on %s. Its "
                           .. "connection string does not change.", i.branch_name, i.run, i.source_name,
                           i.branch_name, undo_kept_name(ctx, i.branch_name))
    end,
    undo = function(ctx, i)
      local p, kept = ctx.params.project, undo_kept_name(ctx, i.branch_name)
      if neon.find_branch(p, kept) then -- a resumed undo: the restore was asked for
        common.settle(ctx, i.branch_id)
        dr.log("the restore was done already: " .. kept .. " exists")
      else
        neon.restore_branch(p, i.branch_id, { source_branch_id = i.source_id, preserve_under_name = kept })
      end
      dr.figure("restored", i.branch_name .. " from " .. i.source_name .. "; its state before the undo kept as " .. kept)
      return { kept = kept }
    end,
    check = function(ctx, i)
      local now, source = counts_of(ctx, i.branch_id), counts_of(ctx, i.source_id, true)
      local same, t = same_counts(now, source)
      if not same then
        dr.fail("after the undo " .. i.branch_name .. " has " .. tostring(now[t]) .. " rows in " .. t .. ", and "
                .. i.source_name .. " has " .. tostring(source[t]))
      end
      dr.figure("rows now", common.format_counts(now))
      common.check_schema(ctx, i.branch_id, { branch_id = i.source_id, label = i.source_name .. "'s" })
      return { counts = now, schema = "same" }
    end,
  },

  promote = {
    inspect = function(ctx, rec, apply, branch_id, branch_name)
      local previous_id = is_set(apply.previous_default_id) and apply.previous_default_id or branch_id
      local previous = existing_branch(ctx, previous_id, "the previous default branch "
                                       .. (is_set(apply.previous_default_name) and apply.previous_default_name
                                           or branch_name))
      local default = neon.default_branch(ctx.params.project)
      if default and default.id == previous.id then
        dr.fail(previous.name .. " is the default branch already: there is nothing to undo")
      end
      local promoted_id = is_set(apply.default_id) and apply.default_id or nil
      if not default or (promoted_id and default.id ~= promoted_id) or (not promoted_id and default.name ~= apply.default) then
        dr.fail("the default branch is " .. (default and default.name or "none") .. ", not " .. apply.default
                .. " that run " .. rec.run_id .. " promoted: it was changed since. Nothing was changed")
      end
      return { previous_id = previous.id, previous_name = previous.name, promoted_id = default.id,
               promoted_name = default.name }
    end,
    plan = function()
      return "make the branch that was the default before the run the default again; the promoted branch stays"
    end,
    confirm = function(_, i)
      return string.format("%s becomes the project's default branch again in place of %s. The application's "
                           .. "connection string CHANGES back to %s's endpoint; what was written on %s since run %s "
                           .. "promoted it is not on %s (it stays on %s).", i.previous_name, i.promoted_name,
                           i.previous_name, i.promoted_name, i.run, i.previous_name, i.promoted_name)
    end,
    undo = function(ctx, i)
      neon.set_default(ctx.params.project, i.previous_id)
      dr.figure("default branch", i.previous_name .. " (again)")
      return { default = i.previous_name }
    end,
    check = function(ctx, i)
      local default = neon.default_branch(ctx.params.project)
      if not default or default.id ~= i.previous_id then
        dr.fail("the default branch is " .. (default and default.name or "none") .. ", not " .. i.previous_name)
      end
      return { default = default.name }
    end,
  },

  reinsert = {
    inspect = function(ctx, rec, apply, branch_id, branch_name)
      if not is_set(apply.inserted_keys) then
        dr.fail("run " .. rec.run_id .. " recorded no keys of the rows it inserted (too many, or an older drctl): "
                .. "they cannot be told apart from the others, so it cannot be undone by key. Nothing was changed")
      end
      existing_branch(ctx, branch_id, "the branch " .. branch_name)
      local conn = common.connect(ctx, branch_id)
      local present = {}
      for t, keys in pairs(apply.inserted_keys) do present[t] = common.count_rows_by_key(conn, t, keys) end
      conn:close()
      return { keys = apply.inserted_keys, inserted = apply.inserted, present = present }
    end,
    plan = function()
      return "delete exactly the rows the run inserted, by the primary keys it recorded, in one transaction"
    end,
    confirm = function(_, i)
      return string.format("the rows run %s inserted back into %s are deleted, by primary key, in one transaction: "
                           .. "%s (there now: %s), with any change made to them since. Rows written since that "
                           .. "reference them make the undo fail and change nothing.", i.run, i.branch_name,
                           common.format_counts(i.inserted), common.format_counts(i.present))
    end,
    undo = function(ctx, i)
      local conn = common.connect(ctx, i.branch_id)
      local tables = {}
      for t in pairs(i.keys) do tables[#tables + 1] = t end
      table.sort(tables)
      local order = common.parents_first(conn, tables)
      local deleted = {}
      -- Children before the rows they reference; the same keys deleted
      -- again by a resumed undo delete nothing.
      conn:tx(function()
        for k = #order, 1, -1 do deleted[order[k]] = common.delete_rows_by_key(conn, order[k], i.keys[order[k]]) end
      end)
      dr.figure("rows deleted", common.format_counts(deleted))
      return { deleted = deleted }
    end,
    check = function(ctx, i)
      local conn = common.connect(ctx, i.branch_id)
      for t, keys in pairs(i.keys) do
        local n = common.count_rows_by_key(conn, t, keys)
        if n > 0 then dr.fail(n .. " rows of " .. t .. " that the run inserted are still there") end
      end
      return { remaining = 0 }
    end,
  },
}

local function kind_of(ctx) return KINDS[ctx.outputs.inspect.kind] end

return runbook {
  name = "undo", version = "1.0.0",
  summary = "Put a branch back as it was before a finished accidental-deletion or corruption run",
  description = "Run by drctl undo RUN_ID: restore from the preserved branch, give the default back, or delete "
                .. "the rows the run inserted.",
  params = common.params {
    run = { type = "string", required = true, doc = "the run to undo (an accidental-deletion or corruption run)" },
    -- The branch is the run's; drctl undo passes its project, database and role.
    branch = false, throwaway_ttl = false,
  },
  lock = function(ctx) return "project/" .. ctx.params.project end,
  steps = {
    { name = "inspect", idempotent = true,
      plan = function(ctx)
        return "read run " .. ctx.params.run .. " from the audit trail and check that what it did can be undone: "
               .. "its preserved branch there and unchanged, or its previous default there, or its keys recorded"
      end,
      run = function(ctx)
        local rec, apply = original(ctx)
        local strategy = rec.params.strategy
        if not KINDS[strategy] then dr.fail("run " .. rec.run_id .. " used strategy " .. tostring(strategy) .. ": drctl undo knows restore, promote and reinsert") end
        local branch_id, branch_name = recovered_branch(rec)
        local i = KINDS[strategy].inspect(ctx, rec, apply, branch_id, branch_name)
        i.kind, i.run, i.runbook = strategy, rec.run_id, rec.runbook
        i.branch_id, i.branch_name, i.recovered_at = branch_id, branch_name, rec.updated_at
        dr.figure("undoes", rec.run_id .. " (" .. rec.runbook .. ", " .. strategy .. ", finished " .. tostring(rec.updated_at) .. ")")
        return i
      end },
    { name = "undo", destructive = true, timeout = "2h",
      plan = function(ctx)
        local ok, rec = pcall(dr.run, ctx.params.run)
        if not ok or not KINDS[rec.params.strategy] then return "undo what run " .. ctx.params.run .. " did" end
        local first = rec.outputs["restore-point"] or rec.outputs["last-good"] or {}
        return KINDS[rec.params.strategy].plan(ctx, first.branch_name or "the branch")
      end,
      confirm = function(ctx)
        return { challenge = ctx.outputs.inspect.branch_name, summary = kind_of(ctx).confirm(ctx, ctx.outputs.inspect) }
      end,
      run = function(ctx) return kind_of(ctx).undo(ctx, ctx.outputs.inspect) end },
    { name = "check", idempotent = true,
      plan = function() return "check the branch is back as it was before the run" end,
      run = function(ctx) return kind_of(ctx).check(ctx, ctx.outputs.inspect) end },
  },
}
