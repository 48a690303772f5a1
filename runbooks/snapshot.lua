-- A backup now, as the guide makes them: a branch named
-- <prefix>-YYYY-MM-DD-HHMMSS from the branch, without compute (or, with
-- method=snapshot, Neon's snapshot API), at the branch's current LSN.
-- Records the instant and the LSN.
local neon = require "neon"
local pg = require "pg"
local dr = require "dr"
local common = require "drctl.common"

return runbook {
  name = "snapshot", version = "1.0.0",
  summary = "Take a backup of a branch now (a backup branch, or a Neon snapshot)",
  params = common.params {
    prefix = { type = "string", default = "backup", doc = "the backup's name is <prefix>-YYYY-MM-DD-HHMMSS" },
    method = { type = "enum", values = { "branch", "snapshot" }, default = "branch" },
    expires = { type = "duration", doc = "when set, the backup expires after this long (a branch: at most 30d)" },
    throwaway_ttl = false, -- the backup is what the run is for: it is kept, unless expires says otherwise
  },
  steps = {
    { name = "name", idempotent = true,
      plan = function(ctx) return "choose the name " .. ctx.params.prefix .. "-<now, YYYY-MM-DD-HHMMSS>" end,
      run = function(ctx)
        -- A branch's expiry that Neon would refuse fails here, before
        -- anything is made.
        if ctx.params.expires and ctx.params.method == "branch" then
          local ok, why = common.expiry(ctx.params.expires, dr.time(), "-p expires")
          if not ok then dr.fail(why) end
        end
        -- Fixed once, so that a resumed run finds the backup it made.
        local stamp = os.date("!%Y-%m-%d-%H%M%S", math.floor(dr.time()))
        local branch = common.branch(ctx)
        return { name = ctx.params.prefix .. "-" .. stamp, branch_id = branch.id, branch_name = branch.name }
      end },
    { name = "backup", idempotent = true, timeout = "30m",
      plan = function(ctx)
        return "create " .. (ctx.params.method == "branch" and "a backup branch (no compute)" or "a Neon snapshot")
               .. " of " .. (ctx.params.branch or "the default branch")
               .. (ctx.params.expires and (", expiring after " .. ctx.params.expires .. " s") or "")
      end,
      run = function(ctx)
        local n = ctx.outputs.name
        local p = ctx.params.project
        -- Whole seconds: Neon takes expires_at to the second.
        local expires_at = ctx.params.expires and dr.format_time(math.floor(dr.time() + ctx.params.expires)) or nil
        -- The source's position, and the backup made at exactly that LSN:
        -- its created_at is only to the second, and an API that makes a
        -- branch at head may not say which LSN it holds (neon-local gives
        -- parent_lsn only when asked for one), so verify-backup could not
        -- compare the source with it at the same point.
        local lsn = pg.connect(common.uri(ctx, n.branch_id)):query("SELECT pg_current_wal_lsn()::text AS l")[1].l
        local out
        if ctx.params.method == "branch" then
          local made = neon.create_branch(p, { name = n.name, parent_id = n.branch_id, parent_lsn = lsn,
                                               expires_at = expires_at })
          out = { id = made.branch.id, name = n.name, kind = "branch", instant = made.branch.created_at,
                  lsn = made.branch.parent_lsn or lsn }
        else
          local existing = common.find(neon.list_snapshots(p), n.name, "name")
          local snap = existing or neon.create_snapshot(p, n.branch_id, { name = n.name, lsn = lsn,
                                                                         expires_at = expires_at })
          out = { id = snap.id, name = n.name, kind = "snapshot", instant = snap.timestamp or snap.created_at,
                  lsn = snap.lsn or lsn }
        end
        out.expires_at = expires_at
        out.source = n.branch_name
        dr.figure("backup", out.name .. " (" .. out.kind .. ") of " .. n.branch_name)
        dr.figure("instant", out.instant)
        dr.figure("LSN", out.lsn)
        return out
      end },
  },
}
