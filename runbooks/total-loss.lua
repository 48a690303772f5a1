-- Scenario 3 of the backup guide: the Neon project is gone. From an export
-- (its manifest; default the newest at `source`), restore into a new
-- project or into an existing branch: sha256 checked first, pg_restore -j,
-- then the row counts compared with the manifest. Ends with the new
-- connection string (password hidden) and the steps to repoint the app.
-- First of all it asks the API whether the lost project is still
-- recoverable (Neon keeps a deleted project 7 days): when it is, it offers
-- the recovery, which is faster and loses nothing, and restores no export
-- unless told to (use_export).
local neon = require "neon"
local pg = require "pg"
local dump = require "dump"
local files = require "files"
local json = require "json"
local dr = require "dr"
local common = require "drctl.common"

local function newest_manifest(source)
  local newest = common.newest_export(source)
  if not newest then dr.fail("no export manifest (*.json) at " .. source) end
  return newest
end

-- The project the export was taken from, as its manifest says; nil when
-- the manifest cannot be read yet (fetch then says why).
local function exported_project(ctx)
  local ok, where = pcall(function() return ctx.params.dump or newest_manifest(ctx.params.source) end)
  if not ok or not where or where:find("^s3://") then return nil end
  local read, manifest = pcall(function() return json.decode(files.read_text(where)) end)
  return read and type(manifest) == "table" and manifest.project or nil
end

-- Whether the recover-project step brought the lost project back: the
-- export steps then have nothing to do.
local function recovered(ctx)
  return ctx.outputs["recover-project"] and ctx.outputs["recover-project"].recovered
end

local SKIPPED = { skipped = "the lost project was recovered: no export is restored" }

local function target_label(ctx)
  if ctx.params.new_project then return "the new project " .. ctx.params.new_project end
  return "the branch " .. tostring(ctx.params.target_branch) .. " of project " .. tostring(ctx.params.project)
end

