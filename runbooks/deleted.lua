-- A branch or the whole project deleted by mistake. Neon keeps what is
-- deleted recoverable for 7 days: one API call brings it back with the
-- same ids, endpoints and connection strings, and nothing is lost. No
-- export is restored, no point in time is chosen.
--   find:    the deleted item by name or id among the recoverable ones:
--            what it was, when it was deleted, until when it can come back
--   recover: (typed confirmation) recover it and wait for its operations
--   check:   its connection string answers again, with its tables
local neon = require "neon"
local pg = require "pg"
local dr = require "dr"
local common = require "drctl.common"

local function is_project(ctx) return ctx.params.what == "project" end

-- The deleted items that name or id matches, among those still
-- recoverable, each as { id, name, deleted_at, recoverable_until, ... }.
local function deleted_branches(ctx)
  local found = {}
  for _, b in ipairs(neon.list_deleted_branches(ctx.params.project)) do
    if b.id == ctx.params.name or b.name == ctx.params.name then
      found[#found + 1] = { id = b.id, name = b.name, parent_id = b.parent_id, deleted_at = b.recovery.deleted_at,
                            recoverable_until = b.recovery.recoverable_until,
                            deletion_method = b.recovery.deletion_method }
    end
  end
  return found
end

local function deleted_projects(ctx)
  local found = {}
  for _, p in ipairs(neon.list_recoverable_projects()) do
    if p.id == ctx.params.name or p.name == ctx.params.name then
      found[#found + 1] = { id = p.id, name = p.name, region_id = p.region_id, deleted_at = p.deleted_at,
                            recoverable_until = p.recoverable_until }
    end
  end
  return found
end

local function label(ctx, item)
  return (is_project(ctx) and "project " or "branch ") .. item.name .. " (" .. item.id .. ")"
end

