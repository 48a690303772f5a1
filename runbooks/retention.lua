-- The guide's clean-up: backup branches and snapshots whose names start
-- with one of the prefixes, older than keep_days, go; the newest keep_last
-- always stay. Never the default branch, a protected branch, a branch with
-- children, or anything whose name matches no prefix.
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

-- Every backup with its age, and why it stays or goes.
local function survey(ctx)
  local p = ctx.params.project
  local list, now = prefixes(ctx), dr.time()
  local branches = neon.list_branches(p)
  local parents = {}
  for _, b in ipairs(branches) do if b.parent_id then parents[b.parent_id] = true end end
  local backups = {}
  for _, b in ipairs(branches) do
    if matches(b.name, list) then
      local why
      if b.default then why = "the default branch"
      elseif b.protected then why = "protected"
      elseif parents[b.id] then why = "has child branches" end
      backups[#backups + 1] = { kind = "branch", id = b.id, name = b.name, created_at = b.created_at,
                                age_days = (now - dr.time(b.created_at)) / 86400, keep_because = why }
    end
  end
  for _, s in ipairs(neon.list_snapshots(p) or {}) do
    if matches(s.name, list) then
      backups[#backups + 1] = { kind = "snapshot", id = s.id, name = s.name, created_at = s.created_at,
                                age_days = (now - dr.time(s.created_at)) / 86400 }
    end
  end
  table.sort(backups, function(a, b) return a.created_at > b.created_at end)
  local victims = {}
  for i, b in ipairs(backups) do
    if i <= ctx.params.keep_last then b.keep_because = b.keep_because or "among the newest " .. ctx.params.keep_last
    elseif b.age_days <= ctx.params.keep_days then b.keep_because = b.keep_because or "younger than keep_days" end
    if not b.keep_because then victims[#victims + 1] = b end
  end
  return backups, victims
end

local function describe(victims)
  if #victims == 0 then return "nothing" end
  local lines = {}
  for _, v in ipairs(victims) do
    lines[#lines + 1] = string.format("%s %s (%.1f days old)", v.kind, v.name, v.age_days)
  end
  return table.concat(lines, "; ")
end

return runbook {
  name = "retention", version = "1.0.0",
  summary = "Delete old backup branches and snapshots, keeping the newest",
  params = common.params {
    prefixes = { type = "string", default = "backup-,auto-backup-,github-backup-",
                 doc = "comma-separated name prefixes of backups" },
    keep_days = { type = "int", default = 30, doc = "backups younger than this stay" },
    keep_last = { type = "int", default = 7, doc = "the newest this many always stay" },
  },
  lock = function(ctx) return "project/" .. ctx.params.project end,
  steps = {
    { name = "select", idempotent = true,
      plan = function(ctx)
        local _, victims = survey(ctx)
        return "would delete " .. #victims .. ": " .. describe(victims)
      end,
      run = function(ctx)
        local backups, victims = survey(ctx)
        for _, b in ipairs(backups) do
          dr.log(string.format("%-8s %-40s %6.1f days  %s", b.kind, b.name, b.age_days,
                               b.keep_because and ("kept: " .. b.keep_because) or "DELETE"))
        end
        dr.figure("backups found", #backups)
        dr.figure("to delete", #victims)
        return { victims = victims, found = #backups }
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
        local deleted = {}
        for _, v in ipairs(ctx.outputs.select.victims) do
          if v.kind == "branch" then
            if neon.find_branch(p, v.name) then neon.delete_branch(p, v.id) end
          else
            local still = false
            for _, s in ipairs(neon.list_snapshots(p)) do still = still or s.id == v.id end
            if still then neon.delete_snapshot(p, v.id) end
          end
          deleted[#deleted + 1] = v.name
          dr.log("deleted " .. v.kind .. " " .. v.name)
        end
        dr.figure("deleted", #deleted)
        return { deleted = deleted }
      end },
  },
}