return runbook {
  name = "total-loss", version = "1.0.0",
  summary = "Restore an export into a new Neon project (or an existing branch) and check it",
  -- The shared database and role; project only for target_branch, and no
  -- branch param (target_branch names it).
  params = common.params {
    dump = { type = "path", doc = "the export's manifest: a path or s3:// URL (default: the newest at source)" },
    source = { type = "path", doc = "where the exports are (a directory or s3://bucket/prefix)" },
    new_project = { type = "string", doc = "the name of the project to create and restore into" },
    project = { type = "string", env = "NEON_PROJECT_ID", doc = "the project of target_branch" },
    branch = false,
    target_branch = { type = "string", doc = "restore into this existing branch instead (its data is replaced)" },
    work = { type = "path", default = ".drctl/restore", doc = "a local folder for the downloaded dump" },
    jobs = { type = "int", default = 4, doc = "pg_restore jobs" },
    throwaway_ttl = false, -- it makes no throwaway branch
    lost_project = { type = "string", doc = "the lost project's id or name, looked for among the recoverable ones "
                                             .. "(default: the project the export was taken from)" },
    use_export = { type = "bool", default = false,
                   doc = "restore the export even when the lost project can still be recovered" },
  },
  steps = {
    { name = "recoverable", idempotent = true,
      plan = function(ctx)
        if ctx.params.use_export then return "use_export: the export is restored without looking for a recovery" end
        return "ask the API whether the lost project (" .. (ctx.params.lost_project or "the export's") .. ") is "
               .. "still recoverable: recovering it is faster than the export and loses nothing"
      end,
      run = function(ctx)
        if ctx.params.use_export then
          dr.log("use_export: the export is restored, whether or not the project can be recovered")
          return { recoverable = false }
        end
        local lost = ctx.params.lost_project or exported_project(ctx)
        if not lost then
          dr.log("no lost project to look for (its export does not name it): give -p lost_project=<id> to check")
          return { recoverable = false }
        end
        local p = common.find(neon.list_recoverable_projects(), lost)
        if not p then
          dr.log("project " .. lost .. " is not recoverable (not deleted, or its 7 days are over): the export "
                 .. "is restored")
          return { recoverable = false, looked_for = lost }
        end
        dr.log("project " .. p.name .. " (" .. p.id .. ") was deleted at " .. dr.show_time(p.deleted_at) .. " and can "
               .. "be recovered until " .. dr.show_time(p.recoverable_until) .. ": recovering it is faster than "
               .. "restoring the export, and loses nothing")
        dr.figure("recoverable", p.name .. " (" .. p.id .. "), until " .. dr.show_time(p.recoverable_until))
        return { recoverable = true, id = p.id, name = p.name, deleted_at = p.deleted_at,
                 recoverable_until = p.recoverable_until }
      end },
    { name = "recover-project", destructive = true, timeout = "30m",
      plan = function()
        return "when it is recoverable, offer to recover the lost project (typed confirmation) instead of "
               .. "restoring the export"
      end,
      confirm = function(ctx)
        local r = ctx.outputs.recoverable
        if not r.recoverable then return { skip = "the lost project is not recoverable: the export is restored" } end
        return { challenge = r.id,
                 summary = string.format("project %s (%s), deleted at %s, comes back with its branches, endpoints "
                                         .. "and connection strings: faster than the export, and nothing is lost. "
                                         .. "The export is then NOT restored. To restore the export instead, refuse, "
                                         .. "abort this run (drctl abort) and run it again with -p use_export=true.",
                                         r.name, r.id, tostring(r.deleted_at)) }
      end,
      run = function(ctx)
        local r = ctx.outputs.recoverable
        if pcall(neon.get_project, r.id) then
          dr.log("project " .. r.id .. " is back already") -- a resumed run: the recovery was asked for
        else
          neon.recover_project(r.id)
        end
        local b = neon.default_branch(r.id)
        if b then
          common.settle({ params = { project = r.id } }, b.id)
          common.wake_endpoints(r.id, b.id)
        end
        dr.figure("recovered", r.name .. " (" .. r.id .. ")")
        return { recovered = r.id, branch = b and b.id }
      end },
    { name = "fetch", idempotent = true, timeout = "6h",
      plan = function(ctx)
        return "read the manifest " .. (ctx.params.dump or ("(the newest at " .. tostring(ctx.params.source) .. ")"))
               .. ", fetch the dump and check its sha256"
      end,
      run = function(ctx)
        if recovered(ctx) then return SKIPPED end
        if not ctx.params.new_project and not ctx.params.target_branch then
          dr.fail("say where to restore: -p new_project=NAME, or -p target_branch=NAME (with project)")
        end
        if not ctx.params.dump and not ctx.params.source then
          dr.fail("say which export: -p dump=<manifest path or URL>, or -p source=<where the exports are>")
        end
        local where = ctx.params.dump or newest_manifest(ctx.params.source)
        local manifest = json.decode(files.read_text(where))
        if type(manifest) ~= "table" or not manifest.sha256 or not manifest.dump then
          dr.fail(where .. " is not an export manifest (no sha256 or dump)")
        end
        local dir = where:match("^(.*)/[^/]+$") or "."
        local remote = dir .. "/" .. manifest.dump
        local path = remote
        if remote:find("^s3://") then
          dr.exec({ "mkdir", "-p", ctx.params.work })
          path = ctx.params.work .. "/" .. manifest.dump
          local have = common.find(files.list(ctx.params.work), path, "url") ~= nil
          if have and files.sha256(path) ~= manifest.sha256 then files.delete(path); have = false end
          if not have then files.download(remote, path) end
        end
        local sha = files.sha256(path)
        if sha ~= manifest.sha256 then
          dr.fail(string.format("%s has sha256 %s, the manifest says %s: the dump is damaged", path, sha, manifest.sha256))
        end
        dr.figure("export", where)
        dr.figure("instant of the export", manifest.instant)
        return { manifest = manifest, path = path }
      end },
    { name = "target", idempotent = true, timeout = "30m",
      plan = function(ctx) return "find or create " .. target_label(ctx) end,
      run = function(ctx)
        if recovered(ctx) then return SKIPPED end
        if ctx.params.new_project then
          local p = common.find(neon.list_projects(), ctx.params.new_project, "name")
          if p then
            -- One an earlier attempt made, just before it died, may still be starting.
            local b = common.settle({ params = { project = p.id } }, neon.default_branch(p.id).id)
            return { project = p.id, branch = b.id, created = false }
          end
          local made = neon.create_project({ name = ctx.params.new_project })
          dr.figure("new project", made.project.id)
          return { project = made.project.id, branch = made.branch.id, created = true }
        end
        if not ctx.params.project then dr.fail("target_branch needs -p project=<id> (or NEON_PROJECT_ID)") end
        local b = neon.resolve_branch(ctx.params.project, ctx.params.target_branch)
        return { project = ctx.params.project, branch = b.id, created = false }
      end },
    { name = "restore", destructive = true, timeout = "12h",
      plan = function(ctx)
        return "pg_restore the dump into " .. target_label(ctx)
               .. (ctx.params.new_project and " (new: nothing there is lost)"
                   or ": its tables that the dump holds are dropped and replaced")
      end,
      confirm = function(ctx)
        if recovered(ctx) then return { skip = SKIPPED.skipped } end
        local m = ctx.outputs.fetch.manifest
        local what = string.format("the export of %s/%s taken at %s (%d bytes)", tostring(m.branch),
                                   tostring(m.database), tostring(m.instant), m.size or 0)
        if ctx.params.new_project then
          return { challenge = ctx.params.new_project,
                   summary = what .. " is restored into the new project " .. ctx.params.new_project
                             .. "; nothing there is lost (it is new)" }
        end
        return { challenge = ctx.params.target_branch,
                 summary = what .. " REPLACES the data of the branch " .. ctx.params.target_branch
                           .. ": the tables of the dump are dropped and restored there" }
      end,
      run = function(ctx)
        local t = ctx.outputs.target
        local uri = common.uri(ctx, t.branch, t.project)
        -- --clean always: a new project has nothing to drop, and a restore
        -- that died half-way leaves tables that must go before it runs again.
        local r = dump.pg_restore{ uri = uri, source = ctx.outputs.fetch.path, jobs = ctx.params.jobs, clean = true }
        dr.figure("pg_restore seconds", r.seconds)
        return { seconds = r.seconds }
      end },
    { name = "verify", idempotent = true,
      plan = function() return "compare the row counts of every table with the manifest" end,
      run = function(ctx)
        if recovered(ctx) then return SKIPPED end
        local t, m = ctx.outputs.target, ctx.outputs.fetch.manifest
        local conn = common.connect(ctx, t.branch, t.project)
        local counts = pg.row_counts(conn, common.sorted_keys(m.rows or {}))
        local wrong = {}
        for name, n in pairs(m.rows or {}) do
          dr.figure("rows of " .. name .. " (restored / manifest)", counts[name] .. " / " .. n)
          if counts[name] ~= n then wrong[#wrong + 1] = name .. " has " .. counts[name] .. ", the manifest " .. n end
        end
        if #wrong > 0 then dr.fail("the restore does not match the export: " .. table.concat(wrong, "; ")) end
        return { rows = counts }
      end },
    { name = "repoint", idempotent = true,
      plan = function() return "show the new connection string (password hidden) and how to repoint the application" end,
      run = function(ctx)
        if recovered(ctx) then
          local r = ctx.outputs["recover-project"]
          dr.log("project " .. r.recovered .. " is back with its connection strings: the application needs no change")
          return { project = r.recovered, branch = r.branch, connection = "unchanged" }
        end
        local t = ctx.outputs.target
        local uri = common.uri(ctx, t.branch, t.project)
        local shown = uri:gsub("^(%w+://[^:/@]+):[^@]+@", "%1:****@")
        dr.log("the data is back in project " .. t.project .. ". To repoint the application:")
        dr.log("  1. set its DATABASE_URL to " .. shown)
        dr.log("     (the password: neon.reveal_password, or the Neon console > Roles > " .. ctx.params.role .. ")")
        dr.log("  2. restart the application, then check a read and a write")
        dr.log("  3. set up backups on the new project again (the snapshot and export runbooks)")
        dr.figure("new connection string", shown)
        return { project = t.project, branch = t.branch, connection = shown }
      end },
  },
}
