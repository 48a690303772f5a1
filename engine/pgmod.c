#include "pgmod.h"

#include "buf.h"
#include "drill.h"
#include "err.h"
#include "jsonlua.h"
#include "redact.h"
#include "signals.h"
#include "term.h"
#include "timefmt.h"

#include <ctype.h>
#include <lauxlib.h>
#include <strings.h>
#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "pg_lua.h" /* pg_lua[]: engine/pg.lua, the helpers, compiled in */

#define CONN_META "drctl.pg.connection"
#define MAX_PARAMS 64

/* One connection; the userdata holds a pointer so the module can close it
 * at the step's end while Lua still holds the handle. */
typedef struct pg_conn {
    PGconn *conn;
    char *label;            /* user@host:port/dbname, for messages */
    int guarded;            /* in a drill, a server the drill did not make: read-only */
    struct pg_conn *next;   /* the module's open connections */
} pg_conn;

struct pg_module {
    dr_host *host;
    sandbox *sb;
    pg_conn *open;
};

static pg_module *module_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static void close_conn(pg_module *m, pg_conn *c)
{
    if (!c->conn)
        return;
    PQfinish(c->conn);
    c->conn = NULL;
    for (pg_conn **p = &m->open; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
}

static void close_all(void *ud)
{
    pg_module *m = ud;
    while (m->open)
        close_conn(m, m->open);
}

/* The userdata: a pointer to a pg_conn owned by the userdata (freed by __gc). */
static pg_conn *check_conn(lua_State *L, int idx)
{
    pg_conn **p = luaL_checkudata(L, idx, CONN_META);
    if (!(*p)->conn)
        luaL_error(L, "this database connection is closed (connections end with the step that opened them)");
    return *p;
}

static int journal(pg_module *m, const char *kind, cJSON *data)
{
    return m->host->event(m->host->ud, kind, data);
}

/* ---- waiting on the server, cancellable ------------------------------------------- */

/* Why a query must stop now: a signal, the step's deadline or its own. */
static const char *stop_reason(pg_module *m, double call_deadline)
{
    if (signals_pending())
        return "interrupted";
    double left = sandbox_time_left(m->sb);
    if (left >= 0 && left <= 0)
        return "the step's timeout";
    if (call_deadline > 0 && timefmt_monotonic() > call_deadline)
        return "the statement's timeout";
    return NULL;
}

/* Waits for the query sent on c; on a stop, cancels it on the server.
 * Returns the last result (caller clears) or NULL with *stopped set. */
static PGresult *await_result(pg_module *m, pg_conn *c, double call_deadline, int unstoppable, const char **stopped)
{
    *stopped = NULL;
    while (PQisBusy(c->conn)) {
        const char *why = unstoppable ? NULL : stop_reason(m, call_deadline);
        if (why) {
            PGcancel *cancel = PQgetCancel(c->conn);
            char errbuf[256];
            if (cancel) {
                PQcancel(cancel, errbuf, sizeof errbuf);
                PQfreeCancel(cancel);
            }
            *stopped = why;
            break;
        }
        struct pollfd pfd = { .fd = PQsocket(c->conn), .events = POLLIN };
        poll(&pfd, 1, 100);
        if (!PQconsumeInput(c->conn))
            break;
    }
    PGresult *res, *last = NULL;
    while ((res = PQgetResult(c->conn))) {
        if (PQresultStatus(res) == PGRES_COPY_IN || PQresultStatus(res) == PGRES_COPY_OUT) {
            PQclear(last);
            return res; /* the caller streams */
        }
        PQclear(last);
        last = res;
    }
    return last;
}

/* ---- values ------------------------------------------------------------------------- */

enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_OID = 26, OID_FLOAT4 = 700,
       OID_FLOAT8 = 701, OID_TIMESTAMP = 1114, OID_TIMESTAMPTZ = 1184, OID_NUMERIC = 1700 };

/* "2026-01-11 14:29:59.5+00" (TimeZone UTC, DateStyle ISO) -> "2026-01-11T14:29:59.5Z". */
static void push_timestamp(lua_State *L, const char *text, int with_zone)
{
    buf b = BUF_INIT;
    buf_puts(&b, text);
    char *s = b.data;
    char *space = strchr(s, ' ');
    if (space)
        *space = 'T';
    size_t n = strlen(s);
    if (with_zone && n > 3 && strcmp(s + n - 3, "+00") == 0) {
        s[n - 3] = 'Z';
        s[n - 2] = '\0';
    }
    lua_pushstring(L, s);
    buf_free(&b);
}

