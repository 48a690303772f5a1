#include "pgmod.h"

#include "buf.h"
#include "drill.h"
#include "err.h"
#include "jsonlua.h"
#include "pgconnect.h"
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
    int plan;               /* opened by a plan: read-only */
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

static void cancel_on_server(PGconn *conn)
{
    PGcancel *cancel = PQgetCancel(conn);
    char errbuf[256];
    if (cancel) {
        PQcancel(cancel, errbuf, sizeof errbuf);
        PQfreeCancel(cancel);
    }
}

/* Waits until libpq has a result to give without blocking; on a stop,
 * cancels the query on the server (once) and says why in *stopped. */
static void wait_until_ready(pg_module *m, pg_conn *c, double call_deadline, int unstoppable, const char **stopped)
{
    while (PQisBusy(c->conn)) {
        const char *why = unstoppable || *stopped ? NULL : stop_reason(m, call_deadline);
        if (why) {
            cancel_on_server(c->conn);
            *stopped = why;
        }
        struct pollfd pfd = { .fd = PQsocket(c->conn), .events = POLLIN };
        poll(&pfd, 1, 100);
        if (!PQconsumeInput(c->conn))
            return;
    }
}

/* Rows taken one at a time (libpq's single-row mode), so that libpq never
 * holds a whole result: each row goes into a Lua table, where the memory
 * cap counts it, or is only counted (c:exec). Past a limit the query is
 * cancelled and the rest read and dropped. */
typedef struct row_stream {
    lua_State *L;
    int table;              /* stack index of the rows table; 0: rows are dropped */
    long long max_rows;     /* 0: no limit */
    long long max_bytes;    /* of result text (the values as the server sent them); 0: no limit */
    long long rows, bytes;  /* of the current statement */
    const char *over;       /* "max_rows" or "max_bytes" once passed */
    int lua_failed;         /* a row could not be made in Lua: its error value is on the stack */
    int statement_ended;    /* the next result belongs to the next statement of the text */
} row_stream;

static void push_value(lua_State *L, const PGresult *res, int row, int col);

/* One row into the table (arguments: the PGresult as light userdata, the
 * table, the index). Run as a protected call: a memory error while libpq
 * is in the middle of a result must not unwind past it. */
static int add_row_protected(lua_State *L)
{
    const PGresult *res = lua_touserdata(L, 1);
    int cols = PQnfields(res);
    lua_createtable(L, 0, cols);
    for (int col = 0; col < cols; col++) {
        push_value(L, res, 0, col);
        lua_setfield(L, -2, PQfname(res, col));
    }
    lua_rawseti(L, 2, lua_tointeger(L, 3));
    return 0;
}

/* A text of several statements returns the last one's rows. */
static void start_next_statement(row_stream *s)
{
    if (s->table)
        for (long long i = s->rows; i >= 1; i--) {
            lua_pushnil(s->L); /* clearing a present key allocates nothing: this cannot raise */
            lua_rawseti(s->L, s->table, i);
        }
    s->rows = s->bytes = 0;
    s->statement_ended = 0;
}

static void take_row(row_stream *s, pg_conn *c, const PGresult *res)
{
    if (s->over || s->lua_failed)
        return; /* draining after a cancel */
    long long bytes = 0;
    for (int col = 0; col < PQnfields(res); col++)
        bytes += PQgetlength(res, 0, col);
    if (s->max_rows > 0 && s->rows + 1 > s->max_rows)
        s->over = "max_rows";
    else if (s->max_bytes > 0 && s->bytes + bytes > s->max_bytes)
        s->over = "max_bytes";
    if (s->over) {
        cancel_on_server(c->conn);
        return;
    }
    s->rows++;
    s->bytes += bytes;
    if (!s->table)
        return;
    lua_pushcfunction(s->L, add_row_protected);
    lua_pushlightuserdata(s->L, (void *)res);
    lua_pushvalue(s->L, s->table);
    lua_pushinteger(s->L, (lua_Integer)s->rows);
    if (lua_pcall(s->L, 3, 0, 0) != LUA_OK) {
        s->lua_failed = 1;
        cancel_on_server(c->conn);
    }
}

/* Waits for the query sent on c; on a stop, cancels it on the server.
 * Rows go to `rows` when given (single-row mode). Returns the last result
 * (caller clears), a COPY's result for the caller to stream, or NULL. */
