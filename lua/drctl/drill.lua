-- A drill: a scenario's real runbook rehearsed on a copy of production.
--
--   copy      a branch of the production branch as it is now (with a TTL)
--   prepare   the writer's tables on the copy; the writer starts
--   incident  the copy's state just before it (row counts and checksums,
--             writes held still), then the incident itself, on the copy
--   <the scenario's own steps, with its params pointed at the copy>
--   measure   RTO, RPO, and every table of the recovered branch against the
--             copy just before the incident
--   drill-cleanup  everything the drill made deleted, and checked gone
--
-- What keeps production safe is not this file: the engine refuses any
-- change to what the drill did not make (engine/drill.h).
local neon = require "neon"
local pg = require "pg"
local dr = require "dr"
local dump = require "dump"
local files = require "files"
local json = require "json"
local drill = require "drill"
local common = require "drctl.common"

local M = {}

local WRITER = { rows = "drctl_drill_rows", ops = "drctl_drill_ops" }
-- The incident's own record on the copy, committed with it: an attempt
-- that dies after the incident leaves it, and the step's next attempt
-- reads it instead of making a second incident.
local INCIDENT = "drctl_drill_incident"
-- Commit times and the times writes record differ by a few milliseconds.
local EPSILON = 0.05

-- The step whose end is the end of the recovery (RTO).
local function end_step(scenario)
  local names = {}
  for _, s in ipairs(scenario.steps) do names[s.name] = true end
  if names.check then return "check" end
  if names.verify then return "verify" end
  for i = #scenario.steps, 1, -1 do
    if not scenario.steps[i].always then return scenario.steps[i].name end
  end
end

local function is_writer_table(t)
  local bare = t:gsub('"', ""):gsub("^public%.", "")
  return bare == WRITER.rows or bare == WRITER.ops
end

local function copy_name(ctx) return common.name("drill", ctx) end

-- ---- the copy's data ---------------------------------------------------------

local function copy_uri(ctx)
  return common.uri(ctx, ctx.outputs.copy.copy_id)
end

-- Per table: rows and an order-independent checksum of all its rows (the
-- sum of a 64-bit hash of each row's text).
local function fingerprints(conn, tables)
  local out = {}
  for _, t in ipairs(tables) do
    local r = conn:query("SELECT count(*) AS n, coalesce(sum(hashtextextended(x::text, 0)), 0)::text AS sum FROM "
                         .. t .. " x")[1]
    out[t] = { rows = r.n, sum = r.sum }
  end
  return out
end

-- The writer's ops a branch holds: {seq = epoch}, and how many.
local function ops_of(conn)
  local rows = conn:query("SELECT seq::text AS seq, extract(epoch FROM at)::float8 AS at FROM " .. WRITER.ops)
  local out = {}
  for _, r in ipairs(rows) do out[r.seq] = r.at end
  return out, #rows
end

-- Whether the writer's rows are exactly what its ops say they are.
local function writer_consistent(conn)
  local r = conn:query(string.format([[
    SELECT (SELECT count(*) FROM %s) AS rows,
           (SELECT coalesce(sum(hashtextextended(x::text, 0)), 0)::text FROM %s x) AS sum,
           (SELECT count(*) FROM (SELECT row_id FROM %s GROUP BY row_id HAVING bool_or(op = 'i')) r) AS want_rows,
           (SELECT coalesce(sum(hashtextextended(ROW(r.id, r.n)::text, 0)), 0)::text
              FROM (SELECT row_id AS id, (count(*) FILTER (WHERE op = 'u'))::int AS n
                      FROM %s GROUP BY row_id HAVING bool_or(op = 'i')) r) AS want_sum]],
    WRITER.rows, WRITER.rows, WRITER.ops, WRITER.ops))[1]
  return r.rows == r.want_rows and r.sum == r.want_sum, r
end

-- ---- the incidents ----------------------------------------------------------------

-- The largest table with a primary key (by size), that no foreign key
-- references when `unreferenced`, and that has at least 10 rows.
local function largest_table(conn, unreferenced)
  local rows = conn:query([[
    SELECT c.oid::regclass::text AS name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
       AND c.relname NOT LIKE 'drctl\_drill\_%'
       AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
       AND (NOT $1 OR NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.confrelid = c.oid
                                                                  AND f.conrelid <> c.oid))
     ORDER BY pg_total_relation_size(c.oid) DESC, 1]], unreferenced)
  for _, r in ipairs(rows) do
    local n = conn:query("SELECT count(*) AS n FROM " .. r.name)[1].n
    if n >= 10 then return r.name, n end
  end
  return nil
end