static void push_value(lua_State *L, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col)) {
        jsonlua_push_null(L);
        return;
    }
    const char *v = PQgetvalue(res, row, col);
    switch (PQftype(res, col)) {
    case OID_BOOL:
        lua_pushboolean(L, v[0] == 't');
        break;
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
        lua_pushinteger(L, strtoll(v, NULL, 10));
        break;
    case OID_FLOAT4:
    case OID_FLOAT8:
        lua_pushnumber(L, strtod(v, NULL));
        break;
    case OID_TIMESTAMP:
        push_timestamp(L, v, 0);
        break;
    case OID_TIMESTAMPTZ:
        push_timestamp(L, v, 1);
        break;
    default: /* numeric stays text: no precision lost */
        lua_pushstring(L, v);
    }
}

static void push_rows(lua_State *L, const PGresult *res)
{
    int rows = PQntuples(res), cols = PQnfields(res);
    lua_createtable(L, rows, 0);
    for (int r = 0; r < rows; r++) {
        lua_createtable(L, 0, cols);
        for (int c = 0; c < cols; c++) {
            push_value(L, res, r, c);
            lua_setfield(L, -2, PQfname(res, c));
        }
        lua_rawseti(L, -2, r + 1);
    }
    lua_createtable(L, 0, 3);
    lua_createtable(L, cols, 0);
    for (int c = 0; c < cols; c++) {
        lua_pushstring(L, PQfname(res, c));
        lua_rawseti(L, -2, c + 1);
    }
    lua_setfield(L, -2, "columns");
    lua_pushstring(L, PQcmdStatus((PGresult *)res));
    lua_setfield(L, -2, "command");
    const char *tuples = PQcmdTuples((PGresult *)res);
    lua_pushinteger(L, *tuples ? strtoll(tuples, NULL, 10) : rows);
    lua_setfield(L, -2, "affected");
}

/* The parameters of a call as text (NULL for nil/pg.null). Returns an
 * error text (static) or NULL. values[i] point into the Lua stack. */
static const char *read_params(lua_State *L, int first, int last, const char **values, int *count)
{
    *count = 0;
    for (int i = first; i <= last; i++) {
        if (*count == MAX_PARAMS)
            return "too many parameters (at most 64)";
        int t = lua_type(L, i);
        if (t == LUA_TNIL || jsonlua_is_null(L, i)) {
            values[(*count)++] = NULL;
        } else if (t == LUA_TBOOLEAN) {
            values[(*count)++] = lua_toboolean(L, i) ? "true" : "false";
        } else if (t == LUA_TNUMBER || t == LUA_TSTRING) {
            values[(*count)++] = lua_tostring(L, i); /* numbers become strings in place */
        } else {
            return "a parameter must be a string, number, boolean, nil or pg.null";
        }
    }
    return NULL;
}

/* ---- queries --------------------------------------------------------------------------- */

typedef struct query_call {
    const char *sql;
    const char **values;
    int count;
    double timeout;     /* seconds, 0: none but the step's */
    int unstoppable;    /* ROLLBACK after an abort must still run */
    int single;         /* one statement only (the extended protocol), even without params */
} query_call;

/* Runs one query; on success leaves its result in *out. On failure pushes
 * the error value and returns -1. */
