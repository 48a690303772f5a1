-- The helpers of the `pg` module, on top of its C part (pgmod.c). Every
-- identifier that goes into SQL text comes from the server itself
-- (regclass::text, quote_ident), never from a runbook's string.
local pg = ...

-- What the engine writes in place of a password (redact.h's REDACTED): a
-- connection string read back from a step's outputs carries it.
local REDACTED = "<redacted>"

local function unescape(text)
  return (text:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function uri_escape(text)
  return (text:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- The parts of a connection string that say where it goes: { user=,
-- password= (decoded, nil when absent), host=, port=, dbname= }, and
-- with_password(p), the same string with that password. URI form
-- (postgresql://user:password@host:port/db?...) or keyword form
-- (host=... password=...); nil for anything else.
local function parse(uri)
  local scheme, rest = uri:match("^([%w+.-]+)://(.*)$")
  if scheme then
    local userinfo, tail = rest:match("^([^/?]*)@(.*)$")
    tail = tail or rest
    local user, password
    if userinfo then
      user, password = userinfo:match("^([^:]*):(.*)$")
      user = unescape(user or userinfo)
      password = password and unescape(password)
    end
    local host, port, after = tail:match("^(%b[]):?(%d*)(.*)$")
    if not host then host, port, after = tail:match("^([^/:?,]*):?(%d*)(.*)$") end
    local dbname = after:match("^[^/?]*/([^?]*)")
    return { user = user, password = password, host = host, port = port ~= "" and port or nil,
             dbname = dbname and dbname ~= "" and unescape(dbname) or nil,
             with_password = function(p)
               return scheme .. "://" .. uri_escape(user or "") .. ":" .. uri_escape(p) .. "@" .. tail
             end }
  end
  local fields, any = {}, false
  for k, v in uri:gmatch("([%w_]+)%s*=%s*(%S*)") do
    fields[k] = v:match("^'(.*)'$") or v
    any = true
  end
  if not any then return nil end
  return { user = fields.user, password = fields.password, host = fields.host, port = fields.port,
           dbname = fields.dbname,
           with_password = function(p)
             local quoted = "'" .. p:gsub("[\\']", "\\%0") .. "'"
             local without = uri:gsub("password%s*=%s*%S*", "")
             return without .. " password=" .. quoted
           end }
end

-- ep-abc-123.region.aws.neon.tech and its pooler ep-abc-123-pooler... name
-- the same endpoint.
local function same_host(a, b)
  local function base(h) return (tostring(h):lower():gsub("^([^.]-)%-pooler%.", "%1.")) end
  return a ~= nil and b ~= nil and base(a) == base(b)
end

local function same_port(a, b)
  return tonumber(a or 5432) == tonumber(b or 5432)
end

-- The password of the endpoint that connection string points to, from the
-- target's Neon API: each endpoint on its host (in opts.project, else in
-- every project) is asked for the connection string of that role and
-- database, and the one on the same host and port gives it (an older
-- neon-local served every endpoint on 127.0.0.1, where the host alone did
-- not tell).
-- Returns the password, or nil and what was searched.
local function password_from_neon(parts, opts)
  local ok, neon = pcall(require, "neon")
  if not ok then return nil, "the neon module is not available" end
  if opts.project and opts.branch_id then
    return neon.reveal_password(opts.project, opts.branch_id, parts.user)
  end
  local projects = {}
  if opts.project then
    projects[1] = opts.project
  else
    local listed, list = pcall(neon.list_projects)
    if not listed then
      return nil, "no Neon target to ask (" .. (type(list) == "table" and tostring(list.message) or tostring(list)) .. ")"
    end
    for _, p in ipairs(list or {}) do projects[#projects + 1] = p.id end
  end
  for _, project in ipairs(projects) do
    for _, ep in ipairs(neon.list_endpoints(project) or {}) do
      if same_host(ep.host, parts.host) then
        local got, text = pcall(neon.connection_uri, project, { branch_id = ep.branch_id, role_name = parts.user,
                                                                 database_name = parts.dbname or parts.user })
        local found = got and parse(text)
        if found and same_host(found.host, parts.host) and same_port(found.port, parts.port) and found.password then
          return found.password
        end
      end
    end
  end
  return nil, "no endpoint at " .. tostring(parts.host) .. ":" .. tostring(parts.port or 5432) .. " for role "
              .. tostring(parts.user) .. " in " .. (opts.project and ("project " .. opts.project) or "any project of the target")
end

-- pg.connect(uri [, {project=, branch_id=}]). A URI whose password was
-- redacted (read back from a step's outputs, which never keep passwords)
-- gets it again from the Neon API, from the endpoint it points to; so does
-- a URI without password when a project is given (its default branch's when
-- no endpoint matches). The password is registered as a secret by the C
-- side before anything can print it.
function pg.connect(uri, opts)
  opts = opts or {}
  if type(uri) ~= "string" then return pg._connect(uri) end
  local parts = parse(uri)
  local redacted = parts and parts.password == REDACTED
  if parts and (redacted or (opts.project and not parts.password)) then
    if not parts.user or parts.user == "" then
      error("pg.connect: the connection string names no user to find the password of", 2)
    end
    local password, why = password_from_neon(parts, opts)
    if not password and not redacted then
      local neon = require "neon"
      password = neon.reveal_password(opts.project, neon.default_branch(opts.project).id, parts.user)
    end
    if not password then
      error("pg.connect: the connection string's password was redacted (" .. REDACTED .. "): a step's outputs never "
            .. "keep passwords, and " .. why .. " gives it back. Get the connection string where it is used "
            .. "(neon.connection_uri), or give pg.connect(uri, { project = ..., branch_id = ... })", 2)
    end
    uri = parts.with_password(password)
  end
  return pg._connect(uri)
end

-- Every user table (partitions counted in their parent), as quoted names.
function pg.user_tables(c)
  local rows = c:query([[
    SELECT c.oid::regclass::text AS name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
     ORDER BY 1]])
  local out = {}
  for _, r in ipairs(rows) do out[#out + 1] = r.name end
  return out
end

-- The server's quoted name of a table, or an error naming it.
local function table_name(c, name)
  local rows = c:query("SELECT to_regclass($1)::text AS t", name)
  if rows[1].t == pg.null then error({ message = "no table named '" .. tostring(name) .. "'", sqlstate = "42P01" }, 3) end
  return rows[1].t
end
pg.table_name = table_name

-- {table = rows} for the tables given (default: every user table).
function pg.row_counts(c, tables)
  local counts = {}
  for _, t in ipairs(tables or pg.user_tables(c)) do
    local name = table_name(c, t)
    counts[t] = c:query("SELECT count(*) AS n FROM " .. name)[1].n
  end
  return counts
end

-- The primary key's columns of a table, in key order ({} when it has none).
function pg.primary_key(c, t)
  local rows = c:query([[
    SELECT a.attname AS name
      FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
     WHERE i.indrelid = to_regclass($1) AND i.indisprimary
     ORDER BY array_position(i.indkey::int2[], a.attnum)]], table_name(c, t))
  local out = {}
  for _, r in ipairs(rows) do out[#out + 1] = r.name end
  return out
end

-- Every foreign key: {name, table, columns, ref_table, ref_columns}, the
-- column lists already quoted for SQL.
function pg.foreign_keys(c)
  local rows = c:query([[
    SELECT con.conname AS name, con.conrelid::regclass::text AS tbl, con.confrelid::regclass::text AS ref,
           (SELECT string_agg(quote_ident(a.attname), ',' ORDER BY k.i)
              FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
              JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n) AS cols,
           (SELECT string_agg(quote_ident(a.attname), ',' ORDER BY k.i)
              FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
              JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n) AS ref_cols
      FROM pg_constraint con
     WHERE con.contype = 'f'
     ORDER BY 2, 1]])
  local out = {}
  for _, r in ipairs(rows) do
    out[#out + 1] = { name = r.name, table = r.tbl, ref_table = r.ref, columns = r.cols, ref_columns = r.ref_cols }
  end
  return out
end

local function split(list)
  local out = {}
  for item in list:gmatch("[^,]+") do out[#out + 1] = item end
  return out
end

-- Each foreign key checked: the rows whose key is set and matches no row
-- of the referenced table (MATCH SIMPLE: a key with a NULL is not checked).
-- Returns the list of {name, table, ref_table, orphans = n} and the total.
function pg.orphans(c)
  local out, total = {}, 0
  for _, fk in ipairs(pg.foreign_keys(c)) do
    local cols, refs = split(fk.columns), split(fk.ref_columns)
    local set, match = {}, {}
    for i, col in ipairs(cols) do
      set[#set + 1] = "t." .. col .. " IS NOT NULL"
      match[#match + 1] = "r." .. refs[i] .. " = t." .. col
    end
    local sql = "SELECT count(*) AS n FROM " .. fk.table .. " t WHERE " .. table.concat(set, " AND ")
                .. " AND NOT EXISTS (SELECT 1 FROM " .. fk.ref_table .. " r WHERE " .. table.concat(match, " AND ") .. ")"
    local n = c:query(sql)[1].n
    total = total + n
    out[#out + 1] = { name = fk.name, table = fk.table, ref_table = fk.ref_table, orphans = n }
  end
  return out, total
end

-- The schema's fingerprint: tables, columns with types and nullability,
-- constraints. Two branches with the same schema have the same hash.
function pg.fingerprint(c)
  local row = c:query([[
    WITH user_tables AS (
      SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
         AND n.nspname NOT LIKE 'pg_toast%'),
    lines AS (
      SELECT 'column ' || a.attrelid::regclass::text || '.' || quote_ident(a.attname) || ' '
             || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END AS line
        FROM pg_attribute a
       WHERE a.attrelid IN (SELECT oid FROM user_tables) AND a.attnum > 0 AND NOT a.attisdropped
      UNION ALL
      SELECT 'constraint ' || conrelid::regclass::text || ' ' || quote_ident(conname) || ' ' || pg_get_constraintdef(oid)
        FROM pg_constraint WHERE conrelid IN (SELECT oid FROM user_tables))
    SELECT md5(coalesce(string_agg(line, E'\n' ORDER BY line), '')) AS hash,
           (SELECT count(*) FROM user_tables) AS tables,
           count(*) FILTER (WHERE line LIKE 'column %') AS columns,
           count(*) FILTER (WHERE line LIKE 'constraint %') AS constraints
      FROM lines]])[1]
  return { hash = row.hash, tables = row.tables, columns = row.columns, constraints = row.constraints }
end

return pg
