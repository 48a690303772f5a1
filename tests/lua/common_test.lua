-- Unit tests of lua/drctl/common.lua in plain Lua 5.4 (no drctl): the
-- modules it requires (neon, pg, dr, files) are small stand-ins that record
-- what they were asked and answer what each test sets.
--   lua5.4 tests/lua/common_test.lua
-- prints "ok" or "FAIL" and the name of each test, then each difference
-- found (the test, what was got and what was expected) and a summary, so
-- that the end of the output says what failed; exits 1 when any test failed.

local root = (arg and arg[0] or ""):match("^(.*)/tests/lua/[^/]+$") or "."
package.path = root .. "/lua/?.lua;" .. package.path

-- ---- the stand-ins -----------------------------------------------------------

-- A failure raised by dr.fail, told apart from a bug in the code under test.
local Failed = {}

local calls = {} -- what the stand-ins were asked, in order
local answers = {} -- what they answer, set per test

local function record(what, ...)
  calls[#calls + 1] = { what, ... }
end

package.loaded.dr = {
  fail = function(message) error(setmetatable({ message = message }, Failed), 0) end,
  log = function(text) record("log", text) end,
  sleep = function(seconds) record("sleep", seconds) end,
  -- Times as plain numbers of seconds, written "t=<seconds>".
  -- Without a text: now, as the test sets it (answers.now), else 1000.
  time = function(text)
    if text == nil then return answers.now or 1000 end
    return tonumber(text:match("^t=(.+)$"))
  end,
  format_time = function(seconds) return "t=" .. seconds end,
}
package.loaded.neon = {
  escape = function(s) return (s:gsub("/", "%%2F")) end,
  connection_uri = function(project, spec)
    return string.format("postgres://%s/%s/%s?role=%s", project, spec.branch_id, spec.database_name, spec.role_name)
  end,
  resolve_branch = function(project, branch) record("resolve_branch", project, branch); return answers.resolved end,
  default_branch = function(project) record("default_branch", project); return answers.default end,
  find_branch = function(project, name) record("find_branch", project, name); return answers.found end,
  create_branch = function(project, spec) record("create_branch", project, spec); return { branch = answers.made } end,
  request = function(method, path, body, options) record("request", method, path, body, options) end,
  -- One answer per call, the last one repeated.
  list_operations = function()
    local ops = answers.operations
    return #ops > 1 and table.remove(ops, 1) or ops[1]
  end,
  get_branch = function(_, id)
    return answers.branch or { id = id, name = "main", current_state = answers.state or "ready" }
  end,
  update_branch = function(project, id, fields) record("update_branch", project, id, fields); return { id = id } end,
}
package.loaded.pg = {
  user_tables = function() return answers.user_tables end,
  table_name = function(_, name) return "public." .. name end,
  foreign_keys = function() return answers.foreign_keys end,
  connect = function(uri) return { uri = uri } end,
}
package.loaded.files = {
  list = function(where) record("list", where); return answers.files end,
}
package.loaded.json = { null = setmetatable({}, { __name = "json.null" }) }

local common = require "drctl.common"

-- ---- the harness ---------------------------------------------------------------

local failures, count = 0, 0
local differences = {}
local current

local function show(v, depth)
  depth = depth or 0
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" or depth > 3 then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. show(v[k], depth + 1) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- Not raised: the test goes on, so that one run shows every difference.
local function eq(got, expected, what)
  if not same(got, expected) then
    failures = failures + 1
    differences[#differences + 1] = string.format("%s: %s: got %s, expected %s", current, what or "value", show(got),
                                                  show(expected))
  end
end

-- The message dr.fail was given when fn fails, else nil.
local function failure_of(fn, ...)
  local ok, e = pcall(fn, ...)
  if ok then return nil end
  if getmetatable(e) ~= Failed then error(e, 0) end
  return e.message
end

local function test(name, fn)
  count = count + 1
  current = name
  calls, answers = {}, {}
  local before = failures
  local ok, e = pcall(fn)
  if not ok then
    failures = failures + 1
    differences[#differences + 1] = string.format("%s: raised %s", name, show(e))
  end
  print((failures == before and "ok " or "FAIL ") .. name)
end

local function ctx(params, run_id)
  return { params = params or {}, run_id = run_id or "20260111-143000-AbC9" }
end

-- ---- names -------------------------------------------------------------------------

test("name_is_the_prefix_and_the_run_in_lower_case", function()
  eq(common.name("check", ctx()), "check-20260111-143000-abc9")
end)

test("kept_name_says_the_branch_why_and_the_run", function()
  eq(common.kept_name("main", "before-restore", "20260111-143000-AbC9"), "main-before-restore-20260111-143000-abc9")
  eq(common.kept_name("main", "corrupted", "R1"), "main-corrupted-r1")
  eq(common.kept_name("<branch>", "before-restore", "R1"), "<branch>-before-restore-r1", "in a plan")
end)

-- ---- params --------------------------------------------------------------------------

test("params_are_the_shared_ones_plus_the_runbooks_own", function()
  local p = common.params { margin = { type = "duration", default = "1s" } }
  eq(p.project, { type = "string", required = true, env = "NEON_PROJECT_ID",
                  doc = "the Neon project id (default: NEON_PROJECT_ID)" }, "project")
  eq(p.database.default, "neondb", "database")
  eq(p.role.default, "neondb_owner", "role")
  eq(p.branch.type, "string", "branch")
  eq(p.margin, { type = "duration", default = "1s" }, "margin")
end)

test("an_own_param_replaces_the_shared_one_and_false_leaves_it_out", function()
  local own = { type = "string", env = "NEON_PROJECT_ID", doc = "the project of target_branch" }
  local p = common.params { project = own, branch = false }
  eq(p.project, own, "project")
  eq(p.branch, nil, "branch")
  eq(p.database.default, "neondb", "database kept")
end)

test("params_without_own_ones_are_the_shared_five", function()
  eq(common.sorted_keys(common.params()), { "branch", "database", "project", "role", "throwaway_ttl" })
end)

test("throwaway_ttl_is_a_day_unless_the_environment_says", function()
  local p = common.params().throwaway_ttl
  eq({ p.type, p.default, p.env }, { "duration", "1d", "DRCTL_THROWAWAY_TTL" })
  eq(common.params { throwaway_ttl = false }.throwaway_ttl, nil, "left out by a runbook that makes none")
end)

-- ---- throwaway branches' expiry ------------------------------------------------------

test("format_duration_writes_what_a_param_takes", function()
  eq(common.format_duration(86400), "1d")
  eq(common.format_duration(7200), "2h")
  eq(common.format_duration(5400), "1h30m")
  eq(common.format_duration(40 * 86400 + 1), "40d1s")
  eq(common.format_duration(0.5), "0.5s", "under a second")
end)

test("expiry_is_now_plus_the_ttl_in_whole_seconds", function()
  eq(common.expiry(86400, 1000.75), "t=87400")
  eq(common.expiry(60, 0), "t=60", "a minute is the least")
  eq(common.expiry(30 * 86400, 0), "t=" .. 30 * 86400, "30 days is the most")
end)

test("expiry_refuses_what_neon_would_and_says_why", function()
  local at, why = common.expiry(30 * 86400 + 1, 0, "-p throwaway_ttl")
  eq(at, nil, "beyond 30 days")
  eq(why, "-p throwaway_ttl=30d1s is beyond what Neon allows: a branch can expire at most 30 days ahead; give at most 30d")
  at, why = common.expiry(59, 0, "-p ttl")
  eq(at, nil, "under a minute")
  eq(why, "-p ttl=59s is too short: a branch that expires sooner than a minute could be deleted while the run still "
          .. "uses it; give at least 1m")
  eq(common.expiry(0, 0), nil, "zero")
  eq(common.expiry(-3600, 0), nil, "negative")
  eq(select(2, common.expiry("1d", 0)), "the TTL must be a duration, like 1d or 2h", "not a number")
end)

test("throwaway_expiry_fails_the_step_on_a_bad_ttl", function()
  answers.now = 500
  eq(common.throwaway_expiry(ctx({ throwaway_ttl = 7200 })), "t=7700", "2h")
  eq(common.throwaway_expiry(ctx({})), "t=86900", "a day without the param")
  eq(failure_of(common.throwaway_expiry, ctx({ throwaway_ttl = 40 * 86400 })),
     "-p throwaway_ttl (or DRCTL_THROWAWAY_TTL, or the throwaway_ttl setting)=40d is beyond what Neon allows: a branch can expire at most 30 days "
     .. "ahead; give at most 30d")
  eq(common.throwaway_ttl_text(ctx({ throwaway_ttl = 7200 })), "2h", "for plans")
end)

test("keep_branch_takes_the_expiry_off_only_when_there_is_one", function()
  answers.branch = { id = "br-9", name = "restore-r", expires_at = "t=5" }
  eq(common.keep_branch(ctx({ project = "p" }), "br-9"), answers.branch)
  eq(calls[1], { "update_branch", "p", "br-9", { expires_at = package.loaded.json.null } }, "cleared with null")
  calls, answers.branch = {}, { id = "br-9", name = "restore-r" }
  common.keep_branch(ctx({ project = "p" }), "br-9")
  eq(#calls, 0, "nothing to clear")
end)

-- ---- lookups and errors -------------------------------------------------------------

test("find_matches_the_field_given", function()
  local list = { { id = "a", name = "x" }, { id = "b", name = "y" }, { id = "c", name = "y" } }
  eq(common.find(list, "y", "name"), list[2], "the first of two")
  eq(common.find(list, "c", "id"), list[3], "by id")
  eq(common.find(list, "x", "id"), nil, "a name is not an id")
  eq(common.find(list, "z", "name"), nil, "absent")
end)

test("find_without_a_field_matches_name_or_id", function()
  local list = { { id = "br-1", name = "main" }, { id = "br-2", name = "backup-1" } }
  eq(common.find(list, "backup-1"), list[2], "by name")
  eq(common.find(list, "br-1"), list[1], "by id")
  eq(common.find(list, "nothing"), nil, "absent")
  eq(common.find(nil, "main"), nil, "no listing")
  eq(common.find({}, "main"), nil, "an empty listing")
end)

test("message_of_reads_tables_and_strings", function()
  eq(common.message_of({ message = "branch not found", status = 404 }), "branch not found")
  eq(common.message_of("boom"), "boom")
  eq(common.message_of({ status = 500 }), "nil", "a table without a message")
  eq(common.message_of(nil), "nil")
end)

test("not_found_is_a_404_only", function()
  eq(common.not_found({ status = 404 }), true)
  eq(common.not_found({ status = 400 }), false)
  eq(common.not_found("404"), false, "a string")
end)

-- ---- counts ---------------------------------------------------------------------------

test("sorted_keys", function()
  eq(common.sorted_keys({ c = 1, a = 2, b = 0 }), { "a", "b", "c" })
  eq(common.sorted_keys({}), {})
end)

test("format_counts_sorts_and_leaves_zeros_out", function()
  eq(common.format_counts({ client = 4, booking = 312, salon = 0 }), "booking 312, client 4")
  eq(common.format_counts({ booking = -3 }), "booking -3", "a negative count")
  eq(common.format_counts({ salon = 0 }), "none", "only zeros")
  eq(common.format_counts({}), "none", "empty")
end)

test("count_delta_is_b_minus_a_per_table", function()
  eq(common.count_delta({ booking = 100, client = 5 }, { booking = 90, client = 7 }), { booking = -10, client = 2 })
  eq(common.count_delta({ booking = 100, gone = 3 }, { booking = 100 }), { booking = 0, gone = -3 }, "a table gone")
  eq(common.count_delta({}, { new = 4 }), { new = 4 }, "a new table")
  eq(common.count_delta({}, {}), {})
end)

-- ---- tables and their order ------------------------------------------------------------

test("parents_first_puts_referenced_tables_before_their_referrers", function()
  answers.foreign_keys = {
    { table = "booking", ref_table = "client" }, { table = "booking", ref_table = "salon" },
    { table = "staff", ref_table = "salon" }, { table = "client", ref_table = "client" }, -- self-reference
  }
  eq(common.parents_first({}, { "booking", "staff", "client", "salon" }), { "client", "salon", "booking", "staff" })
end)

test("parents_first_ignores_keys_to_tables_not_asked_for", function()
  answers.foreign_keys = { { table = "booking", ref_table = "client" }, { table = "audit", ref_table = "booking" } }
  eq(common.parents_first({}, { "booking" }), { "booking" }, "client not asked for")
  eq(common.parents_first({}, { "audit", "booking", "client" }), { "client", "booking", "audit" }, "a chain")
  answers.foreign_keys = {}
  eq(common.parents_first({}, { "b", "a" }), { "b", "a" }, "no keys: the order given")
end)

test("tables_are_the_list_given_checked_else_every_user_table", function()
  answers.user_tables = { "public.a", "public.b" }
  eq(common.tables({}, nil), { "public.a", "public.b" }, "no list")
  eq(common.tables({}, ""), { "public.a", "public.b" }, "an empty list")
  eq(common.tables({}, "booking, client,salon"), { "public.booking", "public.client", "public.salon" }, "a list")
end)

-- ---- time, connections, branches -------------------------------------------------------------

test("before_is_seconds_earlier", function()
  eq(common.before("t=100.5", 1.5), "t=99.0")
  eq(common.before("t=100", 0), "t=100")
end)

test("uri_is_the_runs_project_unless_another_is_given", function()
  local c = ctx({ project = "p1", database = "neondb", role = "owner" })
  eq(common.uri(c, "br-1"), "postgres://p1/br-1/neondb?role=owner")
  eq(common.uri(c, "br-2", "p2"), "postgres://p2/br-2/neondb?role=owner", "another project")
  eq(common.connect(c, "br-2", "p2").uri, "postgres://p2/br-2/neondb?role=owner", "connect")
end)

test("branch_is_the_one_named_else_the_default", function()
  answers.resolved, answers.default = { id = "br-n", name = "dev" }, { id = "br-d", name = "main" }
  eq(common.branch(ctx({ project = "p", branch = "dev" })).id, "br-n", "named")
  eq(calls[1], { "resolve_branch", "p", "dev" }, "resolved by name or id")
  eq(common.branch(ctx({ project = "p", branch = "" })).id, "br-d", "empty: the default")
  eq(common.branch(ctx({ project = "p" })).id, "br-d", "none: the default")
  answers.default = nil
  eq(failure_of(common.branch, ctx({ project = "p" })), "project p has no default branch", "no default")
end)

test("make_branch_asks_for_an_endpoint_and_the_spec", function()
  answers.made = { id = "br-9" }
  eq(common.make_branch(ctx({ project = "p" }), "check-r", { parent_id = "br-1", parent_timestamp = "t=5" }),
     { id = "br-9" })
  eq(calls[1], { "create_branch", "p", { name = "check-r", endpoints = { { type = "read_write" } }, parent_id = "br-1",
                                        parent_timestamp = "t=5", expires_at = "t=87400" } })
  calls = {}
  common.make_branch(ctx({ project = "p", throwaway_ttl = 7200 }), "check-r")
  eq(calls[1][3].expires_at, "t=8200", "the run's TTL")
  eq(failure_of(common.make_branch, ctx({ project = "p", throwaway_ttl = 31 * 86400 }), "check-r") ~= nil, true,
     "a bad TTL fails")
  eq(#calls, 1, "and nothing is made")
end)

test("drop_branch_deletes_without_waiting_and_says_whether_it_was_there", function()
  answers.found = { id = "br/7" }
  eq(common.drop_branch(ctx({ project = "p" }), "check-r"), true, "there")
  eq(calls[2], { "request", "DELETE", "/projects/p/branches/br%2F7", nil, { wait = false } }, "the request")
  eq(calls[3], { "log", "deleted branch check-r" }, "the log")
  calls, answers.found = {}, nil
  eq(common.drop_branch(ctx({ project = "p" }), "check-r"), false, "absent")
  eq(#calls, 1, "only looked up")
end)

test("newest_export_is_the_greatest_manifest_name", function()
  answers.files = {
    { url = "s3://b/x/neondb-main-20260101-000000.json" }, { url = "s3://b/x/neondb-main-20260108-000000.dump" },
    { url = "s3://b/x/neondb-main-20260105-000000.json" }, { url = "s3://b/x/notes.txt" },
  }
  eq(common.newest_export("s3://b/x"), "s3://b/x/neondb-main-20260105-000000.json")
  eq(calls[1], { "list", "s3://b/x" }, "listed once")
  answers.files = { { url = "/d/a.dump" } }
  eq(common.newest_export("/d"), nil, "no manifest")
  calls = {}
  eq(common.newest_export(nil), nil, "no source")
  eq(common.newest_export(""), nil, "an empty source")
  eq(#calls, 0, "nothing listed without a source")
end)

test("settle_waits_for_the_branchs_operations_only", function()
  local other = { branch_id = "br-2", status = "running" }
  answers.operations = { { { branch_id = "br-1", status = "running" }, other },
                         { { branch_id = "br-1", status = "scheduling" } },
                         { { branch_id = "br-1", status = "finished" }, other } }
  eq(common.settle(ctx({ project = "p" }), "br-1"), { id = "br-1", name = "main", current_state = "ready" })
  eq(calls, { { "sleep", 0.2 }, { "sleep", 0.2 * 1.5 } }, "two waits, longer each time")
end)

test("settle_fails_when_the_branch_ended_in_error", function()
  answers.operations, answers.state = { {} }, "error"
  eq(failure_of(common.settle, ctx({ project = "p" }), "br-1"), "the branch main is in error after an earlier attempt")
end)

test("counts_and_written_count_rows_past_the_points_horizon", function()
  local asked = {}
  local point = { query = function(_, sql) asked[#asked + 1] = sql; return { { x = 742 } } end }
  local live = { query = function(_, sql, horizon)
    asked[#asked + 1] = { sql, horizon }
    return { { n = sql:find("FROM booking$") and 10 or 4, w = sql:find("FROM booking$") and 3 or 0 } }
  end }
  local counts, written = common.counts_and_written(point, live, { "booking", "client" })
  eq(counts, { booking = 10, client = 4 }, "counts")
  eq(written, { booking = 3, client = 0 }, "written")
  eq(asked[2][2], 742, "the horizon passed to each scan")
  eq(#asked, 3, "one query on the point, one scan a table")
  eq(common.written_since(point, live, { "booking" }), { booking = 3 }, "written_since")
end)

for _, d in ipairs(differences) do print("  " .. d) end
print(string.format("common.lua: %d tests, %d failed", count, failures))
os.exit(failures == 0 and 0 or 1)