static int run_query(lua_State *L, pg_module *m, pg_conn *c, const query_call *q, PGresult **out)
{
    *out = NULL;
    double t0 = timefmt_monotonic();
    double deadline = q->timeout > 0 ? t0 + q->timeout : 0;
    int sent = q->count || q->single ? PQsendQueryParams(c->conn, q->sql, q->count, NULL, q->values, NULL, NULL, 0)
                        : PQsendQuery(c->conn, q->sql);
    if (!sent) {
        lua_pushfstring(L, "cannot send the query to %s: %s", c->label, PQerrorMessage(c->conn));
        return -1;
    }
    const char *stopped;
    PGresult *res = await_result(m, c, deadline, q->unstoppable, &stopped);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "connection", c->label);
    buf sql = BUF_INIT;
    buf_append(&sql, q->sql, strlen(q->sql) > 300 ? 300 : strlen(q->sql));
    cJSON_AddStringToObject(data, "sql", buf_cstr(&sql));
    buf_free(&sql);
    cJSON_AddNumberToObject(data, "duration_ms", round((timefmt_monotonic() - t0) * 1000));
    int ok = !stopped && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN ||
                          st == PGRES_COPY_OUT);
    if (ok && st == PGRES_TUPLES_OK)
        cJSON_AddNumberToObject(data, "rows", PQntuples(res));
    if (!ok && res && PQresultErrorField(res, PG_DIAG_SQLSTATE))
        cJSON_AddStringToObject(data, "sqlstate", PQresultErrorField(res, PG_DIAG_SQLSTATE));
    if (stopped)
        cJSON_AddStringToObject(data, "stopped", stopped);
    int jrc = journal(m, "pg-query", data);
    if (ok && jrc == 0) {
        *out = res;
        return 0;
    }
    if (stopped) {
        lua_pushfstring(L, "the query on %s was cancelled: %s", c->label, stopped);
    } else if (jrc) {
        lua_pushfstring(L, "cannot record the pg-query event: %s", err_last());
    } else {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
        lua_createtable(L, 0, 4);
        lua_pushfstring(L, "SQL error %s on %s: %s%s%s", state ? state : "?", c->label,
                        primary ? primary : PQerrorMessage(c->conn), detail ? " " : "", detail ? detail : "");
        lua_setfield(L, -2, "message");
        lua_pushstring(L, state ? state : "");
        lua_setfield(L, -2, "sqlstate");
        if (detail) {
            lua_pushstring(L, detail);
            lua_setfield(L, -2, "detail");
        }
    }
    PQclear(res);
    return -1;
}

/* Raises the error run_query pushed, after an abort check (a signal or the
 * step's deadline is raised as such, so the run records it rightly). */
static int raise_pushed(lua_State *L)
{
    sandbox_check_abort(L);
    return lua_error(L);
}

/* c:query(sql, ...) or c:query{sql=, params={}, timeout=} */
static int prepare_call(lua_State *L, query_call *q, const char **values)
{
    memset(q, 0, sizeof *q);
    q->values = values;
    const char *bad;
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_getfield(L, 2, "sql");
        q->sql = lua_tostring(L, -1);
        if (!q->sql)
            return luaL_error(L, "query{...} needs sql = \"...\"");
        lua_getfield(L, 2, "timeout");
        if (!lua_isnil(L, -1)) {
            double seconds;
            if (lua_type(L, -1) == LUA_TNUMBER)
                seconds = lua_tonumber(L, -1);
            else if (timefmt_parse_duration(luaL_checkstring(L, -1), &seconds) != 0)
                return luaL_error(L, "query{timeout=}: %s", err_last());
            q->timeout = seconds;
        }
        lua_getfield(L, 2, "params");
        int params_idx = lua_gettop(L);
        if (lua_istable(L, params_idx)) {
            lua_Integer n = luaL_len(L, params_idx);
            int first = lua_gettop(L) + 1;
            luaL_checkstack(L, (int)n + 2, "too many parameters");
            for (lua_Integer i = 1; i <= n; i++)
                lua_rawgeti(L, params_idx, i);
            bad = read_params(L, first, lua_gettop(L), values, &q->count);
        } else {
            bad = NULL;
        }
    } else {
        q->sql = luaL_checkstring(L, 2);
        bad = read_params(L, 3, lua_gettop(L), values, &q->count);
    }
    if (bad)
        return luaL_error(L, "%s", bad);
    return 0;
}

static int simple(lua_State *L, pg_module *m, pg_conn *c, const char *sql, int unstoppable);

/* A change a drill refuses on a server it did not make: recorded, so the
 * step fails even when the runbook catches the error. Raises. */
static int refuse_in_drill(lua_State *L, pg_module *m, pg_conn *c, const char *what)
{
    lua_pushfstring(L, "the drill refused %s on %s: that server is not one of the drill's branches, and a "
                    "drill only reads it", what, c->label);
    return drill_refuse_lua(L, m->host, lua_tostring(L, -1));
}

/* Statements a read-only session may run; anything else (SET, BEGIN,
 * COMMIT, DO, COPY, writes) could leave the read-only transaction. */
