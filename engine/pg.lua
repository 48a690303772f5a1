-- The helpers of the `pg` module, on top of its C part (pgmod.c). Every
-- identifier that goes into SQL text comes from the server itself
-- (regclass::text, quote_ident), never from a runbook's string.
local pg = ...

-- pg.connect(uri [, {project=, branch_id=}]): when the URI carries no
-- password and a Neon project is given, the password is revealed through
-- the neon module (and registered as a secret by the C side).
function pg.connect(uri, opts)
  opts = opts or {}
  if opts.project and not uri:match("^[%w+.-]+://[^/@:]+:[^/@]+@") then
    local neon = require "neon"
    local user = uri:match("^[%w+.-]+://([^/@:]+)@")
    if not user then error("pg.connect: the URI names no user to reveal the password of", 2) end
    local branch = opts.branch_id or neon.default_branch(opts.project).id
    local password = neon.reveal_password(opts.project, branch, user)
    local escaped = password:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end)
    uri = uri:gsub("^([%w+.-]+://[^/@:]+)@", "%1:" .. escaped:gsub("%%", "%%%%") .. "@", 1)
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