local function default_deletion(conn)
  local t, n = largest_table(conn, true)
  if not t then t, n = largest_table(conn, false) end
  if not t then
    dr.fail("no table with a primary key and at least 10 rows to delete from: give -p incident_sql=\"DELETE ...\"")
  end
  return string.format("DELETE FROM %s WHERE ctid = ANY (ARRAY(SELECT ctid FROM %s ORDER BY random() LIMIT %d))",
                       t, t, n // 10), t
end

-- A nullable column outside the primary key of the largest table, nulled
-- on 10% of its rows; the check counts its NULLs against what was there.
local function default_corruption(conn)
  local t = largest_table(conn, false)
  if not t then dr.fail("no table with a primary key and at least 10 rows: give -p corruption_sql= and -p check_sql=") end
  local col = conn:query([[
    SELECT quote_ident(a.attname) AS c FROM pg_attribute a
     WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped AND NOT a.attnotnull
       AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary
                                                 AND a.attnum = ANY (i.indkey))
     ORDER BY a.attnum LIMIT 1]], t)[1]
  if not col then
    dr.fail("the table " .. t .. " has no nullable column outside its key to corrupt: give -p corruption_sql= "
            .. "and -p check_sql=")
  end
  local c = col.c
  local r = conn:query(string.format("SELECT count(*) FILTER (WHERE %s IS NULL) AS nulls, count(*) FILTER (WHERE %s "
                                     .. "IS NOT NULL) AS set FROM %s", c, c, t))[1]
  local n = math.max(1, r.set // 10)
  return string.format("UPDATE %s SET %s = NULL WHERE ctid = ANY (ARRAY(SELECT ctid FROM %s WHERE %s IS NOT NULL "
                       .. "ORDER BY random() LIMIT %d))", t, c, t, c, n),
         string.format("SELECT count(*) <= %d FROM %s WHERE %s IS NULL", r.nulls, t, c), t .. "." .. c
end

-- An export of the copy into the drill's own folder, in the export
-- runbook's form (a custom-format dump and its manifest).
local function export_copy(ctx, conn, uri)
  local dir = files.run_folder() .. "/export-" .. ctx.run_id:lower()
  dr.exec({ "mkdir", "-p", dir })
  local name = ctx.params.database .. "-" .. copy_name(ctx)
  local result
  conn:tx(function()
    conn:exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    -- the snapshot is taken as this statement starts: that is the instant
    local at = conn:query("SELECT pg_export_snapshot() AS s, statement_timestamp() AS t, "
                          .. "pg_current_wal_lsn()::text AS l")[1]
    local counts = pg.row_counts(conn)
    local d = dump.pg_dump{ uri = uri, dest = dir, name = name, snapshot = at.s, check = true }
    result = { url = d.path, sha256 = d.sha256, bytes = d.bytes, instant = at.t, lsn = at.l, rows = counts,
               pg_dump_version = d.pg_dump_version, server_version = d.server_version }
  end)
  local manifest = dir .. "/" .. name .. ".json"
  files.write_text(manifest, json.encode({ database = ctx.params.database, branch = copy_name(ctx),
                                          project = ctx.params.project, instant = result.instant, lsn = result.lsn,
                                          pg_dump_version = result.pg_dump_version,
                                          server_version = result.server_version, size = result.bytes,
                                          sha256 = result.sha256, dump = result.url:match("[^/]+$"),
                                          rows = result.rows, run = ctx.run_id }, true))
  return manifest, result.instant, dir
end

-- The incidents, one a scenario: each records what it did in `out` and
-- returns the SQL to run on the copy with writes held (nil: none).

local function delete_rows(ctx, conn, _, out)
  local sql = ctx.params.incident_sql
  if not sql or sql == "" then sql, out.target = default_deletion(conn) end
  return sql
end

local function corrupt_rows(ctx, conn, _, out)
  local sql
  sql, out.check_sql = ctx.params.corruption_sql, ctx.params.check_sql
  if not sql or sql == "" then
    local check
    sql, check, out.target = default_corruption(conn)
    out.check_sql = out.check_sql or check
  elseif not out.check_sql then
    dr.fail("-p corruption_sql needs -p check_sql (a query true when the data is sound)")
  end
  return sql
end

-- The project taken as lost: the export to restore is the team's own when
-- given (or found at source), else one of the copy, made now.
local function lose_the_project(ctx, conn, uri, out)
  local given = ctx.params.dump or common.newest_export(ctx.params.source)
  if not given then
    out.manifest, out.restore_point, out.export_dir = export_copy(ctx, conn, uri)
    dr.log("exported the copy: " .. out.manifest .. " at " .. out.restore_point)
    dr.sleep(2) -- writes after the export: what a total loss loses
  else
    -- the team's own export, taken before the copy existed: what it holds
    -- is known by its manifest's row counts only
    local m = json.decode(files.read_text(given))
    out.manifest, out.restore_point, out.manifest_rows = given, m.instant, m.rows
    dr.log("the export to restore: " .. given .. " (taken at " .. tostring(m.instant) .. ")")
  end
  return nil
end

-- The branch the recovery left the data on: {project=, branch=, label=}.
-- A recovery on a branch leaves it on the copy, or on the branch it
-- promoted; total-loss on the project it made.
local function recovered_on_branch(ctx)
  local s = drill.scope()
  if s.default ~= json.null and s.default then
    return { project = ctx.params.project, branch = s.default, label = "the promoted branch " .. s.default }
  end
  return { project = ctx.params.project, branch = ctx.outputs.copy.copy_id, label = ctx.outputs.copy.copy_name }
end

local function recovered_in_new_project(ctx)
  local t = ctx.outputs.target
  return { project = t.project, branch = t.branch, label = "the new project " .. t.project }
end

-- The branch a recovery on a branch works on: the copy.
local function copy_branch(ctx)
  return (ctx.outputs.copy or {}).copy_id or (ctx.plan and copy_name(ctx)) or nil
end

local function recorded_then(what)
  return "record every table of the copy (rows, checksum) with writes held, then " .. what .. ", on the copy"
end

-- What the drill does differently for each scenario, in one entry:
--   provided        the scenario's params the drill gives, not the operator
--                   (false: passed through even so)
--   params          the drill's own params for the incident
--   on_branch       the recovery branches from the copy's history (which
--                   must reach the restore point first)
--   margin          seconds the restore point lies before the incident
--   overrides       the scenario's params, pointed at the copy
--   incident_plan   the incident step's plan
--   incident        the incident itself (above)
--   recovered       where the recovery left the data
--   restore_point   the instant the data went back to
--   loses_writes    whether the strategy is documented to lose the writes
--                   after the restore point (else: none)
local SCENARIOS = {
  ["accidental-deletion"] = {
    provided = { incident_time = true },
    params = { incident_sql = { type = "string",
                                doc = "the incident (default: 10% of the rows of the largest table deleted)" } },
    on_branch = true,
    margin = function(ctx) return ctx.params.margin or 0 end, -- a runbook of that name may not take one
    overrides = function(ctx)
      return { branch = copy_branch(ctx),
               incident_time = (ctx.outputs.incident or {}).incident_time or dr.now() }
    end,
    incident_plan = function(ctx)
      return recorded_then(ctx.params.incident_sql or "delete 10% of the rows of the largest table")
    end,
    incident = delete_rows,
    recovered = recovered_on_branch,
    restore_point = function(ctx) return ctx.outputs["restore-point"].restore_point end,
    loses_writes = function(ctx) return ctx.params.strategy ~= "reinsert" end,
  },
  corruption = {
    provided = { search_from = true, last_good = true },
    params = { corruption_sql = { type = "string", doc = "the corruption (default: a column nulled on 10% of the rows "
                                                         .. "of the largest table, with the matching check_sql)" } },
    on_branch = true,
    margin = function() return 0 end,
    overrides = function(ctx)
      return { branch = copy_branch(ctx), search_from = (ctx.outputs.prepare or {}).good_since or dr.now(),
               check_sql = (ctx.outputs.incident or {}).check_sql or ctx.params.check_sql }
    end,
    incident_plan = function(ctx)
      return recorded_then(ctx.params.corruption_sql or "null a column on 10% of the largest table")
    end,
    incident = corrupt_rows,
    recovered = recovered_on_branch,
    restore_point = function(ctx) return ctx.outputs["last-good"].at end,
    loses_writes = function() return true end,
  },
  ["total-loss"] = {
    provided = { new_project = true, target_branch = true, project = false },
    params = {},
    on_branch = false,
    margin = function() return 0 end,
    overrides = function(ctx)
      return { new_project = copy_name(ctx),
               dump = (ctx.outputs.incident or {}).manifest or ctx.params.dump
                      or (ctx.plan and "<the drill's export>" or nil) }
    end,
    incident_plan = function(ctx)
      return ctx.params.dump and ("restore " .. ctx.params.dump .. " as if the project were lost")
             or "export the copy, let writes go on, then take the project as lost"
    end,
    incident = lose_the_project,
    recovered = recovered_in_new_project,
    restore_point = function(ctx) return ctx.outputs.incident.restore_point end,
    loses_writes = function() return true end,
  },
}

