-- The guide's weekly export to storage outside Neon: pg_dump of the branch
-- to dest (a local directory or s3://bucket/prefix), a manifest beside it,
-- the dump checked with pg_restore --list; older exports beyond `keep`
-- deleted after confirmation.
local pg = require "pg"
local dump = require "dump"
local files = require "files"
local json = require "json"
local dr = require "dr"
local common = require "drctl.common"

local function join(dest, name)
  return dest:sub(-1) == "/" and dest .. name or dest .. "/" .. name
end

local function basename(url) return url:match("[^/]+$") end

-- The urls of what is at dest, as a set (one listing, however many lookups).
local function present(ctx)
  local set = {}
  for _, f in ipairs(files.list(ctx.params.dest)) do set[f.url] = true end
  return set
end

-- The exports of this database and branch at dest, newest first.
local function exports(ctx, stem)
  local found = {}
  for _, f in ipairs(files.list(ctx.params.dest)) do
    local name = basename(f.url)
    if name:sub(1, #stem + 1) == stem .. "-" and name:sub(-5) == ".dump" then
      found[#found + 1] = { url = f.url, name = name:sub(1, -6), size = f.size }
    end
  end
  table.sort(found, function(a, b) return a.name > b.name end)
  return found
end

return runbook {
  name = "export", version = "1.0.0",
  summary = "pg_dump a branch to a directory or S3, with a manifest; keep the newest exports",
  params = common.params {
    dest = { type = "path", required = true, doc = "a local directory or s3://bucket/prefix" },
    keep = { type = "int", default = 8, doc = "how many exports of this database and branch to keep" },
    jobs = { type = "int", default = 1, doc = "pg_dump jobs (directory format only; 1 for custom)" },
    throwaway_ttl = false, -- it makes no throwaway branch
  },
  steps = {
    { name = "name", idempotent = true,
      plan = function(ctx) return "name the export <database>-<branch>-<YYYYmmdd-HHMMSS> in " .. ctx.params.dest end,
      run = function(ctx)
        local b = common.branch(ctx)
        local stem = ctx.params.database .. "-" .. b.name
        return { stem = stem, name = stem .. "-" .. os.date("!%Y%m%d-%H%M%S", math.floor(dr.time())),
                 branch_id = b.id, branch_name = b.name }
      end },
    { name = "dump", idempotent = true, timeout = "6h",
      plan = function(ctx) return "pg_dump (custom format) of the branch to " .. ctx.params.dest .. ", checked" end,
      run = function(ctx)
        local n = ctx.outputs.name
        local target = join(ctx.params.dest, n.name .. ".dump")
        -- A dump of this name is this run's own, left by an attempt that
        -- died: it cannot be trusted, it goes.
        if present(ctx)[target] then files.delete(target) end
        local uri = common.uri(ctx, n.branch_id)
        local conn = pg.connect(uri)
        local result
        -- One snapshot for the counts and the dump: they describe the same data.
        conn:tx(function()
          conn:exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
          local at = conn:query("SELECT pg_export_snapshot() AS s, now() AS t, pg_current_wal_lsn()::text AS l")[1]
          local counts = pg.row_counts(conn)
          local d = dump.pg_dump{ uri = uri, dest = ctx.params.dest, name = n.name, snapshot = at.s, check = true }
          result = { url = d.path, sha256 = d.sha256, bytes = d.bytes, pg_dump_version = d.pg_dump_version,
                     server_version = d.server_version, instant = at.t, lsn = at.l, rows = counts,
                     listed_tables = d.listed_tables }
        end)
        local tables = #common.sorted_keys(result.rows)
        if result.listed_tables ~= tables then
          dr.fail(string.format("pg_restore --list finds data for %d tables in the dump, the database has %d",
                                result.listed_tables, tables))
        end
        dr.figure("export", result.url)
        dr.figure("size (bytes)", result.bytes)
        dr.figure("sha256", result.sha256)
        dr.figure("instant", result.instant)
        return result
      end },
    { name = "manifest", idempotent = true,
      plan = function() return "write <name>.json beside the dump: database, branch, instant, LSN, sizes, sha256, rows" end,
      run = function(ctx)
        local n, d = ctx.outputs.name, ctx.outputs.dump
        local manifest = json.encode({ database = ctx.params.database, branch = n.branch_name, project = ctx.params.project,
                                       instant = d.instant, lsn = d.lsn, pg_dump_version = d.pg_dump_version,
                                       server_version = d.server_version, size = d.bytes, sha256 = d.sha256,
                                       dump = basename(d.url), rows = d.rows, run = ctx.run_id }, true)
        local where = join(ctx.params.dest, n.name .. ".json")
        if present(ctx)[where] then files.delete(where) end -- this run's own, from an attempt that died
        files.write_text(where, manifest)
        return { manifest = where }
      end },
    { name = "retention", destructive = true, idempotent = true,
      plan = function(ctx)
        local b = common.branch(ctx)
        local all = exports(ctx, ctx.params.database .. "-" .. b.name)
        local old = {}
        -- This run's export will be the newest: one fewer of the others stays.
        for i, e in ipairs(all) do if i >= ctx.params.keep then old[#old + 1] = e.name end end
        return "delete the exports of this database and branch beyond the newest " .. ctx.params.keep
               .. (#old > 0 and (": today that deletes " .. table.concat(old, ", ")) or ": today nothing")
      end,
      confirm = function(ctx)
        local old = {}
        for i, e in ipairs(exports(ctx, ctx.outputs.name.stem)) do
          if i > ctx.params.keep then old[#old + 1] = e.name end
        end
        return { challenge = ctx.outputs.name.stem,
                 summary = #old == 0 and ("nothing to delete: at most " .. ctx.params.keep .. " exports of "
                                          .. ctx.outputs.name.stem .. " at " .. ctx.params.dest)
                           or (#old .. " older exports at " .. ctx.params.dest .. " will be deleted for good: "
                               .. table.concat(old, ", ")) }
      end,
      run = function(ctx)
        local deleted, there = {}, present(ctx)
        for i, e in ipairs(exports(ctx, ctx.outputs.name.stem)) do
          if i > ctx.params.keep then
            files.delete(e.url)
            local manifest = e.url:gsub("%.dump$", ".json")
            if there[manifest] then files.delete(manifest) end
            deleted[#deleted + 1] = e.name
          end
        end
        dr.figure("old exports deleted", #deleted)
        return { deleted = deleted }
      end },
  },
}