static int reads_only(const char *sql)
{
    static const char *const words[] = { "select", "with", "table", "values", "show", "explain", NULL };
    while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r' || *sql == '(')
        sql++;
    for (int i = 0; words[i]; i++) {
        size_t n = strlen(words[i]);
        if (strncasecmp(sql, words[i], n) == 0 && !isalnum((unsigned char)sql[n]) && sql[n] != '_')
            return 1;
    }
    return 0;
}

/* On a guarded connection a statement runs alone, in a read-only
 * transaction that is always rolled back: nothing it does can stay. */
static int run_guarded(lua_State *L, pg_module *m, pg_conn *c, query_call *q, PGresult **res)
{
    if (!reads_only(q->sql)) {
        char *what = xasprintf("the statement \"%.80s\"", q->sql);
        lua_pushstring(L, what);
        free(what);
        return refuse_in_drill(L, m, c, lua_tostring(L, -1));
    }
    q->single = 1;
    if (simple(L, m, c, "BEGIN TRANSACTION READ ONLY", 0) != 0)
        return raise_pushed(L);
    int rc = run_query(L, m, c, q, res);
    if (simple(L, m, c, "ROLLBACK", 1) != 0) {
        if (rc == 0)
            PQclear(*res);
        return raise_pushed(L);
    }
    return rc;
}

/* The query of a c:query / c:exec call, run; raises on failure. */
static PGresult *query_from_lua(lua_State *L)
{
    pg_conn *c = check_conn(L, 1);
    const char *values[MAX_PARAMS];
    query_call q;
    prepare_call(L, &q, values);
    PGresult *res;
    pg_module *m = module_of(L);
    if ((c->guarded ? run_guarded(L, m, c, &q, &res) : run_query(L, m, c, &q, &res)) != 0)
        raise_pushed(L);
    return res;
}

static int l_query(lua_State *L)
{
    PGresult *res = query_from_lua(L);
    push_rows(L, res);
    PQclear(res);
    return 2;
}

static int l_exec(lua_State *L)
{
    PGresult *res = query_from_lua(L);
    const char *tuples = PQcmdTuples(res);
    lua_Integer affected = *tuples ? strtoll(tuples, NULL, 10) : 0;
    PQclear(res);
    lua_pushinteger(L, affected);
    return 1;
}

static int simple(lua_State *L, pg_module *m, pg_conn *c, const char *sql, int unstoppable)
{
    query_call q = { .sql = sql, .unstoppable = unstoppable };
    PGresult *res;
    if (run_query(L, m, c, &q, &res) != 0)
        return -1;
    PQclear(res);
    return 0;
}

/* c:tx(fn): BEGIN; fn(c); COMMIT - or ROLLBACK and the error raised again. */
static int l_tx(lua_State *L)
{
    pg_module *m = module_of(L);
    pg_conn *c = check_conn(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (c->guarded)
        return refuse_in_drill(L, m, c, "a transaction");
    if (simple(L, m, c, "BEGIN", 0) != 0)
        return raise_pushed(L);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 1);
    int rc = lua_pcall(L, 1, LUA_MULTRET, 0);
    int results = lua_gettop(L) - 2;
    if (rc == LUA_OK) {
        if (!c->conn)
            return luaL_error(L, "the connection was closed inside its transaction");
        if (simple(L, m, c, "COMMIT", 0) != 0)
            return raise_pushed(L);
        return results;
    }
    if (c->conn && simple(L, m, c, "ROLLBACK", 1) != 0)
        lua_pop(L, 1); /* the first error is the one that matters */
    return lua_error(L); /* the same value: an abort stays an abort */
}

static int l_close(lua_State *L)
{
    pg_conn **p = luaL_checkudata(L, 1, CONN_META);
    close_conn(module_of(L), *p);
    return 0;
}

static int l_gc(lua_State *L)
{
    pg_conn **p = luaL_checkudata(L, 1, CONN_META);
    if (*p) {
        close_conn(module_of(L), *p);
        free((*p)->label);
        free(*p);
        *p = NULL;
    }
    return 0;
}

static int l_tostring(lua_State *L)
{
    pg_conn **p = luaL_checkudata(L, 1, CONN_META);
    lua_pushfstring(L, "pg connection %s%s", (*p)->label, (*p)->conn ? "" : " (closed)");
    return 1;
}

/* ---- connecting ------------------------------------------------------------------------ */

/* Registers the URI's password (if any) as a secret before anything can
 * print it. Returns 0, or -1 when the URI does not parse (message pushed). */
static int note_password(lua_State *L, const char *uri)
{
    char *error = NULL;
    PQconninfoOption *opts = PQconninfoParse(uri, &error);
    if (!opts) {
        lua_pushfstring(L, "pg.connect: not a PostgreSQL connection string: %s", error ? error : "?");
        PQfreemem(error);
        return -1;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (!strcmp(o->keyword, "password") && o->val && *o->val)
            redact_add_secret(o->val);
    PQconninfoFree(opts);
    return 0;
}

static int l_connect(lua_State *L)
{
    pg_module *m = module_of(L);
    const char *uri = luaL_checkstring(L, 1);
    if (note_password(L, uri) != 0)
        return lua_error(L);
    sandbox_check_abort(L);
    const char *keys[] = { "dbname", "connect_timeout", "application_name", NULL };
    const char *vals[] = { uri, "10", "drctl", NULL };
    double t0 = timefmt_monotonic();
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        lua_pushfstring(L, "cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return raise_pushed(L);
    }
    pg_conn *c = xcalloc(1, sizeof *c);
    c->conn = conn;
    c->label = xasprintf("%s@%s:%s/%s", PQuser(conn), PQhost(conn), PQport(conn), PQdb(conn));
    if (m->host->drill) {
        char *where = xasprintf("%s:%s", PQhost(conn), PQport(conn));
        c->guarded = !drill_scope_has(m->host->drill, DRILL_HOST, where);
        free(where);
    }
    c->next = m->open;
    m->open = c;
    pg_conn **ud = lua_newuserdatauv(L, sizeof *ud, 0);
    *ud = c;
    luaL_setmetatable(L, CONN_META);
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "connection", c->label);
    cJSON_AddNumberToObject(data, "duration_ms", round((timefmt_monotonic() - t0) * 1000));
    if (c->guarded)
        cJSON_AddStringToObject(data, "drill", "read-only: not a branch of this drill");
    if (journal(m, "pg-connect", data) != 0)
        return luaL_error(L, "cannot record the pg-connect event: %s", err_last());
    /* Timestamps read back in UTC and ISO form; a plan can only read. */
    const char *setup = m->host->plan_mode
                            ? "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET default_transaction_read_only = on"
                            : "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'";
    if (simple(L, m, c, setup, 0) != 0)
        return raise_pushed(L);
    return 1;
}

/* ---- streaming copy ----------------------------------------------------------------------- */

/* A table name made safe by the server that has it ("public.booking" ->
 * booking, an unknown name -> a clear error). Pushes it. */
static int push_table_name(lua_State *L, pg_module *m, pg_conn *c, const char *name)
{
    const char *values[1] = { name };
    query_call q = { .sql = "SELECT to_regclass($1)::text AS t", .values = values, .count = 1 };
    PGresult *res;
    if (run_query(L, m, c, &q, &res) != 0)
        return -1;
    int missing = PQgetisnull(res, 0, 0);
    if (missing)
        lua_pushfstring(L, "no table named '%s' on %s", name, c->label);
    else
        lua_pushstring(L, PQgetvalue(res, 0, 0));
    PQclear(res);
    return missing ? -1 : 0;
}

static int is_query(const char *text)
{
    while (*text == ' ' || *text == '\n' || *text == '(')
        text++;
    return strncasecmp(text, "select", 6) == 0 || strncasecmp(text, "with", 4) == 0 ||
           strncasecmp(text, "values", 6) == 0 || strncasecmp(text, "table", 5) == 0;
}

/* "(a, b)" from a list of column names, each quoted by libpq, or "". */
static int push_column_list(lua_State *L, pg_conn *c, int spec)
{
    lua_getfield(L, spec, "columns");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushstring(L, "");
        return 0;
    }
    if (!lua_istable(L, -1)) {
        lua_pushstring(L, "pg.copy: columns must be a list of column names");
        return -1;
    }
    buf b = BUF_INIT;
    buf_putc(&b, '(');
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        const char *name = lua_tostring(L, -1);
        char *quoted = name ? PQescapeIdentifier(c->conn, name, strlen(name)) : NULL;
        lua_pop(L, 1);
        if (!quoted) {
            buf_free(&b);
            lua_pushstring(L, "pg.copy: a column name is not a string");
            return -1;
        }
        buf_printf(&b, "%s%s", i > 1 ? ", " : "", quoted);
        PQfreemem(quoted);
    }
    buf_putc(&b, ')');
    lua_pop(L, 1);
    lua_pushstring(L, buf_cstr(&b));
    buf_free(&b);
    return 0;
}

