-- The named functions of the `neon` module, on top of neon.request (C).
-- Field names in and out are the spec's (neon-api/openapi-v2.yaml).
-- Mutating calls wait on the operations they return (request does), so the
-- next step of a runbook finds a usable branch.
local neon = ...

local function escape(text)
  return (tostring(text):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
neon.escape = escape

-- "?a=1&b=2" from a table, keys sorted so that journal lines are stable.
local function query(params)
  local keys = {}
  for k, v in pairs(params or {}) do
    if v ~= nil then keys[#keys + 1] = k end
  end
  if #keys == 0 then return "" end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = params[k]
    if type(v) == "boolean" then v = v and "true" or "false" end
    parts[#parts + 1] = escape(k) .. "=" .. escape(v)
  end
  return "?" .. table.concat(parts, "&")
end
neon.query = query

local function need(value, what)
  if value == nil or value == "" then
    error({ code = "BAD_ARGUMENT", status = 0, message = what .. " is required" }, 3)
  end
  return value
end

local function project_path(project)
  return "/projects/" .. escape(need(project, "the project id"))
end

local function branch_path(project, branch)
  return project_path(project) .. "/branches/" .. escape(need(branch, "the branch id"))
end

-- ---- projects -------------------------------------------------------------

-- Every project, following the cursor: a page holds 10 unless a limit is
-- given, and a short page is the last. opts: { search=, limit= }
function neon.list_projects(opts)
  local params, all = {}, {}
  for k, v in pairs(opts or {}) do params[k] = v end
  local limit = tonumber(params.limit) or 10
  while true do
    local answer = neon.request("GET", "/projects" .. query(params))
    local page = answer.projects or {}
    for _, p in ipairs(page) do all[#all + 1] = p end
    local cursor = answer.pagination and answer.pagination.cursor
    if #page < limit or not cursor or cursor == "" or cursor == params.cursor then break end
    params.cursor = cursor
  end
  return all
end

function neon.get_project(project)
  return neon.request("GET", project_path(project)).project
end

-- spec: { name=, pg_version=, history_retention_seconds=, ... }; returns the
-- whole answer (project, branch, endpoints, roles, databases, connection_uris).
function neon.create_project(spec)
  return neon.request("POST", "/projects", { project = spec or {} })
end

function neon.update_project(project, fields)
  return neon.request("PATCH", project_path(project), { project = fields }).project
end

function neon.delete_project(project)
  return neon.request("DELETE", project_path(project)).project
end

-- A deleted project within Neon's recovery period comes back with its ids,
-- branches, endpoints and connection strings.
function neon.recover_project(project)
  return neon.request("POST", project_path(project) .. "/recover").project
end

-- The deleted projects still recoverable (deleted_at, recoverable_until).
function neon.list_recoverable_projects()
  return neon.list_projects({ recoverable = true })
end

-- ---- branches -------------------------------------------------------------

-- Every branch, following the cursor to the last page.
-- opts: { search=, sort_by=, sort_order=, limit= }
function neon.list_branches(project, opts)
  local params, all = {}, {}
  for k, v in pairs(opts or {}) do params[k] = v end
  while true do
    local answer = neon.request("GET", project_path(project) .. "/branches" .. query(params))
    for _, b in ipairs(answer.branches or {}) do all[#all + 1] = b end
    local next_cursor = answer.pagination and answer.pagination.next
    if not next_cursor or next_cursor == "" or #(answer.branches or {}) == 0 then break end
    params.cursor = next_cursor
  end
  return all
end

-- The branches deleted and still recoverable: each with its `recovery`
-- (deleted_at, recoverable_until, deletion_method).
function neon.list_deleted_branches(project)
  local deleted = {}
  for _, b in ipairs(neon.list_branches(project, { include_deleted = true })) do
    if type(b.recovery) == "table" then deleted[#deleted + 1] = b end
  end
  return deleted
end

-- A deleted branch within the recovery period comes back with its id and
-- endpoints (its connection strings); it no longer expires. Returns the
-- whole answer (branch, endpoints, operations).
function neon.recover_branch(project, branch)
  return neon.request("POST", branch_path(project, branch) .. "/recover")
end

-- A database's schema as SQL (pg_dump --schema-only), at the head or at
-- opts.lsn / opts.timestamp.
function neon.branch_schema(project, branch, db_name, opts)
  local params = { db_name = need(db_name, "the database name") }
  for k, v in pairs(opts or {}) do params[k] = v end
  return neon.request("GET", branch_path(project, branch) .. "/schema" .. query(params)).sql
end

-- The difference between a branch database's schema and another branch's
-- (opts.base_branch_id; default its parent), as a unified diff: "" when
-- they are the same.
function neon.compare_schema(project, branch, db_name, opts)
  local params = { db_name = need(db_name, "the database name") }
  for k, v in pairs(opts or {}) do params[k] = v end
  return neon.request("GET", branch_path(project, branch) .. "/compare_schema" .. query(params)).diff
end

function neon.count_branches(project, opts)
  return neon.request("GET", project_path(project) .. "/branches/count" .. query(opts)).count
end

function neon.get_branch(project, branch)
  return neon.request("GET", branch_path(project, branch)).branch
end

-- The branch with exactly this name, or nil.
function neon.find_branch(project, name)
  for _, b in ipairs(neon.list_branches(project, { search = need(name, "the branch name") })) do
    if b.name == name then return b end
  end
  return nil
end

-- A branch given by name or id; raises a clear error when there is none.
function neon.resolve_branch(project, name_or_id)
  local b = neon.find_branch(project, name_or_id)
  if b then return b end
  local ok, by_id = pcall(neon.get_branch, project, name_or_id)
  if ok and by_id then return by_id end
  error({ code = "NOT_FOUND", status = 404,
          message = "no branch named or with id '" .. tostring(name_or_id) .. "' in project " .. tostring(project) }, 2)
end

function neon.default_branch(project)
  for _, b in ipairs(neon.list_branches(project)) do
    if b.default then return b end
  end
  return nil
end

-- Waits until a branch found by name (not made by this call) is ready.
local function settled(project, branch)
  local dr = require("dr")
  local delay, started = 0.1, dr.time()
  while branch.current_state ~= "ready" do
    if branch.current_state == "error" then
      dr.progress()
      error({ code = "BRANCH_ERROR", status = 0, message = "branch " .. branch.name .. " is in error" }, 0)
    end
    dr.progress(string.format("waiting on Neon: branch %s is %s, %.0f s", branch.name,
                              tostring(branch.current_state), dr.time() - started))
    dr.sleep(delay)
    delay = math.min(delay * 1.25, 1) -- as the operations' wait
    branch = neon.get_branch(project, branch.id)
  end
  dr.progress()
  return branch
end

local function existing(project, branch)
  branch = settled(project, branch)
  return { branch = branch, endpoints = neon.list_endpoints(project, branch.id), existed = true }
end

-- spec: { name=, parent_id=, parent_timestamp=, parent_lsn=, protected=,
--         endpoints = { { type = "read_write" } } } (endpoints may also be
-- given inside spec). Idempotent by name: a branch with that name is
-- returned (existed = true) instead of made again, and a POST whose outcome
-- is unknown is checked by name before it is tried again.
function neon.create_branch(project, spec)
  spec = spec or {}
  local branch, endpoints = {}, spec.endpoints
  for k, v in pairs(spec) do
    if k ~= "endpoints" then branch[k] = v end
  end
  if branch.name then
    local found = neon.find_branch(project, branch.name)
    if found then return existing(project, found) end
  end
  for _ = 1, 3 do
    local ok, answer = pcall(neon.request, "POST", project_path(project) .. "/branches",
                             { branch = branch, endpoints = endpoints })
    if ok then
      -- The answer shows the branch as it was when accepted; after the
      -- wait it is ready: say so.
      answer.branch = neon.get_branch(project, answer.branch.id)
      return answer
    end
    local unknown = type(answer) == "table" and (answer.outcome_unknown or answer.status == 409)
    if not (unknown and branch.name) then error(answer, 0) end
    local found = neon.find_branch(project, branch.name)
    if found then return existing(project, found) end
  end
  error({ code = "OUTCOME_UNKNOWN", status = 0,
          message = "creating branch " .. tostring(branch.name) .. " kept failing with an unknown outcome" }, 0)
end

function neon.update_branch(project, branch, fields)
  return neon.request("PATCH", branch_path(project, branch), { branch = fields }).branch
end

function neon.delete_branch(project, branch)
  return neon.request("DELETE", branch_path(project, branch)).branch
end

function neon.set_default(project, branch)
  return neon.request("POST", branch_path(project, branch) .. "/set_as_default").branch
end

-- spec: { source_branch_id=, source_timestamp=, source_lsn=, preserve_under_name= }
function neon.restore_branch(project, branch, spec)
  return neon.request("POST", branch_path(project, branch) .. "/restore", spec)
end

function neon.finalize_restore(project, branch, name)
  return neon.request("POST", branch_path(project, branch) .. "/finalize_restore", name and { name = name } or nil)
end

-- ---- snapshots --------------------------------------------------------------

-- opts: { name=, timestamp=, lsn=, expires_at= }
function neon.create_snapshot(project, branch, opts)
  return neon.request("POST", branch_path(project, branch) .. "/snapshot" .. query(opts)).snapshot
end

function neon.list_snapshots(project)
  return neon.request("GET", project_path(project) .. "/snapshots").snapshots
end

function neon.update_snapshot(project, snapshot, fields)
  return neon.request("PATCH", project_path(project) .. "/snapshots/" .. escape(need(snapshot, "the snapshot id")),
                      { snapshot = fields }).snapshot
end

function neon.delete_snapshot(project, snapshot)
  return neon.request("DELETE", project_path(project) .. "/snapshots/" .. escape(need(snapshot, "the snapshot id")))
end

-- spec: { name=, target_branch_id=, finalize_restore= }
function neon.restore_snapshot(project, snapshot, spec)
  return neon.request("POST", project_path(project) .. "/snapshots/" .. escape(need(snapshot, "the snapshot id"))
                      .. "/restore", spec or {})
end

function neon.get_backup_schedule(project, branch)
  return neon.request("GET", branch_path(project, branch) .. "/backup_schedule").schedule
end

function neon.put_backup_schedule(project, branch, schedule)
  return neon.request("PUT", branch_path(project, branch) .. "/backup_schedule", { schedule = schedule }).schedule
end

-- ---- endpoints, roles, databases, connection strings ---------------------------

function neon.list_endpoints(project, branch)
  if branch then return neon.request("GET", branch_path(project, branch) .. "/endpoints").endpoints end
  return neon.request("GET", project_path(project) .. "/endpoints").endpoints
end

-- spec: { branch_id=, type = "read_write" }
function neon.create_endpoint(project, spec)
  return neon.request("POST", project_path(project) .. "/endpoints", { endpoint = spec }).endpoint
end

function neon.start_endpoint(project, endpoint)
  return neon.request("POST", project_path(project) .. "/endpoints/" .. escape(need(endpoint, "the endpoint id"))
                      .. "/start").endpoint
end

function neon.delete_endpoint(project, endpoint)
  return neon.request("DELETE", project_path(project) .. "/endpoints/" .. escape(need(endpoint, "the endpoint id")))
             .endpoint
end

function neon.list_roles(project, branch)
  return neon.request("GET", branch_path(project, branch) .. "/roles").roles
end

function neon.reveal_password(project, branch, role)
  return neon.request("GET", branch_path(project, branch) .. "/roles/" .. escape(need(role, "the role name"))
                      .. "/reveal_password").password
end

function neon.list_databases(project, branch)
  return neon.request("GET", branch_path(project, branch) .. "/databases").databases
end

-- opts: { branch_id=, database_name=, role_name=, pooled= }
function neon.connection_uri(project, opts)
  return neon.request("GET", project_path(project) .. "/connection_uri" .. query(opts)).uri
end

-- ---- operations ------------------------------------------------------------------

function neon.get_operation(project, operation)
  return neon.request("GET", project_path(project) .. "/operations/" .. escape(need(operation, "the operation id")))
             .operation
end

-- A list to read: request waits on any "operations" an answer carries,
-- which here would mean waiting for every operation of the project.
function neon.list_operations(project)
  return neon.request("GET", project_path(project) .. "/operations", nil, { wait = false }).operations
end

return neon