static PGresult *await_result(const char **stopped, pg_module *m, pg_conn *c, double call_deadline, int unstoppable,
                              row_stream *rows)
{
    *stopped = NULL;
    PGresult *res, *last = NULL;
    for (;;) {
        wait_until_ready(m, c, call_deadline, unstoppable, stopped);
        if (!(res = PQgetResult(c->conn)))
            break;
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT) {
            PQclear(last);
            return res;
        }
        if (rows && rows->statement_ended && !rows->over && !rows->lua_failed)
            start_next_statement(rows);
        if (st == PGRES_SINGLE_TUPLE) {
            if (rows && !*stopped)
                take_row(rows, c, res);
            PQclear(res);
            continue;
        }
        PQclear(last);
        last = res;
        if (rows)
            rows->statement_ended = 1;
    }
    return last;
}

/* A COPY that c:query or c:exec started: ended at once (COPY FROM STDIN
 * gets no data, COPY TO STDOUT is cancelled and drained), so that the
 * connection is usable again. */
static void end_unwanted_copy(pg_conn *c, PGresult *res)
{
    if (PQresultStatus(res) == PGRES_COPY_IN) {
        PQputCopyEnd(c->conn, "COPY is not run by c:query or c:exec (use pg.copy)");
    } else {
        cancel_on_server(c->conn);
        char *chunk;
        while (PQgetCopyData(c->conn, &chunk, 0) > 0)
            PQfreemem(chunk);
    }
    PQclear(res);
    while ((res = PQgetResult(c->conn))) {
        if (PQresultStatus(res) == PGRES_COPY_OUT) {
            char *chunk;
            while (PQgetCopyData(c->conn, &chunk, 0) > 0)
                PQfreemem(chunk);
        }
        PQclear(res);
    }
}

/* ---- values ------------------------------------------------------------------------- */

enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_OID = 26, OID_FLOAT4 = 700,
       OID_FLOAT8 = 701, OID_TIMESTAMP = 1114, OID_TIMESTAMPTZ = 1184, OID_NUMERIC = 1700 };

/* "2026-01-11 14:29:59.5+00" (TimeZone UTC, DateStyle ISO) -> "2026-01-11T14:29:59.5Z".
 * No heap: a Lua memory error here must leave nothing behind. */