-- ---- what the scenario is given -------------------------------------------------------

local function scenario_ctx(ctx, kind)
  local c, p = {}, {}
  for k, v in pairs(ctx) do c[k] = v end
  for k, v in pairs(ctx.params) do p[k] = v end
  for k, v in pairs(kind.overrides(ctx)) do p[k] = v end
  -- One TTL for every branch of the drill: the scenario's throwaway
  -- branches expire as the copy does.
  p.throwaway_ttl = ctx.params.ttl
  c.params = p
  return c
end

-- ---- the drill's own steps ------------------------------------------------------------------

local function real_default(project)
  drill.clear_default()
  return neon.default_branch(project)
end

local function step_copy(ctx)
  -- A TTL Neon would refuse fails here, before anything is made.
  local ok, why = common.expiry(ctx.params.ttl, dr.time(), "-p ttl (or DRCTL_THROWAWAY_TTL, or the throwaway_ttl setting)")
  if not ok then dr.fail(why) end
  local source = common.branch(ctx)
  local t0 = drill.clock()
  local made = neon.create_branch(ctx.params.project, { name = copy_name(ctx), parent_id = source.id,
                                                         endpoints = { { type = "read_write" } } })
  local seconds = drill.clock() - t0
  local default = neon.default_branch(ctx.params.project)
  dr.log("copy " .. made.branch.name .. " of " .. source.name .. " made in " .. string.format("%.1f", seconds)
         .. " s; it expires at " .. tostring(made.branch.expires_at or drill.scope().expires_at or "?"))
  dr.figure("copy of " .. source.name .. " made in (s)", string.format("%.1f", seconds))
  return { source_id = source.id, source_name = source.name, copy_id = made.branch.id, copy_name = made.branch.name,
           copy_seconds = seconds, default_id = default and default.id or json.null,
           expires_at = made.branch.expires_at or json.null,
           created_at = made.branch.created_at }
