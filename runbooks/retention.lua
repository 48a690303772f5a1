-- The guide's clean-up: backup branches and snapshots whose names start
-- with one of the prefixes, older than keep_days, go; the newest keep_last
-- always stay. Never the default branch, a protected branch, a branch with
-- children (one whose children are being deleted waits for them to go), or
-- anything whose name matches no prefix.
local neon = require "neon"
local dr = require "dr"
local common = require "drctl.common"

local function prefixes(ctx)
  local out = {}
  for p in ctx.params.prefixes:gmatch("[^,%s]+") do out[#out + 1] = p end
  return out
end

local function matches(name, list)
  for _, p in ipairs(list) do
    if name:sub(1, #p) == p then return true end
  end
  return false
end

-- An operation that has not ended yet.
local function under_way(op)
  local s = op.status
  return s ~= "finished" and s ~= "skipped" and s ~= "failed" and s ~= "error" and s ~= "cancelled"
end

-- Branches whose deletion was accepted but has not finished (a cleanup step
-- does not wait for its throwaway branches to go): the API hides them from
-- the branch list, yet refuses to delete their parent until they are gone.
-- They are found by their delete_timeline operations still under way (and,
-- where a list shows them, by current_state "deleting"), and their parent
-- by reading each one. Returns {parent id = { {id=, name=, operations=} }}.
local function deletions_under_way(p, branches)
  local ops_of, deleting = {}, {}
  for _, op in ipairs(neon.list_operations(p) or {}) do
    if op.branch_id and under_way(op) then
      ops_of[op.branch_id] = ops_of[op.branch_id] or {}
      table.insert(ops_of[op.branch_id], op)
      if op.action == "delete_timeline" then deleting[op.branch_id] = true end
    end
  end
  for _, b in ipairs(branches) do
    if b.current_state == "deleting" then deleting[b.id] = true end
  end
  local out = {}
  for _, id in ipairs(common.sorted_keys(deleting)) do
    local ok, b = pcall(neon.get_branch, p, id)
    if not ok and not common.not_found(b) then error(b, 0) end
    -- Not found: it is gone already, it holds nothing back.
    if ok and b and b.parent_id then
      out[b.parent_id] = out[b.parent_id] or {}
      table.insert(out[b.parent_id], { id = id, name = b.name, operations = ops_of[id] or {} })
    end
  end
  return out
end

-- The names of a branch's children that are not being deleted: those keep it.
local function live_children(branches, id)
  local names = {}
  for _, b in ipairs(branches) do
    if b.parent_id == id and b.current_state ~= "deleting" then names[#names + 1] = b.name end
  end
  table.sort(names)
  return names
end

local function names_of(list)
  local names = {}
  for _, c in ipairs(list) do names[#names + 1] = c.name end
  return table.concat(names, ", ")
end

-- Every backup with its age, and why it stays or goes. The policy
-- (keep_last, keep_days) decides first; a backup it would delete that
-- cannot be deleted (the default branch, protected, a child branch that is
-- not being deleted) is skipped, with the reason. A child whose deletion is
-- under way does not keep it: the deletion step waits for that child.
local function survey(ctx)
  local p = ctx.params.project
  local list, now = prefixes(ctx), dr.time()
  local branches = neon.list_branches(p)
  local going = deletions_under_way(p, branches)
  local backups = {}
  for _, b in ipairs(branches) do
    if matches(b.name, list) and b.current_state ~= "deleting" then
      local blocked
      local children = live_children(branches, b.id)
      if b.default then blocked = "the default branch"
      elseif b.protected then blocked = "protected"
      elseif #children > 0 then blocked = "has a child branch: " .. table.concat(children, ", ") end
      backups[#backups + 1] = { kind = "branch", id = b.id, name = b.name, created_at = b.created_at,
                                age_days = (now - dr.time(b.created_at)) / 86400, blocked = blocked,
                                waits_for = going[b.id] and names_of(going[b.id]) or nil }
    end
  end
  for _, s in ipairs(neon.list_snapshots(p) or {}) do
    if matches(s.name, list) then
      backups[#backups + 1] = { kind = "snapshot", id = s.id, name = s.name, created_at = s.created_at,
                                age_days = (now - dr.time(s.created_at)) / 86400 }
    end
  end
  table.sort(backups, function(a, b) return a.created_at > b.created_at end)
  local victims, skipped = {}, {}
  for i, b in ipairs(backups) do
    if i <= ctx.params.keep_last then b.keep_because = "among the newest " .. ctx.params.keep_last
    elseif b.age_days <= ctx.params.keep_days then b.keep_because = "younger than keep_days"
    elseif b.blocked then
      b.keep_because = b.blocked
      skipped[#skipped + 1] = { kind = b.kind, name = b.name, reason = b.blocked }
    end
    if not b.keep_because then
      b.blocked = nil
      victims[#victims + 1] = b
    end
  end
  return backups, victims, skipped
end

local function describe(victims)
  if #victims == 0 then return "nothing" end
  local lines = {}
  for _, v in ipairs(victims) do
    lines[#lines + 1] = string.format("%s %s (%.1f days old)", v.kind, v.name, v.age_days)
                        .. (v.waits_for and (", once the deletion under way of " .. v.waits_for .. " ends") or "")
  end
  return table.concat(lines, "; ")
end

local function describe_skipped(skipped)
  local lines = {}
  for _, s in ipairs(skipped) do lines[#lines + 1] = s.kind .. " " .. s.name .. " (" .. s.reason .. ")" end
  return table.concat(lines, "; ")
end

-- Reports a backup the policy would delete but that stays, and why.
local function report_skipped(s)
  dr.log("skipped " .. s.kind .. " " .. s.name .. ": " .. s.reason)
  dr.figure("skipped " .. s.name, s.reason)
end

-- Waits until none of these branches (whose deletion is under way) is
-- there any more: their operations first, then the branch itself.
local function wait_gone(p, children)
  for _, c in ipairs(children) do
    if #c.operations > 0 then neon.wait(c.operations) end
    local delay = 0.1
    while true do
      local ok, b = pcall(neon.get_branch, p, c.id)
      if not ok and common.not_found(b) then break end
      if not ok then error(b, 0) end
      if b.current_state == "error" then error({ message = "the deletion of " .. c.name .. " failed" }, 0) end
      dr.sleep(delay)
      delay = math.min(delay * 1.5, 2)
    end
  end
end

-- Deletes a backup branch once the deletions of its children already under
-- way have ended. Returns "deleted" or "gone", or nil and why it stays: a
-- child that is not being deleted (made since the selection), or a child
-- deletion that failed. Neon refuses a parent while a child is there, so a
-- refusal that names children is looked at again, a few times.
local function delete_backup_branch(p, v)
  local refused
  for attempt = 1, 5 do
    local current = neon.find_branch(p, v.name)
    if not current or current.id ~= v.id then return "gone" end
    local branches = neon.list_branches(p)
    local children = live_children(branches, v.id)
    if #children > 0 then return nil, "has a child branch: " .. table.concat(children, ", ") end
    local going = deletions_under_way(p, branches)[v.id]
    if going then
      dr.log("waiting for the deletion under way of " .. names_of(going) .. " (children of " .. v.name .. ")")
      local ok, e = pcall(wait_gone, p, going)
      if not ok then
        return nil, "the deletion of its child " .. names_of(going) .. " did not end well: " .. common.message_of(e)
      end
    end
    local ok, e = pcall(neon.delete_branch, p, v.id)
    if ok then return "deleted" end
    local message = common.message_of(e)
    if not (type(e) == "table" and e.status == 400 and message:find("child")) then error(e, 0) end
    refused = message
    dr.sleep(attempt)
  end
  return nil, "Neon still refuses it: " .. refused
end

return runbook {
  name = "retention", version = "1.0.0",
  summary = "Delete old backup branches and snapshots, keeping the newest",
  params = common.params {
    prefixes = { type = "string", default = "backup-,auto-backup-,github-backup-",
                 doc = "comma-separated name prefixes of backups" },
    keep_days = { type = "int", default = 30, doc = "backups younger than this stay" },
    keep_last = { type = "int", default = 7, doc = "the newest this many always stay" },
    throwaway_ttl = false, -- it makes no throwaway branch
  },
  lock = function(ctx) return "project/" .. ctx.params.project end,
  steps = {
    { name = "select", idempotent = true,
      plan = function(ctx)
        local _, victims, skipped = survey(ctx)
        return "would delete " .. #victims .. ": " .. describe(victims)
               .. (#skipped > 0 and ("; skipped, though old enough: " .. describe_skipped(skipped)) or "")
      end,
      run = function(ctx)
        local backups, victims, skipped = survey(ctx)
        for _, b in ipairs(backups) do
          dr.log(string.format("%-8s %-40s %6.1f days  %s", b.kind, b.name, b.age_days,
                               b.keep_because and ("kept: " .. b.keep_because)
                               or ("DELETE" .. (b.waits_for and (" (after the deletion under way of " .. b.waits_for
                                                                 .. ")") or ""))))
        end
        dr.figure("backups found", #backups)
        dr.figure("to delete", #victims)
        for _, s in ipairs(skipped) do report_skipped(s) end
        return { victims = victims, found = #backups, skipped = skipped }
      end },
    { name = "delete", destructive = true, idempotent = true,
      plan = function() return "delete the backups selected above, one by one" end,
      confirm = function(ctx)
        local victims = ctx.outputs.select.victims
        return { challenge = ctx.params.project,
                 summary = #victims .. " backups of project " .. ctx.params.project .. " will be deleted for good: "
                           .. describe(victims) }
      end,
      run = function(ctx)
        local p = ctx.params.project
        local deleted, skipped = {}, {}
        for _, v in ipairs(ctx.outputs.select.victims) do
          local why
          if v.kind == "branch" then
            local _, reason = delete_backup_branch(p, v)
            why = reason
          else
            if common.find(neon.list_snapshots(p), v.id, "id") then neon.delete_snapshot(p, v.id) end
          end
          if why then
            skipped[#skipped + 1] = { kind = v.kind, name = v.name, reason = why }
            report_skipped(skipped[#skipped])
          else
            deleted[#deleted + 1] = v.name
            dr.log("deleted " .. v.kind .. " " .. v.name)
          end
        end
        dr.figure("deleted", #deleted)
        return { deleted = deleted, skipped = skipped }
      end },
  },
}