-- Why nothing matches: the item is not deleted (it is there), or not
-- recoverable (never existed, or its period is over).
local function fail_not_found(ctx)
  local what = is_project(ctx) and "project" or "branch"
  local live
  if is_project(ctx) then
    live = common.find(neon.list_projects({ search = ctx.params.name }), ctx.params.name)
  else
    live = common.find(neon.list_branches(ctx.params.project, { search = ctx.params.name }), ctx.params.name)
  end
  if live then
    dr.fail("the " .. what .. " " .. ctx.params.name .. " is not deleted: it is there (" .. live.id .. ")")
  end
  local names = {}
  for _, item in ipairs(is_project(ctx) and neon.list_recoverable_projects()
                        or neon.list_deleted_branches(ctx.params.project)) do
    names[#names + 1] = item.name .. " (" .. item.id .. ")"
  end
  dr.fail("no deleted " .. what .. " named or with id " .. ctx.params.name .. " can be recovered"
          .. (is_project(ctx) and "" or (" in project " .. ctx.params.project)) .. ": it never existed, or its "
          .. "7 days are over. Recoverable now: " .. (#names > 0 and table.concat(names, ", ") or "none"))
end

-- Whether the item is back (a resumed recover finds it so).
local function is_back(ctx, item)
  local ok = pcall(is_project(ctx) and neon.get_project or neon.get_branch,
                   is_project(ctx) and item.id or ctx.params.project, item.id)
  return ok
end

-- The project and branch whose connection string is checked: the
-- recovered branch, or a recovered project's default branch.
local function checked_branch(ctx, item)
  if is_project(ctx) then
    local b = neon.default_branch(item.id)
    if not b then dr.fail("the recovered project " .. item.id .. " has no default branch") end
    return item.id, b
  end
  return ctx.params.project, neon.get_branch(ctx.params.project, item.id)
end

return runbook {
  name = "deleted", version = "1.0.0",
  summary = "Recover a branch or a project deleted by mistake (Neon keeps them 7 days)",
  description = "Finds the deleted item among the recoverable ones, recovers it with its ids and connection "
                .. "strings after a typed confirmation, and checks that it answers again.",
  params = common.params {
    what = { type = "enum", values = { "branch", "project" }, default = "branch", doc = "what was deleted" },
    name = { type = "string", required = true, doc = "the deleted branch's or project's name or id" },
    project = { type = "string", env = "NEON_PROJECT_ID", doc = "the project of the deleted branch" },
    branch = false, throwaway_ttl = false,
  },
  lock = function(ctx)
    if ctx.params.what == "project" then return "project/" .. ctx.params.name end
    return "project/" .. tostring(ctx.params.project)
  end,
  steps = {
    { name = "find", idempotent = true,
      plan = function(ctx)
        return "find the deleted " .. ctx.params.what .. " " .. ctx.params.name .. " among the recoverable ones "
               .. "and show when it was deleted and until when it can be recovered"
      end,
      run = function(ctx)
        if not is_project(ctx) and not ctx.params.project then
          dr.fail("a deleted branch is found in its project: give -p project=<id> (or NEON_PROJECT_ID)")
        end
        local found = is_project(ctx) and deleted_projects(ctx) or deleted_branches(ctx)
        if #found == 0 then fail_not_found(ctx) end
        if #found > 1 then
          local ids = {}
          for _, item in ipairs(found) do ids[#ids + 1] = item.id .. " (deleted " .. dr.show_time(item.deleted_at) .. ")" end
          dr.fail("several deleted " .. (is_project(ctx) and "projects" or "branches") .. " are named " .. ctx.params.name .. ": "
                  .. table.concat(ids, ", ") .. "; give the id with -p name=<id>")
        end
        local item = found[1]
        dr.log(label(ctx, item) .. " was deleted at " .. dr.show_time(item.deleted_at)
               .. (item.deletion_method == "ttl" and " (its TTL expired)" or "")
               .. "; it can be recovered until " .. dr.show_time(item.recoverable_until))
        dr.figure("deleted", label(ctx, item))
        dr.figure("deleted at", dr.show_time(item.deleted_at))
        dr.figure("recoverable until", dr.show_time(item.recoverable_until))
        return item
      end },

    { name = "recover", destructive = true, timeout = "30m",
      plan = function(ctx)
        return "recover the deleted " .. ctx.params.what .. " " .. ctx.params.name .. " with its ids, endpoints and "
               .. "connection strings (after a typed confirmation), and wait for its operations"
      end,
      confirm = function(ctx)
        local item = ctx.outputs.find
        return { challenge = item.name,
                 summary = string.format("%s, deleted at %s, comes back with the same id%s and connection "
                                         .. "strings. Nothing is lost or overwritten%s.", label(ctx, item),
                                         tostring(item.deleted_at), is_project(ctx) and ", branches, endpoints" or
                                         " and endpoints", is_project(ctx) and "" or
                                         "; if it expired by TTL, it no longer expires") }
      end,
      run = function(ctx)
        local item = ctx.outputs.find
        if is_back(ctx, item) then -- a resumed run: the recovery was asked for
          dr.log(label(ctx, item) .. " is back already")
        elseif is_project(ctx) then
          neon.recover_project(item.id)
        else
          neon.recover_branch(ctx.params.project, item.id)
        end
        local project, b = checked_branch(ctx, item)
        common.settle({ params = { project = project } }, b.id)
        dr.figure("recovered", label(ctx, item))
        return { project = project, branch_id = b.id }
      end },

    { name = "check", idempotent = true,
      plan = function() return "connect with its connection string and count the rows of its tables" end,
      run = function(ctx)
        local r = ctx.outputs.recover
        local endpoints = common.wake_endpoints(r.project, r.branch_id)
        if #endpoints == 0 then
          dr.log("the branch has no endpoint (it had none): its data is back, with no connection string to check")
          return { connected = false }
        end
        local uri = common.uri(ctx, r.branch_id, r.project)
        local conn = pg.connect(uri)
        local tables = pg.user_tables(conn)
        local counts = pg.row_counts(conn, tables)
        conn:close()
        dr.figure("answers on", "its endpoint " .. endpoints[1].id .. " (" .. endpoints[1].host .. "), as before")
        dr.figure("rows", common.format_counts(counts))
        return { connected = true, host = endpoints[1].host, tables = #tables, rows = counts }
      end },
  },
}
