-- A rehearsal of the guide's scenario 3 on a throwaway local PostgreSQL:
-- export the database, lose data, restore it from the export, verify.
-- Everything is real (psql, pg_dump, pg_restore); nothing is on Neon.
local dr = require "dr"

local function psql(ctx, sql)
  local r = dr.exec({ "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql },
                    { env = { PGHOST = "127.0.0.1", PGPORT = tostring(ctx.params.port),
                              PGUSER = "postgres", PGDATABASE = ctx.params.database } })
  if r.code ~= 0 then dr.fail("psql: " .. r.stderr) end
  return r.stdout
end

local function counts(ctx)
  local out = {}
  for _, t in ipairs({ "salon", "staff", "client", "booking" }) do
    out[t] = tonumber(psql(ctx, "SELECT count(*) FROM " .. t))
  end
  return out
end

return runbook {
  name = "drill", version = "1.0.0",
  summary = "Rehearse export, data loss and restore on a local PostgreSQL",
  params = {
    port = { type = "int", required = true, doc = "port of the local PostgreSQL" },
    database = { type = "string", default = "salons" },
    dump = { type = "string", required = true, doc = "file the export is written to" },
  },
  lock = function(ctx) return "local/" .. ctx.params.port .. "/" .. ctx.params.database end,
  steps = {
    { name = "export", idempotent = true,
      plan = function(ctx) return "pg_dump " .. ctx.params.database .. " to " .. ctx.params.dump end,
      run = function(ctx)
        local r = dr.exec({ "pg_dump", "-Fc", "-h", "127.0.0.1", "-p", tostring(ctx.params.port), "-U", "postgres",
                            "-f", ctx.params.dump, ctx.params.database })
        if r.code ~= 0 then dr.fail("pg_dump: " .. r.stderr) end
        local c = counts(ctx)
        dr.log(string.format("exported: %d salons, %d bookings", c.salon, c.booking))
        return { dump = ctx.params.dump, counts = c, at = dr.now() }
      end },
    { name = "incident",
      plan = function() return "simulate the incident: DELETE the bookings of salon 1 (no WHERE on salonId)" end,
      run = function(ctx)
        local deleted = psql(ctx, 'WITH d AS (DELETE FROM booking WHERE "salonId" = 1 RETURNING 1) SELECT count(*) FROM d')
        dr.log("incident: " .. deleted:gsub("%s+$", "") .. " bookings deleted")
        dr.figure("bookings deleted by the incident", tonumber(deleted))
        return { deleted = tonumber(deleted) }
      end },
    { name = "restore", destructive = true,
      plan = function(ctx) return "pg_restore --clean the export into " .. ctx.params.database end,
      confirm = function(ctx)
        local now = counts(ctx)
        local before = ctx.outputs.export.counts
        return {
          summary = string.format(
            "Restore database %s from the export taken at %s.\n" ..
            "booking goes from %d rows back to %d; anything written since the export is lost.",
            ctx.params.database, ctx.outputs.export.at, now.booking, before.booking),
          challenge = ctx.params.database,
        }
      end,
      run = function(ctx)
        local r = dr.exec({ "pg_restore", "--clean", "--if-exists", "-h", "127.0.0.1", "-p", tostring(ctx.params.port),
                            "-U", "postgres", "-d", ctx.params.database, ctx.params.dump })
        if r.code ~= 0 then dr.fail("pg_restore: " .. r.stderr) end
        return { restored = true }
      end },
    { name = "verify", idempotent = true,
      plan = function() return "compare row counts with the export" end,
      run = function(ctx)
        local now, before = counts(ctx), ctx.outputs.export.counts
        for table, n in pairs(before) do
          if now[table] ~= n then
            dr.fail(string.format("%s has %d rows, the export had %d", table, now[table], n))
          end
          dr.log(string.format("%-8s %6d rows, as exported", table, n))
        end
        dr.figure("rows per table after the restore", now)
        dr.figure("restored to the export taken at", ctx.outputs.export.at)
        return { counts = now }
      end },
  },
}
