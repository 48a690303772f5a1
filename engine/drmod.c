#include "drmod.h"

#include "buf.h"
#include "drill.h"
#include "err.h"
#include "jsonlua.h"
#include "localtime.h"
#include "proc.h"
#include "runs.h"
#include "signals.h"
#include "term.h"
#include "timefmt.h"

#include <lauxlib.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static dr_host *host_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static void host_event(lua_State *L, const char *kind, cJSON *data)
{
    dr_host *host = host_of(L);
    if (host->event(host->ud, kind, data) != 0)
        luaL_error(L, "cannot record the %s event: %s", kind, err_last());
}

/* The line is built in Lua's own buffer: a __tostring that raises, or the
 * memory cap, then leaves no C memory behind. */
static int dr_log(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer line;
    luaL_buffinit(L, &line);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&line, ' ');
        size_t len;
        const char *text = luaL_tolstring(L, i, &len);
        if (strlen(text) != len) { /* the line is a C string: each piece ends at a NUL */
            lua_pushlstring(L, text, strlen(text));
            lua_replace(L, -2);
        }
        luaL_addvalue(&line);
    }
    luaL_pushresult(&line);
    term_info("    %s", lua_tostring(L, -1));
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "message", lua_tostring(L, -1));
    host_event(L, "log", data);
    return 0;
}

/* A duration argument: a number of seconds or a string like "2s". */
static double check_duration(lua_State *L, int idx, const char *what)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        double v = lua_tonumber(L, idx);
        if (!(v >= 0) || !isfinite(v))
            luaL_error(L, "%s must be a positive number of seconds", what);
        return v;
    }
    const char *text = luaL_checkstring(L, idx);
    double seconds;
    if (timefmt_parse_duration(&seconds, text) != 0)
        luaL_error(L, "%s: %s", what, err_last());
    return seconds;
}

static int dr_sleep(lua_State *L)
{
    sandbox *sb = sandbox_from_state(L);
    double seconds = check_duration(L, 1, "dr.sleep");
    double end = timefmt_monotonic() + seconds;
    for (;;) {
        sandbox_check_abort(L);
        double left = end - timefmt_monotonic();
        if (left <= 0)
            return 0;
        double slice = left < 0.05 ? left : 0.05;
        double deadline_left = sandbox_time_left(sb);
        if (deadline_left >= 0 && deadline_left < slice)
            slice = deadline_left;
        struct timespec ts = { (time_t)slice, (long)((slice - floor(slice)) * 1e9) };
        nanosleep(&ts, NULL);
    }
}

static int dr_now(lua_State *L)
{
    char text[48];
    timefmt_format_utc(text, sizeof text, floor(timefmt_now()));
    lua_pushstring(L, text);
    return 1;
}

static int dr_time(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_pushnumber(L, timefmt_now());
        return 1;
    }
    double epoch;
    if (timefmt_parse_timestamp(&epoch, luaL_checkstring(L, 1)) != 0)
        return luaL_error(L, "dr.time: %s", err_last());
    if (epoch == floor(epoch))
        lua_pushinteger(L, (lua_Integer)epoch);
    else
        lua_pushnumber(L, epoch);
    return 1;
}

static int dr_format_time(lua_State *L)
{
    char text[48];
    lua_Number epoch = luaL_checknumber(L, 1);
    if (!timefmt_epoch_in_range(epoch))
        return luaL_error(L, "dr.format_time: %f is not a time RFC 3339 can write (seconds since 1970 from %f, "
                          "year 0000, to %f, year 9999)", epoch, TIMEFMT_EPOCH_MIN, TIMEFMT_EPOCH_MAX);
    timefmt_format_utc(text, sizeof text, epoch);
    lua_pushstring(L, text);
    return 1;
}

/* dr.show_time(t): t (seconds, or an RFC 3339 text) as a person judges
 * it, on the operator's clock and in UTC. A text that is no time is shown
 * as it is: a placeholder of the runbook's documentation, say. */
static int dr_show_time(lua_State *L)
{
    double epoch;
    if (lua_type(L, 1) == LUA_TNUMBER) {
        epoch = lua_tonumber(L, 1);
    } else if (lua_type(L, 1) != LUA_TSTRING || timefmt_parse_timestamp(&epoch, lua_tostring(L, 1)) != 0) {
        luaL_tolstring(L, 1, NULL);
        return 1;
    }
    char text[128];
    localtime_show(text, sizeof text, epoch);
    lua_pushstring(L, text);
    return 1;
}

/* dr.progress(text): what a long wait is on and how far it is, on the
 * progress line (term.h); dr.progress() takes it away. */
static int dr_progress(lua_State *L)
{
    if (lua_isnoneornil(L, 1))
        term_progress_end();
    else
        term_progress("%s", luaL_checkstring(L, 1));
    return 0;
}

static int dr_duration(lua_State *L)
{
    double seconds = check_duration(L, 1, "dr.duration");
    if (seconds == floor(seconds))
        lua_pushinteger(L, (lua_Integer)seconds);
    else
        lua_pushnumber(L, seconds);
    return 1;
}

