-- What the scenario runbooks share: their common params, finding the
-- project's branches, connecting to them, naming what a run creates and
-- keeps, finding an entry in a listing, reading raised errors, and
-- comparing row counts. Nothing here knows the guide's table names.
-- Unit-tested in plain Lua by tests/lua/common_test.lua.
local neon = require "neon"
local pg = require "pg"
local dr = require "dr"
local files = require "files"
local json = require "json"

local M = {}

-- The params every scenario takes, merged with its own: an own param of
-- the same name replaces the shared one, and `false` leaves it out (a
-- runbook that has no use for it).
function M.params(own)
  local all = {
    project = { type = "string", required = true, env = "NEON_PROJECT_ID",
                doc = "the Neon project id (default: NEON_PROJECT_ID)" },
    branch = { type = "string", doc = "the branch, by name or id (default: the project's default branch)" },
    database = { type = "string", default = "neondb", doc = "the database to work on" },
    role = { type = "string", default = "neondb_owner", doc = "the role to connect as" },
    throwaway_ttl = { type = "duration", default = "1d", env = "DRCTL_THROWAWAY_TTL", config = "throwaway_ttl",
                      doc = "the branches a run makes for its own checks expire after this (at most 30d), so "
                            .. "that a run killed and forgotten leaves nothing behind" },
  }
  for k, v in pairs(own or {}) do all[k] = v or nil end
  return all
end

-- The branch the run is about (a table with id, name, ...).
function M.branch(ctx)
  local p = ctx.params.project
  if ctx.params.branch and ctx.params.branch ~= "" then return neon.resolve_branch(p, ctx.params.branch) end
  local b = neon.default_branch(p)
  if not b then dr.fail("project " .. p .. " has no default branch") end
  return b
end

-- A name that says which run made it, so a resumed run finds it again.
function M.name(prefix, ctx)
  return prefix .. "-" .. ctx.run_id:lower()
end

-- The name a branch's state is kept under when a run replaces its data in
-- place: "<branch>-<kind>-<run>", kind saying why ("before-restore",
-- "corrupted"). Plans pass "<branch>" when the branch is not known yet.
function M.kept_name(branch_name, kind, run_id)
  return branch_name .. "-" .. kind .. "-" .. run_id:lower()
end

-- The first entry of a listing (branches, snapshots, projects...) whose
-- `field` is `wanted`; without a field, whose name or id is. nil when none
-- is: "is it still there?".
function M.find(list, wanted, field)
  for _, item in ipairs(list or {}) do
    if field then
      if item[field] == wanted then return item end
    elseif item.name == wanted or item.id == wanted then
      return item
    end
  end
  return nil
end

-- The text of an error a module raised (a table with a message) or of
-- error("...").
function M.message_of(e)
  return type(e) == "table" and tostring(e.message) or tostring(e)
end

-- Whether an error is the API's 404: what was asked for is not there.
function M.not_found(e)
  return type(e) == "table" and e.status == 404
end

-- A connection string for a branch of the run's project (or of `project`).
function M.uri(ctx, branch_id, project)
  return neon.connection_uri(project or ctx.params.project, { branch_id = branch_id,
                                                              database_name = ctx.params.database,
                                                              role_name = ctx.params.role })
end

function M.connect(ctx, branch_id, project)
  return pg.connect(M.uri(ctx, branch_id, project))
end

-- The most Neon lets a branch's expires_at lie ahead, and the least a
-- throwaway branch is given: one that expired sooner could be deleted
-- while the run still reads it.
M.MAX_TTL = 30 * 86400
M.MIN_TTL = 60