static void push_timestamp(lua_State *L, const char *text, int with_zone)
{
    char s[64];
    size_t n = strlen(text);
    if (n >= sizeof s) { /* not a timestamp libpq sends in ISO style: as it came */
        lua_pushstring(L, text);
        return;
    }
    memcpy(s, text, n + 1);
    char *space = strchr(s, ' ');
    if (space)
        *space = 'T';
    if (with_zone && n > 3 && strcmp(s + n - 3, "+00") == 0) {
        s[n - 3] = 'Z';
        s[n - 2] = '\0';
    }
    lua_pushstring(L, s);
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

/* {columns=, command=, affected=} of a statement's last result (in
 * single-row mode that result has no rows: `rows` is how many came). */
static void push_info(lua_State *L, const PGresult *res, long long rows)
{
    int cols = PQnfields(res);
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
static const char *read_params(const char **values, int *count, lua_State *L, int first, int last)
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

/* What c:query brings back into Lua unless the call says otherwise. A
 * runbook reads figures and short lists; a result past these limits is a
 * mistake (a missing WHERE, a whole table) that would otherwise take
 * hundreds of MB in Lua and as much again while a step's outputs are
 * converted. 100,000 rows of a few columns are some 40 MB of Lua tables,
 * 64 MiB of text about twice that: both well inside the 512 MiB cap. */
#define DEFAULT_MAX_ROWS 100000
#define DEFAULT_MAX_BYTES (64LL * 1024 * 1024)

typedef struct query_call {
    const char *sql;
    const char **values;
    int count;
    double timeout;     /* seconds, 0: none but the step's */
    int unstoppable;    /* ROLLBACK after an abort must still run */
    int single;         /* one statement only (the extended protocol), even without params */
    int quiet;          /* the engine's own bracket around a statement: not journaled */
    int copy;           /* a COPY the caller streams (pg.copy) */
    row_stream *rows;   /* rows one at a time (c:query, c:exec); NULL: libpq keeps the result */
} query_call;

static void describe_limit(lua_State *L, pg_conn *c, const row_stream *rows)
{
    if (!strcmp(rows->over, "max_rows"))
        lua_pushfstring(L, "the result of the query on %s has more than %I rows, c:query's limit (max_rows); the "
                        "query was cancelled. Give c:query{ sql = ..., max_rows = N } to take more, or read it in "
                        "pieces (a cursor: DECLARE ... then FETCH 1000 in c:tx), or move it with pg.copy",
                        c->label, (lua_Integer)rows->max_rows);
    else
        lua_pushfstring(L, "the result of the query on %s has more than %I bytes of text, c:query's limit "
                        "(max_bytes); the query was cancelled after %I rows. Give c:query{ sql = ..., max_bytes "
                        "= N } to take more, or read it in pieces (a cursor: DECLARE ... then FETCH 1000 in "
                        "c:tx), or move it with pg.copy", c->label, (lua_Integer)rows->max_bytes,
                        (lua_Integer)rows->rows);
}

static void push_sql_error(lua_State *L, pg_conn *c, const PGresult *res)
{
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

static int journal_query(pg_module *m, pg_conn *c, const query_call *q, double t0, const PGresult *res, int ok,
                         const char *stopped)
{
    if (q->quiet)
        return 0;
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "connection", c->label);
    buf sql = BUF_INIT;
    buf_append(&sql, q->sql, strlen(q->sql) > 300 ? 300 : strlen(q->sql));
    cJSON_AddStringToObject(data, "sql", buf_cstr(&sql));
    buf_dispose(&sql);
    cJSON_AddNumberToObject(data, "duration_ms", round((timefmt_monotonic() - t0) * 1000));
    if (ok && PQresultStatus(res) == PGRES_TUPLES_OK)
        cJSON_AddNumberToObject(data, "rows", q->rows ? (double)q->rows->rows : PQntuples(res));
    if (!ok && res && PQresultErrorField(res, PG_DIAG_SQLSTATE))
        cJSON_AddStringToObject(data, "sqlstate", PQresultErrorField(res, PG_DIAG_SQLSTATE));
    if (stopped)
        cJSON_AddStringToObject(data, "stopped", stopped);
    return journal(m, "pg-query", data);
}

/* Why a query failed, for the error value. */
typedef struct query_failure {
    pg_conn *c;
    const row_stream *rows;
    const PGresult *res;
    const char *stopped, *over;
    int unwanted_copy, jrc;
} query_failure;

/* Pushes the error value of a failed query (argument: the query_failure
 * as light userdata). Run as a protected call: the caller still holds the
 * PGresult, which a Lua memory error must not leak. */
static int push_failure_protected(lua_State *L)
{
    const query_failure *f = lua_touserdata(L, 1);
    if (f->stopped)
        lua_pushfstring(L, "the query on %s was cancelled: %s", f->c->label, f->stopped);
    else if (f->over)
        describe_limit(L, f->c, f->rows);
    else if (f->unwanted_copy)
        lua_pushfstring(L, "c:query and c:exec do not run COPY ... FROM STDIN or TO STDOUT (on %s): pg.copy "
                        "streams a table or a query from one connection into another", f->c->label);
    else if (f->jrc)
        lua_pushfstring(L, "cannot record the pg-query event: %s", err_last());
    else
        push_sql_error(L, f->c, f->res);
    return 1;
}

/* Runs one query; on success leaves its result in *out. On failure pushes
 * the error value and returns -1. */
static int run_query(PGresult **out, lua_State *L, pg_module *m, pg_conn *c, const query_call *q)
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
    if (q->rows)
        PQsetSingleRowMode(c->conn);
    const char *stopped;
    PGresult *res = await_result(&stopped, m, c, deadline, q->unstoppable, q->rows);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int unwanted_copy = !q->copy && (st == PGRES_COPY_IN || st == PGRES_COPY_OUT);
    if (unwanted_copy) {
        end_unwanted_copy(c, res);
        res = NULL;
    }
    const char *over = q->rows ? q->rows->over : NULL;
    int lua_failed = q->rows && q->rows->lua_failed;
    int ok = !stopped && !over && !lua_failed && !unwanted_copy &&
             (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN || st == PGRES_COPY_OUT);
    int jrc = journal_query(m, c, q, t0, res, ok, stopped ? stopped : over);
    if (ok && jrc == 0) {
        *out = res;
        return 0;
    }
    if (!lua_failed) { /* else its error value is on the stack already */
        query_failure f = { .c = c, .rows = q->rows, .res = res, .stopped = stopped, .over = over,
                            .unwanted_copy = unwanted_copy, .jrc = jrc };
        lua_pushcfunction(L, push_failure_protected);
        lua_pushlightuserdata(L, &f);
        lua_pcall(L, 1, 1, 0); /* a Lua error here (out of memory) is the error value instead */
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

/* query{max_rows=} / {max_bytes=}: a whole number, at least 1; absent: the default. */
static long long read_limit(lua_State *L, const char *field, long long fallback)
{
    lua_getfield(L, 2, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return fallback;
    }
    int whole;
    lua_Integer n = lua_tointegerx(L, -1, &whole);
    if (!whole || lua_type(L, -1) != LUA_TNUMBER || n < 1)
        return luaL_error(L, "query{%s=}: %s is not a whole number of at least 1 (the default is %I)", field,
                          luaL_tolstring(L, -1, NULL), (lua_Integer)fallback);
    lua_pop(L, 1);
    return n;
}

/* c:query(sql, ...) or c:query{sql=, params={}, timeout=, max_rows=, max_bytes=};
 * the limits go to `limits`. */
static int prepare_call(query_call *q, row_stream *limits, const char **values, lua_State *L)
{
    memset(q, 0, sizeof *q);
    q->values = values;
    limits->max_rows = DEFAULT_MAX_ROWS;
    limits->max_bytes = DEFAULT_MAX_BYTES;
    const char *bad;
    if (lua_type(L, 2) == LUA_TTABLE) {
        limits->max_rows = read_limit(L, "max_rows", DEFAULT_MAX_ROWS);
        limits->max_bytes = read_limit(L, "max_bytes", DEFAULT_MAX_BYTES);
        lua_getfield(L, 2, "sql");
        q->sql = lua_tostring(L, -1);
        if (!q->sql)
            return luaL_error(L, "query{...} needs sql = \"...\"");
        lua_getfield(L, 2, "timeout");
        if (!lua_isnil(L, -1)) {
            double seconds;
            if (lua_type(L, -1) == LUA_TNUMBER)
                seconds = lua_tonumber(L, -1);
            else if (timefmt_parse_duration(&seconds, luaL_checkstring(L, -1)) != 0)
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
            bad = read_params(values, &q->count, L, first, lua_gettop(L));
        } else {
            bad = NULL;
        }
    } else {
        q->sql = luaL_checkstring(L, 2);
        bad = read_params(values, &q->count, L, 3, lua_gettop(L));
    }
    if (bad)
        return luaL_error(L, "%s", bad);
    return 0;
}

/* A change a drill refuses on a server it did not make: recorded, so the
 * step fails even when the runbook catches the error. Raises. */
static int refuse_in_drill(lua_State *L, pg_module *m, pg_conn *c, const char *what)
{
    lua_pushfstring(L, "the drill refused %s on %s: that server is not one of the drill's branches, and a "
                    "drill only reads it", what, c->label);
    return drill_refuse_lua(L, m->host, lua_tostring(L, -1));
}

/* Past blanks and SQL comments (-- to the end of the line, and block
 * comments, which nest in PostgreSQL); NULL inside a comment that never
 * ends. */
static const char *skip_blanks_and_comments(const char *sql)
{
    for (;;) {
        while (*sql && (isspace((unsigned char)*sql) || *sql == '('))
            sql++;
        if (sql[0] == '-' && sql[1] == '-') {
            sql += strcspn(sql, "\n");
        } else if (sql[0] == '/' && sql[1] == '*') {
            int depth = 0;
            do {
                if (!*sql)
                    return NULL;
                if (sql[0] == '/' && sql[1] == '*') {
                    depth++;
                    sql += 2;
                } else if (sql[0] == '*' && sql[1] == '/') {
                    depth--;
                    sql += 2;
                } else {
                    sql++;
                }
            } while (depth > 0);
        } else {
            return sql;
        }
    }
}

int pgmod_statement_reads_only(const char *sql)
{
    static const char *const words[] = { "select", "with", "table", "values", "show", "explain", NULL };
    sql = skip_blanks_and_comments(sql);
    if (!sql)
        return 0;
    for (int i = 0; words[i]; i++) {
        size_t n = strlen(words[i]);
        if (strncasecmp(sql, words[i], n) == 0 && !isalnum((unsigned char)sql[n]) && sql[n] != '_' &&
            sql[n] != '$')
            return 1;
    }
    return 0;
}

/* Why a session may only read, or NULL: a plan's, or in a drill one to a
 * server the drill did not make. */
static const char *read_only_session(const pg_module *m, const pg_conn *c)
{
    if (c->guarded)
        return "drill";
    if (c->plan || m->host->plan_mode)
        return "plan";
    return NULL;
}

/* A statement a read-only session does not run; in a drill the refusal is
 * recorded (the step fails even if the runbook catches it). Raises. */
static int refuse_statement(lua_State *L, pg_module *m, pg_conn *c, const char *sql, const char *why)
{
    char text[160];
    snprintf(text, sizeof text, "the statement \"%.80s%s\"%s", sql, strlen(sql) > 80 ? "..." : "", why);
    lua_pushstring(L, text);
    if (c->guarded)
        return refuse_in_drill(L, m, c, lua_tostring(L, -1));
    return luaL_error(L, "plan mode refused %s on %s: a plan only reads (one SELECT, WITH, TABLE, VALUES, SHOW or "
                      "EXPLAIN at a time, in a read-only transaction rolled back after it)", lua_tostring(L, -1),
                      c->label);
}

static void rollback_quietly(pg_module *m, pg_conn *c)
{
    if (PQtransactionStatus(c->conn) == PQTRANS_IDLE)
        return;
    PGresult *res;
    const char *stopped;
    if (PQsendQuery(c->conn, "ROLLBACK")) {
        res = await_result(&stopped, m, c, 0, 1, NULL);
        PQclear(res);
    }
}

/* BEGIN READ ONLY, then a query, so that the transaction has taken its
 * snapshot: from then on PostgreSQL itself refuses to make it read-write
 * (SET TRANSACTION READ WRITE, set_config('transaction_read_only', 'off'),
 * a function's SET clause, inside a savepoint or not), whatever a
 * statement did to the session's defaults. */
static int open_read_only_transaction(lua_State *L, pg_module *m, pg_conn *c)
{
    if (PQtransactionStatus(c->conn) != PQTRANS_IDLE) {
        lua_pushfstring(L, "the read-only session on %s is inside a transaction it did not open: it is not used "
                        "again (connect anew)", c->label);
        close_conn(m, c);
        return -1;
    }
    query_call begin = { .sql = "BEGIN TRANSACTION READ ONLY; SELECT current_setting('transaction_read_only')",
                         .quiet = 1 };
    PGresult *res;
    if (run_query(&res, L, m, c, &begin) != 0) {
        rollback_quietly(m, c);
        return -1;
    }
    int read_only = PQtransactionStatus(c->conn) == PQTRANS_INTRANS && PQntuples(res) == 1 &&
                    !strcmp(PQgetvalue(res, 0, 0), "on");
    PQclear(res);
    if (!read_only) {
        rollback_quietly(m, c);
        lua_pushfstring(L, "cannot open a read-only transaction on %s: nothing was run", c->label);
        return -1;
    }
    return 0;
}

static int ends_transaction(const char *tag)
{
    return !strncmp(tag, "COMMIT", 6) || !strncmp(tag, "ROLLBACK", 8) || !strncmp(tag, "PREPARE", 7);
}

/* Whether the SQL error on the stack's top is PostgreSQL refusing a write
 * in a read-only transaction (SQLSTATE 25006): a drill records it as its
 * own refusal, so that a runbook catching the error still fails its step. */
static int refused_as_a_write(lua_State *L)
{
    if (!lua_istable(L, -1))
        return 0;
    lua_getfield(L, -1, "sqlstate");
    int write = lua_isstring(L, -1) && !strcmp(lua_tostring(L, -1), "25006");
    lua_pop(L, 1);
    return write;
}

/* A read-only session runs each statement alone (the extended protocol
 * takes one statement: "COMMIT; BEGIN READ WRITE; ..." is refused by the
 * server), in a read-only transaction that has its snapshot, and rolls it
 * back after: nothing a statement does can stay, and a statement that
 * ends that transaction itself is refused. A first word that is not a
 * read is refused before anything is sent; that filter gives the clear
 * message, the transaction is what holds. */
static int run_read_only(PGresult **res, lua_State *L, pg_module *m, pg_conn *c, query_call *q)
{
    *res = NULL;
    if (!pgmod_statement_reads_only(q->sql))
        return refuse_statement(L, m, c, q->sql, "");
    if (open_read_only_transaction(L, m, c) != 0)
        return -1;
    q->single = 1;
    int rc = run_query(res, L, m, c, q);
    PGTransactionStatusType ts = PQtransactionStatus(c->conn);
    int ended = rc == 0 && (ts != PQTRANS_INTRANS || ends_transaction(PQcmdStatus(*res)));
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
        query_call rollback = { .sql = "ROLLBACK", .unstoppable = 1, .quiet = 1 };
        PGresult *done;
        if (run_query(&done, L, m, c, &rollback) != 0) {
            PQclear(*res);
            *res = NULL;
            return -1;
        }
        PQclear(done);
    }
    if (ended) {
        PQclear(*res);
        *res = NULL;
        return refuse_statement(L, m, c, q->sql, ", which ended the read-only transaction it ran in,");
    }
    if (rc != 0 && c->guarded && refused_as_a_write(L))
        return refuse_statement(L, m, c, q->sql, ", a write PostgreSQL refused in a read-only transaction,");
    return rc;
}

/* Runs the statement of a c:query / c:exec call; raises on failure. */
static PGresult *run_statement(lua_State *L, pg_module *m, pg_conn *c, query_call *q)
{
    PGresult *res;
    if ((read_only_session(m, c) ? run_read_only(&res, L, m, c, q) : run_query(&res, L, m, c, q)) != 0)
        raise_pushed(L);
    return res;
}

static int push_info_protected(lua_State *L)
{
    push_info(L, lua_touserdata(L, 1), (long long)lua_tointeger(L, 2));
    return 1;
}

/* c:query: the rows (at most max_rows, max_bytes of text) and the info. */
static int l_query(lua_State *L)
{
    pg_module *m = module_of(L);
    pg_conn *c = check_conn(L, 1);
    const char *values[MAX_PARAMS];
    query_call q;
    row_stream rows = { .L = L };
    prepare_call(&q, &rows, values, L);
    lua_newtable(L);
    rows.table = lua_gettop(L);
    q.rows = &rows;
    PGresult *res = run_statement(L, m, c, &q);
    lua_pushcfunction(L, push_info_protected);
    lua_pushlightuserdata(L, res);
    lua_pushinteger(L, (lua_Integer)rows.rows);
    int rc = lua_pcall(L, 2, 1, 0);
    PQclear(res);
    if (rc != LUA_OK)
        return lua_error(L);
    return 2;
}

/* c:exec: the rows affected; rows a statement returns are counted and
 * dropped as they come, never held. */
static int l_exec(lua_State *L)
{
    pg_module *m = module_of(L);
    pg_conn *c = check_conn(L, 1);
    if (!c->guarded && read_only_session(m, c))
        return luaL_error(L, "c:exec is refused in plan mode (a plan must not act): read with c:query");
    const char *values[MAX_PARAMS];
    query_call q;
    row_stream rows = { .L = L };
    prepare_call(&q, &rows, values, L);
    rows.max_rows = rows.max_bytes = 0;
    q.rows = &rows;
    PGresult *res = run_statement(L, m, c, &q);
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
    if (run_query(&res, L, m, c, &q) != 0)
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
    if (read_only_session(m, c))
        return luaL_error(L, "c:tx is refused in plan mode (a plan must not act): read with c:query");
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
    if (!opts) { /* libpq's message is copied and freed before Lua can raise */
        char message[512];
        snprintf(message, sizeof message, "pg.connect: not a PostgreSQL connection string: %s", error ? error : "?");
        PQfreemem(error);
        lua_pushstring(L, message);
        return -1;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (!strcmp(o->keyword, "password") && o->val && *o->val)
            redact_add_named_secret("the password of the connection string given to pg.connect", o->val);
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
    /* The handle first, so that nothing made below is held only by C when
     * Lua raises (out of memory): its __gc frees what it points to. */
    pg_conn **ud = lua_newuserdatauv(L, sizeof *ud, 0);
    *ud = NULL;
    luaL_setmetatable(L, CONN_META);
    double t0 = timefmt_monotonic();
    PGconn *conn = pg_connect_uri(uri, "drctl", "10");
    if (PQstatus(conn) != CONNECTION_OK) {
        char message[1024];
        snprintf(message, sizeof message, "cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
        PQfinish(conn);
        lua_pushstring(L, message);
        return raise_pushed(L);
    }
    pg_conn *c = xcalloc(1, sizeof *c);
    c->conn = conn;
    *ud = c;
    c->label = xasprintf("%s@%s:%s/%s", PQuser(conn), PQhost(conn), PQport(conn), PQdb(conn));
    c->plan = m->host->plan_mode;
    if (m->host->drill) {
        char *where = xasprintf("%s:%s", PQhost(conn), PQport(conn));
        c->guarded = !drill_scope_has(m->host->drill, DRILL_HOST, where);
        free(where);
    }
    c->next = m->open;
    m->open = c;
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "connection", c->label);
    cJSON_AddNumberToObject(data, "duration_ms", round((timefmt_monotonic() - t0) * 1000));
    if (c->guarded)
        cJSON_AddStringToObject(data, "drill", "read-only: not a branch of this drill");
    if (journal(m, "pg-connect", data) != 0)
        return luaL_error(L, "cannot record the pg-connect event: %s", err_last());
    /* Timestamps read back in UTC and ISO form. A plan's statements each
     * run in their own read-only transaction (run_read_only); the session's
     * default is read-only too, should anything run outside one. */
    const char *setup = m->host->plan_mode
                            ? "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET default_transaction_read_only = on"
                            : "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'";
    if (simple(L, m, c, setup, 0) != 0)
        return raise_pushed(L);
    return 1;
}

/* ---- streaming copy ----------------------------------------------------------------------- */

static int push_text(lua_State *L)
{
    lua_pushstring(L, lua_touserdata(L, 1));
    return 1;
}

static int push_missing_table(lua_State *L)
{
    const pg_conn *c = lua_touserdata(L, 2);
    lua_pushfstring(L, "no table named '%s' on %s", (const char *)lua_touserdata(L, 1), c->label);
    return 1;
}

/* A table name made safe by the server that has it ("public.booking" ->
 * booking, an unknown name -> a clear error). Pushes it. */
static int push_table_name(lua_State *L, pg_module *m, pg_conn *c, const char *name)
{
    const char *values[1] = { name };
    query_call q = { .sql = "SELECT to_regclass($1)::text AS t", .values = values, .count = 1 };
    PGresult *res;
    if (run_query(&res, L, m, c, &q) != 0)
        return -1;
    int missing = PQgetisnull(res, 0, 0);
    lua_pushcfunction(L, missing ? push_missing_table : push_text);
    lua_pushlightuserdata(L, missing ? (void *)name : PQgetvalue(res, 0, 0));
    lua_pushlightuserdata(L, c);
    int status = lua_pcall(L, 2, 1, 0); /* so that a Lua memory error cannot leak res */
    PQclear(res);
    return missing || status != LUA_OK ? -1 : 0;
}

static int is_query(const char *text)
{
    while (*text == ' ' || *text == '\n' || *text == '(')
        text++;
    return strncasecmp(text, "select", 6) == 0 || strncasecmp(text, "with", 4) == 0 ||
           strncasecmp(text, "values", 6) == 0 || strncasecmp(text, "table", 5) == 0;
}

/* The column list being built; the caller owns it, so that a Lua error
 * while the names are read (a __len, the memory cap) cannot leak it. */
typedef struct column_list {
    pg_conn *c;
    buf text;
    const char *bad;
} column_list;

/* Arguments: the column_list as light userdata, the list of names. */
static int build_column_list(lua_State *L)
{
    column_list *l = lua_touserdata(L, 1);
    buf_putc(&l->text, '(');
    lua_Integer n = luaL_len(L, 2);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        const char *name = lua_tostring(L, -1);
        char *quoted = name ? PQescapeIdentifier(l->c->conn, name, strlen(name)) : NULL;
        lua_pop(L, 1);
        if (!quoted) {
            l->bad = "pg.copy: a column name is not a string";
            return 0;
        }
        buf_printf(&l->text, "%s%s", i > 1 ? ", " : "", quoted);
        PQfreemem(quoted);
    }
    buf_putc(&l->text, ')');
    lua_pushstring(L, buf_cstr(&l->text));
    return 1;
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
    column_list l = { .c = c, .text = BUF_INIT };
    lua_pushcfunction(L, build_column_list);
    lua_pushlightuserdata(L, &l);
    lua_pushvalue(L, -3);
    int status = lua_pcall(L, 2, 1, 0);
    buf_dispose(&l.text);
    lua_remove(L, -2); /* the list */
    if (status == LUA_OK && l.bad) {
        lua_pop(L, 1);
        lua_pushstring(L, l.bad);
    }
    return status == LUA_OK && !l.bad ? 0 : -1;
}

typedef struct copy_totals {
    long long chunks, bytes;
    long long rows; /* as the target counted them ("COPY n") */
} copy_totals;

/* A copy has two servers: a broken connection's libpq message ("server
 * closed the connection unexpectedly") says which one only with its label. */
static const char *error_on(char *out, size_t size, const char *text, const pg_conn *c)
{
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        len--;
    snprintf(out, size, "%.*s on %s", (int)len, text, c->label);
    return out;
}

static const char *connection_error(const pg_conn *c)
{
    static char message[1024];
    return error_on(message, sizeof message, PQerrorMessage(c->conn), c);
}

/* Moves the rows: each chunk libpq gives from the source goes to the
 * target as it comes, so memory stays flat whatever the table's size. */
/* The progress line of a copy: rows and bytes so far, and their rates. */
static void show_copy(const pg_conn *src, const pg_conn *dst, const copy_totals *t, double seconds)
{
    double s = seconds > 0 ? seconds : 1e-9;
    term_progress("pg.copy %s -> %s: %lld rows, %.1f MB, %.0f rows/s, %.1f MB/s", src->label, dst->label,
                  t->chunks, t->bytes / 1e6, t->chunks / s, t->bytes / 1e6 / s);
}

static const char *stream_one_chunk(pg_conn *src, pg_conn *dst, copy_totals *t, int *done)
{
    char *chunk = NULL;
    int len = PQgetCopyData(src->conn, &chunk, 0);
    *done = len == -1;
    if (len == -1)
        return NULL;
    if (len < 0)
        return connection_error(src);
    int put = PQputCopyData(dst->conn, chunk, len);
    PQfreemem(chunk);
    if (put != 1)
        return connection_error(dst);
    t->chunks++; /* a row each, plus binary format's header and trailer */
    t->bytes += len;
    return NULL;
}

static const char *stream_rows(pg_module *m, pg_conn *src, pg_conn *dst, copy_totals *t)
{
    double started = timefmt_monotonic(), next_report = started + 1;
    const char *why = NULL;
    for (int done = 0; !why && !done;) {
        why = stream_one_chunk(src, dst, t, &done);
        if (!why && !done && (t->chunks & 4095) == 0) {
            why = stop_reason(m, 0);
            double now = timefmt_monotonic();
            if (!why && now > next_report) {
                show_copy(src, dst, t, now - started);
                next_report = now + 1;
            }
        }
    }
    term_progress_end();
    return why;
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
        failure = connection_error(dst);
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
                result_error = error_on(message, sizeof message, PQresultErrorMessage(res), both[i]);
            }
            PQclear(res);
        }
    }
    return failure ? failure : result_error;
}