end

-- The copy's history must reach the restore point. On Neon it starts when
-- the branch is made; a stand-in may start it a little later. One branch at
-- "now" that the target accepts proves it reaches; it goes at once.
-- Each try makes a new probe: one left by a killed run or by a failed try
-- (still pending, or in error) says nothing about now, and waiting on it
-- could last as long as it stays so. Such a probe is deleted if it can be;
-- the cleanup deletes the rest, as their names carry the run's.
local function new_probe_name(p, ctx, try)
  while true do
    local name = common.name("history" .. try, ctx)
    local old = neon.find_branch(p, name)
    if not old then return name, try end
    pcall(neon.request, "DELETE", "/projects/" .. neon.escape(p) .. "/branches/" .. neon.escape(old.id), nil,
          { wait = false })
    try = try + 1
  end
end

local function wait_for_history(ctx)
  local p, copy = ctx.params.project, ctx.outputs.copy
  local last, give_up, try = nil, drill.clock() + 600, 0
  while drill.clock() < give_up do
    local name
    name, try = new_probe_name(p, ctx, try + 1)
    local at = dr.format_time(drill.clock() - 0.1)
    local ok, e = pcall(neon.create_branch, p, { name = name, parent_id = copy.copy_id, parent_timestamp = at })
    if ok then
      common.drop_branch(ctx, name)
      return at
    end
    if type(e) ~= "table" or e.code == "DRILL_REFUSED" then error(e, 0) end
    last = e.message or tostring(e.status)
    dr.sleep(0.5)
  end
  dr.fail("the history of the copy " .. copy.copy_name .. " never became reachable in 10 minutes (the last answer: "
          .. tostring(last) .. "): the recovery could not branch from it at a past instant")
end

local function step_prepare(ctx, kind)
  if kind.on_branch then wait_for_history(ctx) end
  local conn = pg.connect(copy_uri(ctx))
  conn:exec("CREATE TABLE IF NOT EXISTS " .. WRITER.rows .. " (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0)")
  conn:exec("CREATE TABLE IF NOT EXISTS " .. WRITER.ops .. " (seq bigint PRIMARY KEY, row_id bigint NOT NULL, "
            .. "op text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())")
  conn:exec("CREATE TABLE IF NOT EXISTS " .. INCIDENT .. " (run_id text PRIMARY KEY, at text NOT NULL, "
            .. "detail text NOT NULL)")
  local good_since = conn:query("SELECT clock_timestamp() AS t")[1].t
  if ctx.params.write_rate > 0 then drill.writer_start(copy_uri(ctx), ctx.params.write_rate) end
  -- The restore point must fall inside the copy's history, after the
  -- writer began: wait past the margin.
  local wait = 2 + kind.margin(ctx)
  dr.log(string.format("writer: %d writes a second on %s; the incident in %d s", ctx.params.write_rate,
                       ctx.outputs.copy.copy_name, wait))
  dr.sleep(wait)
  return { good_since = good_since, write_rate = ctx.params.write_rate }