-- A number of seconds as a duration text a param takes: "1d", "2h", "1h30m".
function M.format_duration(seconds)
  local parts, left = {}, math.floor(seconds)
  for _, unit in ipairs({ { "d", 86400 }, { "h", 3600 }, { "m", 60 }, { "s", 1 } }) do
    local n = left // unit[2]
    if n > 0 then parts[#parts + 1] = n .. unit[1]; left = left - n * unit[2] end
  end
  return #parts > 0 and table.concat(parts) or (seconds .. "s")
end

-- The expires_at (RFC 3339 UTC, whole seconds, as Neon takes it) of a
-- branch made at `now` that lives `ttl` seconds; nil and the reason when
-- Neon would refuse it or it is too short to outlive its run. `what` names
-- the param in the reason ("-p throwaway_ttl").
function M.expiry(ttl, now, what)
  what = what or "the TTL"
  if type(ttl) ~= "number" or ttl ~= ttl then return nil, what .. " must be a duration, like 1d or 2h" end
  local shown = what .. "=" .. M.format_duration(ttl)
  if ttl < M.MIN_TTL then
    return nil, shown .. " is too short: a branch that expires sooner than a minute could be deleted while the run "
                .. "still uses it; give at least 1m"
  end
  if ttl > M.MAX_TTL then
    return nil, shown .. " is beyond what Neon allows: a branch can expire at most 30 days ahead; give at most 30d"
  end
  return dr.format_time(math.floor(now + ttl))
end

-- The expires_at of a throwaway branch made now (ctx.params.throwaway_ttl,
-- a day when the runbook has no such param). Fails the step on a TTL Neon
-- would refuse: runbooks call it in their first step, before they make
-- anything.
function M.throwaway_expiry(ctx)
  local at, why = M.expiry(ctx.params.throwaway_ttl or 86400, dr.time(),
                           "-p throwaway_ttl (or DRCTL_THROWAWAY_TTL, or the throwaway_ttl setting)")
  if not at then dr.fail(why) end
  return at
end

-- How long the throwaway branches live, for plans: "1d".
function M.throwaway_ttl_text(ctx)
  return M.format_duration(ctx.params.throwaway_ttl or 86400)
end

-- A throwaway branch with an endpoint, made once per run (found by name
-- when the run resumes). spec: { parent_id=, parent_timestamp=, parent_lsn= }.
-- It expires after the run's throwaway TTL, so that a run killed and never
-- resumed leaves nothing billable behind; a branch the run ends up
-- keeping has the expiry taken off (M.keep_branch).
function M.make_branch(ctx, name, spec)
  local s = { name = name, endpoints = { { type = "read_write" } }, expires_at = M.throwaway_expiry(ctx) }
  for k, v in pairs(spec or {}) do s[k] = v end
  return neon.create_branch(ctx.params.project, s).branch
end

-- A throwaway branch the run keeps after all (it is promoted): it no
-- longer expires. Neon lets no expiring branch be the default.
function M.keep_branch(ctx, branch_id)
  local b = neon.get_branch(ctx.params.project, branch_id)
  if b.expires_at and b.expires_at ~= json.null then
    neon.update_branch(ctx.params.project, branch_id, { expires_at = json.null })
    dr.log("branch " .. b.name .. " is kept: it no longer expires")
  end
  return b
end

-- The first `n` lines of a text, with how many were left out.
function M.first_lines(text, n)
  local lines, total = {}, 0
  for line in (text .. "\n"):gmatch("(.-)\n") do
    total = total + 1
    if total <= n then lines[#lines + 1] = line end
  end
  if total > n then lines[#lines + 1] = string.format("... (%d more lines)", total - n) end
  return table.concat(lines, "\n")
end

-- The difference between the schema of the run's database on branch_id
-- and on `base` ({ branch_id =, timestamp = }: another branch, at an
-- instant of its history when given), as a unified diff: "" when the same.
function M.schema_difference(ctx, branch_id, base)
  return neon.compare_schema(ctx.params.project, branch_id, ctx.params.database,
                             { base_branch_id = base.branch_id, base_timestamp = base.timestamp })
end

-- Fails the step when the recovered branch's schema is not the one it
-- should have (`base`, described by base.label); a figure says it matched.
function M.check_schema(ctx, branch_id, base)
  local diff = M.schema_difference(ctx, branch_id, base)
  if diff ~= "" then
    dr.fail("the recovered branch's schema differs from " .. base.label .. ":\n" .. M.first_lines(diff, 40))
  end
  dr.figure("schema", "the same as " .. base.label)
  return true
end

-- Starts a branch's idle endpoints, as a recovery leaves them: Neon starts
-- one at the first connection, neon-local only when asked. Returns the
-- branch's endpoints.
function M.wake_endpoints(project, branch_id)
  local endpoints = neon.list_endpoints(project, branch_id) or {}
  for _, e in ipairs(endpoints) do
    if e.current_state == "idle" then neon.start_endpoint(project, e.id) end
  end
  return endpoints
end

-- What a restore in place returns, so that drctl undo can go back: the
-- branch that keeps the state before, and when the API last changed it
-- (an undo refuses a kept branch changed since).
function M.kept_outputs(ctx, kept)
  local b = neon.find_branch(ctx.params.project, kept)
  if not b then dr.fail("the branch " .. kept .. " that keeps the state before the restore is not there") end
  return { kept = kept, kept_id = b.id, kept_updated_at = b.updated_at }
end

-- The default branch before a promotion: what drctl undo makes the default
-- again. A resumed apply may find its own promotion done already (the
-- default is the promoted branch): then it was the branch the run
-- recovered, which the promotion replaced.
function M.default_before_promotion(ctx, promoted_id, recovered_id, recovered_name)
  local before = neon.default_branch(ctx.params.project)
  if before and before.id ~= promoted_id then return { id = before.id, name = before.name } end
  return { id = recovered_id, name = recovered_name }
end

-- Deletes the branch with that name when it exists (cleanup steps). The
-- deletion is not waited on: once accepted the branch is going, and the
-- run (the recovery) is not held up by it.
-- A run that failed once its destructive step had begun must be resumed
-- to end its change: the throwaway branches that step needs stay (they
-- expire by themselves; drctl abort deletes them now). Before that step,
-- nothing was changed: a new run does it all again, and they go. True,
-- with a line saying so, when the cleanup keeps them.
function M.kept_for_resume(ctx, names, destructive_step)
  local t = (ctx.timeline or {})[destructive_step]
  if ctx.ending ~= "failed" or not t or t.state == "pending" then return false end
  local kept = {}
  for _, name in ipairs(names) do
    if neon.find_branch(ctx.params.project, name) then kept[#kept + 1] = name end
  end
  if #kept > 0 then
    dr.log("kept for a resume: " .. table.concat(kept, ", ") .. " (throwaway branches expire by themselves; "
           .. "drctl abort " .. ctx.run_id .. " deletes them now)")
  end
  return true
end

function M.drop_branch(ctx, name)
  local b = neon.find_branch(ctx.params.project, name)
  if b then
    neon.request("DELETE", "/projects/" .. neon.escape(ctx.params.project) .. "/branches/" .. neon.escape(b.id), nil,
                 { wait = false })
    dr.log("deleted branch " .. name)
    return true
  end
  return false
end

-- The tables to work on: the comma-separated list given (checked), else
-- every user table.
function M.tables(conn, list)
  if not list or list == "" then return pg.user_tables(conn) end
  local out = {}
  for name in list:gmatch("[^,%s]+") do out[#out + 1] = pg.table_name(conn, name) end
  return out
end

function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- "booking 312, client 4" from {booking = 312, client = 4} (zeros left out).
function M.format_counts(counts)
  -- a plan's placeholder for counts known at run time: shown as it is
  if type(counts) ~= "table" then return tostring(counts) end
  local parts = {}
  for _, k in ipairs(M.sorted_keys(counts)) do
    if counts[k] ~= 0 then parts[#parts + 1] = k .. " " .. counts[k] end
  end
  return #parts > 0 and table.concat(parts, ", ") or "none"
end

-- Per table: what b has more (positive) or less (negative) than a.
function M.count_delta(a, b)
  local delta = {}
  for t, n in pairs(a) do delta[t] = (b[t] or 0) - n end
  for t, n in pairs(b) do if a[t] == nil then delta[t] = n end end
  return delta
end

-- The tables in an order where every referenced table comes before the
-- tables that reference it (for inserting rows back).
function M.parents_first(conn, tables)
  local wanted, deps = {}, {}
  for _, t in ipairs(tables) do wanted[t] = true; deps[t] = {} end
  for _, fk in ipairs(pg.foreign_keys(conn)) do
    if wanted[fk.table] and wanted[fk.ref_table] and fk.table ~= fk.ref_table then
      deps[fk.table][#deps[fk.table] + 1] = fk.ref_table
    end
  end
  local out, seen = {}, {}
  local function visit(t)
    if seen[t] then return end
    seen[t] = true
    for _, d in ipairs(deps[t]) do visit(d) end
    out[#out + 1] = t
  end
  for _, t in ipairs(tables) do visit(t) end
  return out
end

-- The instant `seconds` before a timestamp, RFC 3339.
function M.before(timestamp, seconds)
  return dr.format_time(dr.time(timestamp) - seconds)
end

-- Copies table t of source into a temporary table on target (only its
-- primary key columns when keys_only: what counting needs, a fraction of
-- the bytes), then calls fn(tmp, on, keys) where `on` matches tmp's rows
-- (m) to t's (x) by primary key and `keys` lists the key's columns.
local function with_copy(source, target, t, what, fn, keys_only)
  local pk = pg.primary_key(target, t)
  if #pk == 0 then dr.fail("table " .. t .. " has no primary key: its " .. what .. " cannot be told apart") end
  local tmp = "drctl_copy_" .. t:gsub("[^%w]", "_")
  local match, cols = {}, {}
  for _, col in ipairs(pk) do
    local q = target:query("SELECT quote_ident($1) AS q", col)[1].q
    match[#match + 1] = "x." .. q .. " = m." .. q
    cols[#cols + 1] = q
  end
  if keys_only then
    local list = table.concat(cols, ", ")
    target:exec("CREATE TEMP TABLE " .. tmp .. " AS SELECT " .. list .. " FROM " .. t .. " WITH NO DATA")
    pg.copy(source, target, { from = "SELECT " .. list .. " FROM " .. t, to = tmp })
  else
    target:exec("CREATE TEMP TABLE " .. tmp .. " (LIKE " .. t .. ")")
    pg.copy(source, target, { from = t, to = tmp })
  end
  local result = fn(tmp, table.concat(match, " AND "), table.concat(cols, ", "))
  target:exec("DROP TABLE " .. tmp)
  return result
end

-- Rows of each table that exist in `source` (by primary key) and are
-- missing from `target`: {table = count}.
function M.missing_rows(source, target, tables)
  local counts = {}
  for _, t in ipairs(tables) do
    counts[t] = with_copy(source, target, t, "missing rows", function(tmp, on)
      return target:query("SELECT count(*) AS n FROM " .. tmp .. " m WHERE NOT EXISTS (SELECT 1 FROM " .. t
                          .. " x WHERE " .. on .. ")")[1].n
    end, true)
  end
  return counts
end

-- The most primary-key text an insertion records for its undo. Outputs
-- are bounded (16 MiB as JSON), and a run must never fail once its rows
-- are in: past this, the keys are not recorded and the run cannot be
-- undone by key (it says so).
M.MAX_UNDO_KEY_BYTES = 8 * 1024 * 1024

-- Inserts into `target` (in the caller's transaction) the rows of each
-- table that `source` has and `target` lacks, by primary key. Returns
-- {table = count}, and {table = the inserted rows' keys as a JSON array
-- text} (nil when they exceed MAX_UNDO_KEY_BYTES).
function M.insert_missing_rows(source, target, tables)
  local counts, keys, bytes = {}, {}, 0
  for _, t in ipairs(tables) do
    local r = with_copy(source, target, t, "missing rows", function(tmp, on, key_columns)
      return target:query("WITH ins AS (INSERT INTO " .. t .. " SELECT m.* FROM " .. tmp .. " m WHERE NOT EXISTS "
                          .. "(SELECT 1 FROM " .. t .. " x WHERE " .. on .. ") RETURNING " .. key_columns .. ") "
                          .. "SELECT count(*) AS n, coalesce(json_agg(ins), '[]')::text AS keys FROM ins")[1]
    end, false)
    counts[t], keys[t] = r.n, r.keys
    bytes = bytes + #r.keys
  end
  if bytes > M.MAX_UNDO_KEY_BYTES then return counts, nil end
  return counts, keys
end

-- "x.k = k.k AND ..." over table t's primary key columns.
local function key_match(conn, t)
  local on = {}
  for _, col in ipairs(pg.primary_key(conn, t)) do
    local q = conn:query("SELECT quote_ident($1) AS q", col)[1].q
    on[#on + 1] = "x." .. q .. " = k." .. q
  end
  if #on == 0 then dr.fail("table " .. t .. " has no primary key now: its rows cannot be found by key") end
  return table.concat(on, " AND ")
end

-- Deletes from `conn` (in the caller's transaction) the rows of table t
-- whose primary keys are in `keys` (a JSON array text of key objects, as
-- insert_missing_rows records): the count deleted.
function M.delete_rows_by_key(conn, t, keys)
  return conn:exec("DELETE FROM " .. t .. " x USING json_populate_recordset(NULL::" .. t .. ", $1::json) k WHERE "
                   .. key_match(conn, t), keys)
end

-- How many of the rows whose keys are in `keys` table t of `conn` holds.
function M.count_rows_by_key(conn, t, keys)
  return conn:query("SELECT count(*) AS n FROM " .. t .. " x JOIN json_populate_recordset(NULL::" .. t
                    .. ", $1::json) k ON " .. key_match(conn, t), keys)[1].n
end

-- Rows of each table of `live` inserted or updated after the instant that
-- `point` (a branch made at that instant, from live's history) shows. Both
-- share the transaction ids up to that instant: a row whose xmin is at or
-- past the first id the point branch has not seen was written after it. A
-- scan per table, nothing copied (a primary-key comparison would copy every
-- key, and would miss updates).
function M.written_since(point, live, tables)
  local _, written = M.counts_and_written(point, live, tables)
  return written
end

-- The same scan also counting every row: {table = rows now}, {table =
-- rows inserted or updated since}.
function M.counts_and_written(point, live, tables)
  local horizon = point:query("SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint % 4294967296) AS x")[1].x
  local counts, written = {}, {}
  for _, t in ipairs(tables) do
    local r = live:query("SELECT count(*) AS n, count(*) FILTER (WHERE xmin::text::bigint >= $1) AS w FROM " .. t,
                         horizon)[1]
    counts[t], written[t] = r.n, r.w
  end
  return counts, written
end

-- Rows of `source` whose primary key is absent from `target` are copied
-- into target (in the caller's transaction); rows whose key is in both but
-- whose content differs are counted as conflicts and left as they are.
-- Returns {table = copied}, {table = conflicts}.
function M.salvage(source, target, tables)
  local copied, conflicts = {}, {}
  for _, t in ipairs(tables) do
    with_copy(source, target, t, "rows", function(tmp, on)
      conflicts[t] = target:query("SELECT count(*) AS n FROM " .. tmp .. " m JOIN " .. t .. " x ON " .. on
                                  .. " WHERE ROW(m.*) IS DISTINCT FROM ROW(x.*)")[1].n
      copied[t] = target:exec("INSERT INTO " .. t .. " SELECT m.* FROM " .. tmp .. " m WHERE NOT EXISTS (SELECT 1 FROM "
                              .. t .. " x WHERE " .. on .. ")")
    end)
  end
  return copied, conflicts
end

-- The newest export manifest (*.json) at a destination (a folder or
-- s3://bucket/prefix), or nil when there is none.
function M.newest_export(source)
  if not source or source == "" then return nil end
  local newest
  for _, f in ipairs(files.list(source)) do
    if f.url:sub(-5) == ".json" and (not newest or f.url > newest) then newest = f.url end
  end
  return newest
end

-- Waits until no operation on the branch is running: a change an earlier
-- attempt asked for, before it died, may still be under way (a restore in
-- place), and what comes next must see its result. Fails when the branch
-- ended in error.
function M.settle(ctx, branch_id)
  local delay = 0.2
  for _ = 1, 900 do
    local busy = false
    for _, op in ipairs(neon.list_operations(ctx.params.project) or {}) do
      if op.branch_id == branch_id and (op.status == "running" or op.status == "scheduling") then busy = true end
    end
    if not busy then
      local b = neon.get_branch(ctx.params.project, branch_id)
      if b.current_state == "error" then dr.fail("the branch " .. b.name .. " is in error after an earlier attempt") end
      return b
    end
    dr.sleep(delay)
    delay = math.min(delay * 1.5, 2)
  end
  dr.fail("the branch " .. branch_id .. " is still busy after 30 minutes")
end

return M