/* dr.figure(label, value): a figure for the run's report (rows restored,
 * the instant restored to, ...). value must be JSON. */
/* dr.run(run_id): a past run of the audit trail, read only (runs_record):
 * how an undo learns what the run it undoes did. */
static int dr_run(lua_State *L)
{
    dr_host *host = lua_touserdata(L, lua_upvalueindex(1));
    const char *run_id = luaL_checkstring(L, 1);
    if (!host->audit_dir)
        return luaL_error(L, "dr.run: there is no audit trail here");
    cJSON *record = NULL;
    if (runs_record(&record, host->audit_dir, run_id) != 0) {
        lua_pushstring(L, err_last());
        return lua_error(L);
    }
    return jsonlua_push_and_free(L, record);
}

static int dr_figure(lua_State *L)
{
    const char *label = luaL_checkstring(L, 1);
    luaL_checkany(L, 2);
    cJSON *value = jsonlua_from_lua(L, 2, "figure");
    if (!value)
        return luaL_error(L, "dr.figure: %s", err_last());
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "label", label);
    cJSON_AddItemToObject(data, "value", value);
    host_event(L, "figure", data);
    return 0;
}

static int dr_fail(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TTABLE) {
        lua_settop(L, 1);
        return lua_error(L);
    }
    lua_pushstring(L, luaL_optstring(L, 1, "the step failed"));
    return lua_error(L);
}

static int dr_confirm(lua_State *L)
{
    dr_host *host = host_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "summary");
    lua_getfield(L, 1, "challenge");
    const char *summary = lua_tostring(L, -2);
    const char *challenge = lua_tostring(L, -1);
    if (!summary || !*summary || !challenge || !*challenge)
        return luaL_error(L, "dr.confirm needs { summary = \"what happens and what is lost\", "
                          "challenge = \"the name the operator types\" }");
    if (host->plan_mode)
        return luaL_error(L, "dr.confirm cannot be used in plan mode");
    int rc = host->confirm(host->ud, summary, challenge);
    if (rc == DR_EREFUSED)
        return sandbox_raise_abort(L, SANDBOX_ABORT_REFUSED);
    if (rc == DR_EINTR)
        return sandbox_raise_abort(L, SANDBOX_ABORT_INTERRUPT);
    if (rc != 0)
        return luaL_error(L, "dr.confirm: %s", err_last());
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- dr.exec ----------------------------------------------------------- */

typedef struct exec_args {
    char **argv;
    size_t argc;
    char **env;
    size_t envc;
} exec_args;

static void exec_args_dispose(exec_args *a)
{
    for (size_t i = 0; i < a->argc; i++)
        free(a->argv[i]);
    free(a->argv);
    for (size_t i = 0; i < a->envc; i++)
        free(a->env[i]);
    free(a->env);
}

/* Reads argv and opts.env into C strings. Returns NULL or an error text
 * (static), so that the caller frees before raising. */
static const char *read_exec_args(lua_State *L, exec_args *a)
{
    lua_Integer n = luaL_len(L, 1);
    if (n < 1)
        return "dr.exec needs argv: a non-empty list of strings like {\"pg_dump\", \"--version\"}";
    a->argv = xcalloc((size_t)n + 1, sizeof *a->argv);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 1, i) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER) {
            lua_pop(L, 1);
            return "dr.exec: every argv element must be a string";
        }
        a->argv[a->argc++] = xstrdup(lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    if (lua_type(L, 2) == LUA_TTABLE && lua_getfield(L, 2, "env") == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2) != 0) {
            if (lua_type(L, -2) != LUA_TSTRING || !proc_valid_env_name(lua_tostring(L, -2)) ||
                (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)) {
                lua_pop(L, 3);
                return "dr.exec: env must map NAMES to string values";
            }
            a->env = xrealloc(a->env, (a->envc + 2) * sizeof *a->env);
            a->env[a->envc++] = xasprintf("%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
            a->env[a->envc] = NULL;
            lua_pop(L, 1);
        }
    }
    if (lua_type(L, 2) == LUA_TTABLE)
        lua_pop(L, 1);
    return NULL;
}

static int stop_requested(void)
{
    return signals_pending() != 0;
}

static void journal_exec(lua_State *L, const exec_args *a, const proc_result *r)
{
    cJSON *data = cJSON_CreateObject();
    cJSON *argv = cJSON_AddArrayToObject(data, "argv");
    for (size_t i = 0; i < a->argc; i++)
        cJSON_AddItemToArray(argv, cJSON_CreateString(a->argv[i]));
    cJSON_AddNumberToObject(data, "code", r->exit_code);
    cJSON_AddNumberToObject(data, "duration_ms", round(r->duration * 1000));
    cJSON_AddNumberToObject(data, "stdout_bytes", (double)r->out_len);
    cJSON_AddNumberToObject(data, "stderr_bytes", (double)r->err_len);
    if (r->timed_out)
        cJSON_AddTrueToObject(data, "timed_out");
    if (r->outputs_left_open)
        cJSON_AddTrueToObject(data, "outputs_left_open");
    host_event(L, "exec", data);
}