typedef struct copy_totals {
    long long chunks, bytes;
    long long rows; /* as the target counted them ("COPY n") */
} copy_totals;

/* Moves the rows: each chunk libpq gives from the source goes to the
 * target as it comes, so memory stays flat whatever the table's size. */
static const char *stream_rows(pg_module *m, pg_conn *src, pg_conn *dst, copy_totals *t)
{
    double next_report = timefmt_monotonic() + 2;
    for (;;) {
        char *chunk = NULL;
        int len = PQgetCopyData(src->conn, &chunk, 0);
        if (len == -1)
            return NULL; /* done */
        if (len < 0)
            return PQerrorMessage(src->conn);
        int put = PQputCopyData(dst->conn, chunk, len);
        PQfreemem(chunk);
        if (put != 1)
            return PQerrorMessage(dst->conn);
        t->chunks++; /* a row each, plus binary format's header and trailer */
        t->bytes += len;
        if ((t->chunks & 4095) == 0) {
            const char *why = stop_reason(m, 0);
            if (why)
                return why;
            if (timefmt_monotonic() > next_report) {
                term_info("    copied %lld rows (%.1f MB) so far", t->chunks, t->bytes / 1e6);
                next_report = timefmt_monotonic() + 2;
            }
        }
    }
}

static long peak_rss_kb(void)
{
    struct rusage u;
    return getrusage(RUSAGE_SELF, &u) == 0 ? u.ru_maxrss : 0;
}