end

-- The tables a drill measures: every user table but the incident's record.
local function measured_tables(conn)
  local out = {}
  for _, t in ipairs(pg.user_tables(conn)) do
    if t:gsub('"', ""):gsub("^public%.", "") ~= INCIDENT then out[#out + 1] = t end
  end
  return out
end

-- Every table's fingerprint and the writer's ops, as CONN sees them.
local function record_state(conn, out)
  out.tables = measured_tables(conn)
  out.baseline = fingerprints(conn, out.tables)
  local ops = conn:query("SELECT seq::text AS seq, extract(epoch FROM at)::float8 AS at, op FROM " .. WRITER.ops
                         .. " ORDER BY seq")
  out.ops = {}
  for _, r in ipairs(ops) do out.ops[#out.ops + 1] = { r.seq, r.at, r.op } end
end

-- The incident an earlier attempt made and recorded, then died before the
-- step was done: the state it hit is read back from the copy's history at
-- its instant (the writes were held from before that instant until the
-- incident committed, so that state is the one it hit, exactly).
local function incident_made_before(ctx, conn)
  local rec = conn:query("SELECT at, detail FROM " .. INCIDENT .. " WHERE run_id = $1", ctx.run_id)[1]
  if not rec then return nil end
  local out = json.decode(rec.detail)
  dr.log("the incident was made at " .. out.incident_time .. " by an earlier attempt; the state it hit is read "
         .. "from the copy's history at that instant")
  local p, name = ctx.params.project, common.name("incident", ctx)
  common.drop_branch(ctx, name) -- an attempt before may have died while reading it
  local made = neon.create_branch(p, { name = name, parent_id = ctx.outputs.copy.copy_id,
                                       parent_timestamp = dr.format_time(dr.time(out.incident_time)),
                                       endpoints = { { type = "read_write" } } })
  local ok, e = pcall(function()
    local then_conn = common.connect(ctx, made.branch.id)
    record_state(then_conn, out)
    then_conn:close()
  end)
  common.drop_branch(ctx, name)
  if not ok then error(e, 0) end
  return out
end

local function step_incident(ctx, kind)
  local uri = copy_uri(ctx)
  local conn = pg.connect(uri)
  local out = incident_made_before(ctx, conn)
  if out then return out end
  out = {}
  local sql = kind.incident(ctx, conn, uri, out)
  -- The state the incident hits, exactly: a snapshot taken with the writes
  -- held still, then the incident (committed with its record), then the
  -- writes go on while the snapshot is read (on a large database that
  -- takes a while).
  local snap = pg.connect(uri)
  snap:tx(function()
    snap:exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    conn:query("SELECT pg_advisory_lock($1)", drill.lock_key)
    snap:query("SELECT 1 AS taken")
    out.incident_time = conn:query("SELECT clock_timestamp() AS t")[1].t
    if sql then
      out.incident_sql = sql
      conn:tx(function()
        out.affected = conn:exec(sql)
        conn:exec("INSERT INTO " .. INCIDENT .. " (run_id, at, detail) VALUES ($1, $2, $3)", ctx.run_id,
                  out.incident_time, json.encode(out))
      end)
    end
    conn:query("SELECT pg_advisory_unlock($1)", drill.lock_key)
    record_state(snap, out)
  end)
  if sql then
    dr.log("incident on the copy at " .. out.incident_time .. ": " .. sql .. " (" .. out.affected .. " rows)")
  else
    dr.log("incident at " .. out.incident_time .. ": the project is taken as lost")
  end
  dr.figure("incident", out.incident_time)
  return out
end

local function rto(ctx, scenario_steps, last)
  local tl = ctx.timeline or {}
  local first = tl[scenario_steps[1]]
  local t0 = first and first.started_at and dr.time(first.started_at)
  local t1 = tl[last] and tl[last].ended_at and dr.time(tl[last].ended_at)
  local shares = {}
  for _, name in ipairs(scenario_steps) do
    local s = tl[name]
    if s and s.started_at and s.ended_at then
      shares[#shares + 1] = { step = name, seconds = dr.time(s.ended_at) - dr.time(s.started_at) }
    end
    if name == last then break end
  end
  return t0 and t1 and (t1 - t0) or json.null, shares
end

-- The writer's totals when the end of the recovery stopped it.
local writer_totals

local function step_measure(ctx, kind, scenario_steps, last)
  local stats = drill.writer_stop() or writer_totals
  local inc = ctx.outputs.incident
  local rec = kind.recovered(ctx)
  local conn = common.connect(ctx, rec.branch, rec.project)
  local rp = kind.restore_point(ctx)
  local rp_t, inc_t = dr.time(rp), dr.time(inc.incident_time)
  local exact, rows, all_match = {}, {}, true
  local now_tables = {}
  for _, t in ipairs(pg.user_tables(conn)) do now_tables[t] = true end
  for _, t in ipairs(inc.tables) do
    local b = inc.baseline[t]
    local e = { table = t, baseline_rows = b.rows }
    local expected = inc.manifest_rows and inc.manifest_rows[t]
    if inc.manifest_rows and is_writer_table(t) then
      e.match, e.skipped, e.note = true, true, "made by the drill after the export: not in it"
    elseif inc.manifest_rows then
      -- an export older than the copy: its manifest says what it holds
      local n = now_tables[t] and pg.row_counts(conn, { t })[t] or 0
      e.recovered_rows, e.match = n, expected ~= nil and n == expected
      e.note = string.format("%s rows in the export's manifest; by count only (the copy at the export's instant "
                             .. "is not kept)", tostring(expected))
      rows[t] = math.max(0, b.rows - n)
    elseif not now_tables[t] then
      e.recovered_rows, e.match, e.note = 0, false, "missing from the recovered branch"
    elseif is_writer_table(t) then
      e.writer = true
    else
      local r = fingerprints(conn, { t })[t]
      e.recovered_rows, e.match = r.rows, r.rows == b.rows and r.sum == b.sum
      e.note = e.match and "same rows" or (r.rows == b.rows and "same count, different content" or "rows differ")
      rows[t] = 0
    end
    exact[#exact + 1] = e
  end
  -- The writer's writes: those before the incident that the recovered
  -- branch lacks are the data lost; they must be exactly the ones after
  -- the restore point (or none, for a strategy that loses none).
  local have = inc.manifest_rows and {} or ops_of(conn)
  -- A write is lost by a restore to an instant when it committed after
  -- it; the time it records comes a few milliseconds before its commit, so
  -- a write recorded just before the restore point may be lost too.
  local loses = kind.loses_writes(ctx)
  local lost, lost_inserts, lost_near, foreign, should_lose = 0, 0, 0, 0, 0
  local before = {}
  for _, op in ipairs(inc.ops) do
    before[op[1]] = true
    local at, missing = op[2], have[op[1]] == nil
    if at > rp_t and loses then should_lose = should_lose + 1 end
    if missing then
      lost = lost + 1
      if op[3] == "i" then lost_inserts = lost_inserts + 1 end
      if at <= rp_t then lost_near = lost_near + 1 end
    end
    if loses then
      if (not missing and at > rp_t) or (missing and at < rp_t - EPSILON) then foreign = foreign + 1 end
    elseif missing then
      foreign = foreign + 1
    end
  end
  local later = 0
  for seq, at in pairs(have) do
    if not before[seq] then
      if at <= inc_t then foreign = foreign + 1 else later = later + 1 end
    end
  end
  local consistent, w = true, { rows = 0 }
  if not inc.manifest_rows then consistent, w = writer_consistent(conn) end
  local writer_ok = foreign == 0 and consistent
  for _, e in ipairs(exact) do
    if e.writer and not inc.manifest_rows then
      e.match = writer_ok
      if e.table:find(WRITER.ops, 1, true) then
        e.recovered_rows = #inc.ops - lost
        e.note = not loses and string.format("%d writes before the incident lost (the strategy loses none)%s", lost,
                                             foreign > 0 and ("; " .. foreign .. " NOT as the strategy says") or "")
                 or string.format("%d writes before the incident lost: %d written after the restore point (all of "
                               .. "them: %d)%s%s", lost, lost - lost_near, should_lose,
                               lost_near > 0 and (", " .. lost_near .. " written less than "
                                                  .. math.floor(EPSILON * 1000) .. " ms before it, committed after")
                               or "", foreign > 0 and ("; " .. foreign .. " NOT as the strategy says") or "")
      else
        e.recovered_rows = w.rows
        e.note = consistent and "consistent with its writes (rows now, with those written after the incident)"
                 or "does not match its writes"
      end
      rows[e.table] = e.table:find(WRITER.ops, 1, true) and lost or lost_inserts
    end
    all_match = all_match and e.match
  end
  local seconds, shares = rto(ctx, scenario_steps, last)
  local rpo_seconds = inc_t - rp_t
  dr.figure("RTO (s)", seconds ~= json.null and string.format("%.1f", seconds) or "?")
  for _, s in ipairs(shares) do
    dr.figure("RTO share: " .. s.step .. " (s)", string.format("%.1f", s.seconds))
  end
  dr.figure("RPO (s between the restore point and the incident)", string.format("%.3f", rpo_seconds))
  dr.figure("RPO rows lost", common.format_counts(rows))
  for _, e in ipairs(exact) do
    dr.figure("exactness: " .. e.table, string.format("%s (%s / %s rows) %s", e.match and "ok" or "MISMATCH",
                                                      tostring(e.baseline_rows), tostring(e.recovered_rows),
                                                      e.note or ""))
  end
  if stats then
    dr.figure("writer", string.format("%d inserts, %d updates, %d failed (%d after the incident are on %s)",
                                      stats.inserted, stats.updated, stats.failed, later, rec.label))
  end
  local out = { rto_seconds = seconds, rto_steps = shares, rpo_seconds = rpo_seconds, rpo_rows = rows,
                restore_point = rp, incident_time = inc.incident_time, exactness = exact, passed = all_match,
                recovered = rec, writes_after_incident = later, writer = stats or json.null }
  if not all_match then
    local bad = {}
    for _, e in ipairs(exact) do if not e.match then bad[#bad + 1] = e.table .. ": " .. (e.note or "") end end
    out.failure = "the recovered data does not match the copy before the incident: " .. table.concat(bad, "; ")
  end
  return out
end

-- Deletes what the drill made, children first, and lists again to prove
-- it is gone; production's branches and default are checked unchanged.
local function step_cleanup(ctx)
  drill.writer_stop()
  local p = ctx.params.project
  local copy = ctx.outputs.copy or {}
  local tag = ctx.run_id:lower()
  local function ours(b, scope_ids)
    return scope_ids[b.id] or (b.name:find(tag, 1, true) ~= nil and b.id ~= copy.source_id)
  end
  local default = real_default(p)
  local scope = drill.scope()
  local ids = {}
  for _, id in ipairs(scope.branches) do ids[id] = true end
  local deleted, give_up = 0, drill.clock() + 300
  for round = 1, 1000 do
    local last = drill.clock() > give_up
    local branches, parents, left = neon.list_branches(p), {}, {}
    for _, b in ipairs(branches) do if b.parent_id then parents[b.parent_id] = true end end
    for _, b in ipairs(branches) do if ours(b, ids) then left[#left + 1] = b end end
    if #left == 0 then break end
    for _, b in ipairs(left) do
      if not parents[b.id] and not b.default then
        -- A refusal (a child still being deleted, a busy branch) is tried
        -- again next round; what is left at the end is listed below.
        local ok, e = pcall(neon.delete_branch, p, b.id)
        if ok then deleted = deleted + 1; dr.log("deleted branch " .. b.name)
        elseif last then dr.log("cannot delete " .. b.name .. ": " .. common.message_of(e)) end
      end
    end
    if last then break end
    dr.sleep(math.min(0.2 * round, 2))
  end
  for _, id in ipairs(scope.projects) do
    local ok, e = pcall(neon.delete_project, id)
    if ok then dr.log("deleted project " .. id)
    elseif type(e) == "table" and e.status ~= 404 then error(e, 0) end
  end
  for _, id in ipairs(scope.snapshots) do pcall(neon.delete_snapshot, p, id) end
  local export = (ctx.outputs.incident or {}).export_dir
  if export then
    local ok = pcall(files.delete, export)
    if ok then dr.log("deleted the drill's export " .. export) end
  end
  -- Listed again: what is still there was left behind.
  local left = {}
  for _, b in ipairs(neon.list_branches(p)) do if ours(b, ids) then left[#left + 1] = "branch " .. b.name end end
  if export and #files.list(export) > 0 then left[#left + 1] = "the export " .. export end
  local projects = {}
  for _, id in ipairs(scope.projects) do projects[id] = true end
  for _, pr in ipairs(neon.list_projects()) do if projects[pr.id] then left[#left + 1] = "project " .. pr.id end end
  dr.figure("left behind", #left == 0 and "0" or (#left .. ": " .. table.concat(left, ", ")))
  local problems = {}
  if copy.source_id and not pcall(neon.get_branch, p, copy.source_id) then
    problems[#problems + 1] = "the production branch " .. copy.source_name .. " is gone"
  end
  if copy.default_id and copy.default_id ~= json.null and (not default or default.id ~= copy.default_id) then
    problems[#problems + 1] = "the project's default branch changed"
  end
  if #left > 0 then problems[#problems + 1] = "left behind: " .. table.concat(left, ", ") end
  if #problems > 0 then dr.fail("the drill's cleanup: " .. table.concat(problems, "; ")) end
  return { deleted = deleted, left_behind = #left, production_default = default and default.name or json.null }
end

-- ---- the composed runbook ---------------------------------------------------------------

local function wrap(fn, kind, before)
  if not fn then return nil end
  return function(ctx)
    if before then before(ctx) end
    return fn(scenario_ctx(ctx, kind))
  end
end

function M.compose(spec)
  local scenario = spec.name
  local kind = SCENARIOS[scenario]
  if not kind then
    error("a drill rehearses accidental-deletion, corruption or total-loss, not " .. tostring(scenario), 0)
  end
  local params = {}
  for k, v in pairs(spec.params or {}) do
    if not kind.provided[k] and k ~= "throwaway_ttl" then -- ttl below is the drill's one TTL
      local copy = {}
      for f, x in pairs(v) do copy[f] = x end
      params[k] = copy
    end
  end
  params.project = { type = "string", required = true, env = "NEON_PROJECT_ID",
                     doc = "the Neon project id (default: NEON_PROJECT_ID)" }
  params.branch = { type = "string", doc = "the production branch to copy (default: the project's default branch)" }
  params.database = params.database or { type = "string", default = "neondb" }
  params.role = params.role or { type = "string", default = "neondb_owner" }
  params.write_rate = { type = "int", default = 0,
                        doc = "writes a second kept going on the copy from before the incident to the check" }
  params.ttl = { type = "duration", default = "1d", env = "DRCTL_THROWAWAY_TTL", config = "throwaway_ttl",
                 doc = "every branch the drill makes expires after this (at most 30d)" }
  for k, v in pairs(kind.params) do params[k] = v end
  local last = end_step(spec)
  local scenario_steps, writing = {}, { incident = true }
  for _, s in ipairs(spec.steps) do
    if writing.done then break end
    writing[s.name] = true
    if s.name == last then writing.done = true end
  end
  -- From before the incident to the end of the recovery, also after a resume.
  local function keep_writing(ctx)
    if writing[ctx.step] and ctx.params.write_rate > 0 and ctx.outputs.copy then
      drill.writer_start(copy_uri(ctx), ctx.params.write_rate)
    end
  end

  local steps = {
    { name = "copy", idempotent = true, timeout = "2h",
      plan = function(ctx)
        return "make " .. copy_name(ctx) .. ", a copy of " .. (ctx.params.branch or "the default branch")
               .. " as it is now, with an endpoint, expiring after " .. ctx.params.ttl .. " s"
      end,
      run = step_copy },
    { name = "prepare", idempotent = true, timeout = "10m",
      plan = function(ctx)
        return "create the writer's tables on the copy and start " .. ctx.params.write_rate .. " writes a second"
      end,
      run = function(ctx) return step_prepare(ctx, kind) end },
    { name = "incident", timeout = "2h",
      plan = kind.incident_plan,
      run = function(ctx) keep_writing(ctx); return step_incident(ctx, kind) end },
  }
  for _, s in ipairs(spec.steps) do
    local step = {}
    for k, v in pairs(s) do step[k] = v end
    step.run = wrap(s.run, kind, keep_writing)
    step.plan = wrap(s.plan, kind)
    step.confirm = wrap(s.confirm, kind)
    if s.name == last then
      local run = step.run
      step.run = function(ctx)
        local out = run(ctx)
        writer_totals = drill.writer_stop() or writer_totals -- the recovery is over
        return out
      end
    end
    if not s.always then scenario_steps[#scenario_steps + 1] = s.name end
    steps[#steps + 1] = step
  end
  steps[#steps + 1] = {
    name = "measure", idempotent = true, timeout = "2h",
    plan = function() return "RTO, RPO, and every table of the recovered branch against the copy before the incident" end,
    run = function(ctx) return step_measure(ctx, kind, scenario_steps, last) end }
  steps[#steps + 1] = {
    name = "drill-cleanup", always = true, idempotent = true, timeout = "1h",
    plan = function() return "delete every branch, endpoint and project the drill made, and list again to check" end,
    run = step_cleanup }
  steps[#steps + 1] = {
    name = "verdict", idempotent = true,
    plan = function() return "passed when every table matched and nothing was left behind" end,
    run = function(ctx)
      local m = ctx.outputs.measure
      if m.failure then dr.figure("result", "FAILED"); dr.fail(m.failure) end
      dr.figure("result", "passed")
      return { passed = true }
    end }
  return {
    name = "drill-" .. scenario, version = spec.version,
    summary = "Drill of " .. scenario .. ": " .. spec.summary,
    description = "The scenario's real runbook on a copy of production, with RTO, RPO and exactness measured.",
    params = params,
    lock = function(ctx) return "drill/" .. ctx.params.project end,
    steps = steps,
  }
end

return M
