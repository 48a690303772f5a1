-- Every function of the neon module against a Neon API (neon-local in the
-- tests), each result checked here; a failed check fails its step with the
-- figures that disagree. The shell test then checks the world afterwards.
local neon = require "neon"
local dr = require "dr"

local check = require "testing.check"

local function psql(uri, sql)
  local r = dr.exec({ "psql", uri, "-XAtc", sql })
  if r.code ~= 0 then dr.fail("psql: " .. r.stderr) end
  return (r.stdout:gsub("%s+$", ""))
end

local function names(list)
  local out = {}
  for _, b in ipairs(list) do out[#out + 1] = b.name end
  table.sort(out)
  return table.concat(out, ",")
end

return runbook {
  name = "neon-tour", version = "1.0.0",
  summary = "Test runbook: every neon function, checked",
  steps = {
    { name = "project", run = function()
        local made = neon.create_project({ name = "tour", history_retention_seconds = 86400 })
        local id = made.project.id
        check(made.connection_uris[1].connection_uri ~= nil, "connection_uris", nil, "a URI")
        -- Usable at once: create_project waited on its operations.
        local uri = made.connection_uris[1].connection_uri
        psql(uri, "create table t (id int primary key); insert into t select generate_series(1, 10)")
        local p = neon.update_project(id, { history_retention_seconds = 172800, name = "tour2" })
        check(p.history_retention_seconds == 172800, "updated retention", p.history_retention_seconds, 172800)
        check(neon.get_project(id).name == "tour2", "renamed", neon.get_project(id).name, "tour2")
        local found = false
        for _, q in ipairs(neon.list_projects()) do found = found or q.id == id end
        check(found, "list_projects has it", found, true)
        dr.sleep(1.1)
        -- No URI in the outputs: its password would be redacted there.
        return { id = id, instant = dr.now() }
      end },
    { name = "branches", run = function(ctx)
        local id = ctx.outputs.project.id
        local uri = neon.connection_uri(id, { database_name = "neondb", role_name = "neondb_owner" })
        psql(uri, "delete from t where id > 4")
        local main = neon.default_branch(id)
        check(main and main.name == "main", "default branch", main and main.name, "main")
        local b1 = neon.create_branch(id, { name = "b1", parent_id = main.id, endpoints = { { type = "read_write" } } })
        check(b1.branch.current_state == "ready", "b1 ready after create_branch", b1.branch.current_state, "ready")
        local b1_uri = neon.connection_uri(id, { branch_id = b1.branch.id, database_name = "neondb",
                                                 role_name = "neondb_owner" })
        check(psql(b1_uri, "select count(*) from t") == "4", "rows on b1 right after creation",
              psql(b1_uri, "select count(*) from t"), 4)
        local again = neon.create_branch(id, { name = "b1", endpoints = { { type = "read_write" } } })
        check(again.existed and again.branch.id == b1.branch.id, "create_branch by an existing name", again.branch.id,
              b1.branch.id)
        local past = neon.create_branch(id, { name = "past", parent_timestamp = ctx.outputs.project.instant,
                                              endpoints = { { type = "read_write" } } })
        local past_uri = neon.connection_uri(id, { branch_id = past.branch.id, database_name = "neondb",
                                                   role_name = "neondb_owner" })
        check(psql(past_uri, "select count(*) from t") == "10", "rows at the instant",
              psql(past_uri, "select count(*) from t"), 10)
        neon.create_branch(id, { name = "cold" })
        -- Pagination: one branch a page, all of them in the end.
        local all = neon.list_branches(id, { limit = 1 })
        check(names(all) == "b1,cold,main,past", "all pages", names(all), "b1,cold,main,past")
        check(neon.count_branches(id) == 4, "count", neon.count_branches(id), 4)
        check(neon.find_branch(id, "nope") == nil, "find_branch of a missing name", "a branch", nil)
        check(neon.find_branch(id, "past").id == past.branch.id, "find_branch", neon.find_branch(id, "past").id,
              past.branch.id)
        check(neon.resolve_branch(id, b1.branch.id).name == "b1", "resolve_branch by id", "?", "b1")
        local ok, err = pcall(neon.resolve_branch, id, "ghost")
        check(not ok and err.status == 404 and err.message:find("ghost"), "resolve_branch of a ghost",
              err and err.message, "a 404 naming ghost")
        local renamed = neon.update_branch(id, past.branch.id, { name = "past2" })
        check(renamed.name == "past2", "update_branch", renamed.name, "past2")
        neon.set_default(id, b1.branch.id)
        check(neon.default_branch(id).name == "b1", "set_default", neon.default_branch(id).name, "b1")
        neon.set_default(id, main.id)
        -- Restore main from its own past, the damaged state kept.
        neon.restore_branch(id, main.id, { source_branch_id = main.id, source_timestamp = ctx.outputs.project.instant,
                                           preserve_under_name = "main-damaged" })
        check(psql(uri, "select count(*) from t") == "10", "main restored, same connection string",
              psql(uri, "select count(*) from t"), 10)
        check(neon.find_branch(id, "main-damaged") ~= nil, "preserved branch", nil, "main-damaged")
        neon.delete_branch(id, neon.find_branch(id, "past2").id)
        check(neon.find_branch(id, "past2") == nil, "deleted", "past2", "gone")
        local gone, derr = pcall(neon.get_branch, id, "br-no-such-branch")
        check(not gone and derr.status == 404 and derr.code, "structured 404", derr and derr.status, 404)
        return { main = main.id, b1 = b1.branch.id }
      end },
    { name = "snapshots", run = function(ctx)
        local id, main = ctx.outputs.project.id, ctx.outputs.branches.main
        local snap = neon.create_snapshot(id, main, { name = "s1" })
        check(snap.name == "s1", "snapshot", snap.name, "s1")
        check(#neon.list_snapshots(id) == 1, "list_snapshots", #neon.list_snapshots(id), 1)
        local restored = neon.restore_snapshot(id, snap.id, { name = "from-s1" })
        check(restored.branch.name == "from-s1", "restore_snapshot", restored.branch.name, "from-s1")
        neon.put_backup_schedule(id, main, { { frequency = "daily", retention_seconds = 86400 } })
        local schedule = neon.get_backup_schedule(id, main)
        check(schedule[1].frequency == "daily", "backup schedule", schedule[1].frequency, "daily")
        neon.delete_snapshot(id, snap.id)
        check(#neon.list_snapshots(id) == 0, "snapshot deleted", #neon.list_snapshots(id), 0)
        return { restored = restored.branch.id }
      end },
    { name = "endpoints", run = function(ctx)
        local id = ctx.outputs.project.id
        local cold = neon.find_branch(id, "cold")
        check(#neon.list_endpoints(id, cold.id) == 0, "no endpoint on cold", #neon.list_endpoints(id, cold.id), 0)
        local ep = neon.create_endpoint(id, { branch_id = cold.id, type = "read_write" })
        local uri = neon.connection_uri(id, { branch_id = cold.id, database_name = "neondb", role_name = "neondb_owner" })
        check(psql(uri, "select 1") == "1", "cold answers through its new endpoint", "?", 1)
        neon.start_endpoint(id, ep.id)
        local password = neon.reveal_password(id, cold.id, "neondb_owner")
        check(uri:find(password, 1, true) ~= nil, "reveal_password is the URI's", "another", "the same")
        local dbs = neon.list_databases(id, cold.id)
        check(dbs[1].name == "neondb", "list_databases", dbs[1].name, "neondb")
        check(neon.list_roles(id, cold.id)[1].name == "neondb_owner", "list_roles", "?", "neondb_owner")
        neon.delete_endpoint(id, ep.id)
        check(#neon.list_endpoints(id, cold.id) == 0, "endpoint deleted", #neon.list_endpoints(id, cold.id), 0)
        local ops = neon.list_operations(id)
        check(#ops > 0 and neon.get_operation(id, ops[1].id).id == ops[1].id, "operations", #ops, "some")
        return { operations = #ops }
      end },
    { name = "general", run = function(ctx)
        local id = ctx.outputs.project.id
        local answer = neon.request("GET", "/projects/" .. id .. "/branches" .. neon.query({ search = "b1" }))
        check(#answer.branches == 1, "neon.request with a query", #answer.branches, 1)
        local t = neon.target()
        check(t.kind == "cloud" or t.kind == "local", "neon.target", t.kind, "cloud|local")
        neon.delete_project(id)
        local ok = pcall(neon.get_project, id)
        check(not ok, "project deleted", "still there", "404")
        return { target = t.kind }
      end },
  },
}