/* Ends both COPYs; the target's commits only if the stream was whole. */
static const char *finish_copy(pg_conn *src, pg_conn *dst, const char *failure, copy_totals *t)
{
    if (PQputCopyEnd(dst->conn, failure ? "the copy was stopped" : NULL) != 1 && !failure)
        failure = PQerrorMessage(dst->conn);
    if (failure) {
        PGcancel *cancel = PQgetCancel(src->conn);
        char errbuf[256];
        if (cancel) {
            PQcancel(cancel, errbuf, sizeof errbuf);
            PQfreeCancel(cancel);
        }
    }
    static char message[1024];
    const char *result_error = NULL;
    pg_conn *both[2] = { src, dst };
    for (int i = 0; i < 2; i++) {
        PGresult *res;
        while ((res = PQgetResult(both[i]->conn))) {
            if (PQresultStatus(res) == PGRES_COPY_OUT) { /* drain what the cancel leaves */
                char *chunk;
                while (PQgetCopyData(both[i]->conn, &chunk, 0) > 0)
                    PQfreemem(chunk);
            } else if (PQresultStatus(res) == PGRES_COMMAND_OK && both[i] == dst) {
                t->rows = strtoll(PQcmdTuples(res), NULL, 10);
            } else if (PQresultStatus(res) != PGRES_COMMAND_OK && !result_error) {
                snprintf(message, sizeof message, "%s on %s", PQresultErrorMessage(res), both[i]->label);
                result_error = message;
            }
            PQclear(res);
        }
    }
    return failure ? failure : result_error;
}