/* A COPY that one side refused or died in before any row moved (a source
 * blocked on a lock, then killed, fails here): the error on the stack's top
 * says it was this pg.copy, and the event is journaled like a copy that
 * stopped. Returns the error raised. */
static int copy_did_not_start(lua_State *L, pg_module *m, const char *source, const char *target)
{
    const char *why = lua_istable(L, -1) ? (lua_getfield(L, -1, "message"), lua_tostring(L, -1)) : lua_tostring(L, -1);
    lua_pushfstring(L, "pg.copy %s -> %s did not start: %s (nothing was committed on the target)", source, target,
                    why ? why : "?");
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "from", source);
    cJSON_AddStringToObject(data, "to", target);
    cJSON_AddNumberToObject(data, "rows", 0);
    cJSON_AddStringToObject(data, "error", why ? why : "?");
    if (journal(m, "pg-copy", data) != 0)
        return luaL_error(L, "cannot record the pg-copy event: %s", err_last());
    if (lua_istable(L, -3)) { /* the error table keeps its sqlstate */
        lua_setfield(L, -3, "message");
        lua_pop(L, 1);
    } else {
        lua_replace(L, -2);
    }
    return raise_pushed(L);
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
    query_call in = { .sql = copy_in, .copy = 1 }, out = { .sql = copy_out, .copy = 1 };
    const char *shown_source = is_query(from) ? "(query)" : source;
    if (run_query(&res, L, m, dst, &in) != 0)
        return copy_did_not_start(L, m, shown_source, target);
    PQclear(res);
    if (run_query(&res, L, m, src, &out) != 0) {
        PQputCopyEnd(dst->conn, "the source could not be read");
        while ((res = PQgetResult(dst->conn)))
            PQclear(res);
        return copy_did_not_start(L, m, shown_source, target);
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
        lua_pushcclosure(L, l_close, 1); /* local c <close> = pg.connect(...) */
        lua_setfield(L, -2, "__close");
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