/* What a dr.exec holds in C memory. It lives in dr_exec, outside the
 * protected call that fills it, so that it is freed whatever Lua raises
 * meanwhile: an element that does not convert, an event that cannot be
 * recorded, or the memory cap reached while the outputs become strings. */
typedef struct exec_call {
    const char *stdin_data; /* on dr_exec's stack */
    size_t stdin_len;
    double timeout;
    exec_args args;
    proc_result result;
} exec_call;

/* Arguments: the exec_call as light userdata, argv, and opts (or none).
 * Runs the program and pushes {code=, stdout=, stderr=, ...}. */
static int exec_protected(lua_State *L)
{
    exec_call *call = lua_touserdata(L, 1);
    lua_remove(L, 1); /* argv and opts where read_exec_args reads them */
    const char *bad = read_exec_args(L, &call->args);
    if (bad)
        return luaL_error(L, "%s", bad);
    term_debug("exec %s", call->args.argv[0]);
    proc_request req = {
        .argv = call->args.argv, .env = call->args.env, .stdin_data = call->stdin_data,
        .stdin_len = call->stdin_len, .timeout = call->timeout, .output_limit = 64u << 20,
        .should_stop = stop_requested,
    };
    proc_result *r = &call->result;
    if (proc_run(r, &req) != 0)
        return luaL_error(L, "dr.exec: %s", err_last());
    if (r->outputs_left_open)
        term_warn("dr.exec of '%s': a process it left running kept its output open; drctl stopped reading it "
                  "2 s after '%s' ended (redirect a daemon's output, e.g. >/dev/null 2>&1)", req.argv[0],
                  req.argv[0]);
    journal_exec(L, &call->args, r);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, r->exit_code);
    lua_setfield(L, -2, "code");
    lua_pushlstring(L, r->out, r->out_len);
    lua_setfield(L, -2, "stdout");
    lua_pushlstring(L, r->err, r->err_len);
    lua_setfield(L, -2, "stderr");
    lua_pushboolean(L, r->timed_out);
    lua_setfield(L, -2, "timed_out");
    lua_pushboolean(L, r->outputs_left_open);
    lua_setfield(L, -2, "outputs_left_open");
    return 1;
}

static int dr_exec(lua_State *L)
{
    dr_host *host = host_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2); /* opts at 2, nil when not given */
    if (host->plan_mode)
        return luaL_error(L, "dr.exec is refused in plan mode (a plan must not act)");
    if (host->drill) {
        lua_rawgeti(L, 1, 1);
        const char *program = lua_tostring(L, -1);
        if (!program || !drill_program_allowed(program)) {
            lua_pushfstring(L, "the drill refused dr.exec of '%s': in a drill a runbook runs no program that could "
                            "reach a database or the network", program ? program : "?");
            return drill_refuse_lua(L, host, lua_tostring(L, -1));
        }
        lua_pop(L, 1);
    }
    sandbox_check_abort(L);
    double timeout = 0;
    const char *stdin_data = NULL;
    size_t stdin_len = 0;
    if (lua_type(L, 2) == LUA_TTABLE) {
        if (lua_getfield(L, 2, "timeout") != LUA_TNIL)
            timeout = check_duration(L, -1, "dr.exec timeout");
        lua_pop(L, 1);
        if (lua_getfield(L, 2, "stdin") != LUA_TNIL)
            stdin_data = luaL_checklstring(L, -1, &stdin_len); /* kept on the stack */
    }
    double step_left = sandbox_time_left(sandbox_from_state(L));
    if (step_left >= 0 && (timeout <= 0 || step_left < timeout))
        timeout = step_left > 0 ? step_left : 0.001;
    exec_call call = { .stdin_data = stdin_data, .stdin_len = stdin_len, .timeout = timeout };
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, exec_protected, 1);
    lua_pushlightuserdata(L, &call);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    int status = lua_pcall(L, 3, 1, 0);
    exec_args_dispose(&call.args);
    proc_result_dispose(&call.result);
    if (status != LUA_OK)
        return lua_error(L); /* the same value: an abort stays an abort */
    /* A stop by signal or by the step's own deadline ends the step. */
    sandbox_check_abort(L);
    return 1;
}

static int open_dr(lua_State *L)
{
    static const luaL_Reg functions[] = {
        { "log", dr_log },         { "exec", dr_exec },
        { "sleep", dr_sleep },     { "now", dr_now },
        { "time", dr_time },       { "format_time", dr_format_time },
        { "show_time", dr_show_time },
        { "progress", dr_progress },
        { "duration", dr_duration }, { "confirm", dr_confirm },
        { "fail", dr_fail },       { "figure", dr_figure },
        { "run", dr_run },
        { NULL, NULL },
    };
    luaL_newlibtable(L, functions);
    lua_pushvalue(L, lua_upvalueindex(1));
    luaL_setfuncs(L, functions, 1);
    return 1;
}

static int open_json(lua_State *L)
{
    return jsonlua_open_module(L);
}

void drmod_register(sandbox *sb, dr_host *host)
{
    sandbox_add_module(sb, "dr", open_dr, host);
    sandbox_add_module(sb, "json", open_json, host);
    sandbox_set_print(sb, dr_log, host);
}