/* pg.copy(src, dst, {from=, to=, columns=}) */
static int l_copy(lua_State *L)
{
    pg_module *m = module_of(L);
    pg_conn *src = check_conn(L, 1), *dst = check_conn(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    if (m->host->plan_mode)
        return luaL_error(L, "pg.copy is refused in plan mode (a plan must not act)");
    if (src == dst)
        return luaL_error(L, "pg.copy needs two different connections");
    if (dst->guarded)
        return refuse_in_drill(L, m, dst, "a copy into it");
    lua_getfield(L, 3, "from");
    lua_getfield(L, 3, "to");
    const char *from = lua_tostring(L, -2), *to = lua_tostring(L, -1);
    if (!from || !to)
        return luaL_error(L, "pg.copy needs {from = \"table\" or \"SELECT ...\", to = \"table\"}");
    if (push_column_list(L, dst, 3) != 0)
        return lua_error(L);
    const char *columns = lua_tostring(L, -1);
    if (!is_query(from) && push_table_name(L, m, src, from) != 0)
        return raise_pushed(L);
    if (src->guarded && is_query(from))
        return refuse_in_drill(L, m, src, "a copy from a query (only whole tables are read)");
    const char *source = is_query(from) ? from : lua_tostring(L, -1);
    if (push_table_name(L, m, dst, to) != 0)
        return raise_pushed(L);
    const char *target = lua_tostring(L, -1);
    lua_pushfstring(L, is_query(from) ? "COPY (%s) TO STDOUT (FORMAT binary)" : "COPY %s %s TO STDOUT (FORMAT binary)",
                    source, is_query(from) ? "" : columns);
    lua_pushfstring(L, "COPY %s %s FROM STDIN (FORMAT binary)", target, columns);
    const char *copy_out = lua_tostring(L, -2), *copy_in = lua_tostring(L, -1);
    double t0 = timefmt_monotonic();
    PGresult *res;
    query_call in = { .sql = copy_in }, out = { .sql = copy_out };
    if (run_query(L, m, dst, &in, &res) != 0)
        return raise_pushed(L);
    PQclear(res);
    if (run_query(L, m, src, &out, &res) != 0) {
        PQputCopyEnd(dst->conn, "the source could not be read");
        while ((res = PQgetResult(dst->conn)))
            PQclear(res);
        return raise_pushed(L);
    }
    PQclear(res);
    copy_totals t = { 0 };
    const char *failure = stream_rows(m, src, dst, &t);
    failure = finish_copy(src, dst, failure, &t);
    double seconds = timefmt_monotonic() - t0;
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "from", is_query(from) ? "(query)" : source);
    cJSON_AddStringToObject(data, "to", target);
    cJSON_AddNumberToObject(data, "rows", (double)t.rows);
    cJSON_AddNumberToObject(data, "bytes", (double)t.bytes);
    cJSON_AddNumberToObject(data, "duration_ms", round(seconds * 1000));
    if (failure)
        cJSON_AddStringToObject(data, "error", failure);
    if (journal(m, "pg-copy", data) != 0)
        return luaL_error(L, "cannot record the pg-copy event: %s", err_last());
    if (failure) {
        lua_pushfstring(L, "pg.copy %s -> %s stopped after %I rows: %s (nothing was committed on the target)",
                        is_query(from) ? "(query)" : source, target, (lua_Integer)t.chunks, failure);
        return raise_pushed(L);
    }
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, t.rows);
    lua_setfield(L, -2, "rows");
    lua_pushinteger(L, t.bytes);
    lua_setfield(L, -2, "bytes");
    lua_pushnumber(L, round(seconds * 1000) / 1000);
    lua_setfield(L, -2, "seconds");
    lua_pushinteger(L, peak_rss_kb());
    lua_setfield(L, -2, "peak_rss_kb");
    return 1;
}

/* ---- the module --------------------------------------------------------------------------- */

static int open_pg(lua_State *L)
{
    pg_module *m = module_of(L);
    static const luaL_Reg methods[] = {
        { "query", l_query }, { "exec", l_exec }, { "tx", l_tx }, { "close", l_close }, { NULL, NULL },
    };
    if (luaL_newmetatable(L, CONN_META)) {
        luaL_newlibtable(L, methods);
        lua_pushlightuserdata(L, m);
        luaL_setfuncs(L, methods, 1);
        lua_setfield(L, -2, "__index");
        lua_pushlightuserdata(L, m);
        lua_pushcclosure(L, l_gc, 1);
        lua_setfield(L, -2, "__gc");
        lua_pushlightuserdata(L, m);
        lua_pushcclosure(L, l_tostring, 1);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "pg connection");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    static const luaL_Reg functions[] = { { "_connect", l_connect }, { "copy", l_copy }, { NULL, NULL } };
    luaL_newlibtable(L, functions);
    lua_pushlightuserdata(L, m);
    luaL_setfuncs(L, functions, 1);
    jsonlua_push_null(L);
    lua_setfield(L, -2, "null");
    sandbox_extend_module(L, m->sb, pg_lua, sizeof pg_lua - 1, "=pg.lua");
    return 1;
}

pg_module *pgmod_register(sandbox *sb, dr_host *host)
{
    pg_module *m = xcalloc(1, sizeof *m);
    m->host = host;
    m->sb = sb;
    host->step_ended = close_all;
    host->step_ended_ud = m;
    sandbox_add_module(sb, "pg", open_pg, m);
    return m;
}

void pgmod_free(pg_module *m)
{
    if (!m)
        return;
    close_all(m);
    free(m);
}
