#include "neonmod.h"

#include "buf.h"
#include "err.h"
#include "jsonlua.h"
#include "signals.h"
#include "term.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "neon_lua.h" /* neon_lua[]: engine/neon.lua, the named functions, compiled in */

static neon_module *module_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* Signals and the step's deadline stop a call between tries. */
static int should_stop(void *ud, double *seconds_left)
{
    neon_module *m = ud;
    double left = sandbox_time_left(m->sb);
    if (seconds_left)
        *seconds_left = left;
    return signals_pending() != 0 || (left >= 0 && left <= 0);
}

static neon_client *client_of(lua_State *L, neon_module *m)
{
    if (m->client)
        return m->client;
    if (!m->target || m->target->kind == TARGET_NONE || !m->target->connected)
        luaL_error(L, "the neon module has no target: run drctl with --local (neon-local) or with NEON_API_KEY set");
    if (neon_client_new(&m->client, m->target->api_host, m->target->api_key) != 0)
        luaL_error(L, "%s", err_last());
    neon_client_set_stop(m->client, should_stop, m);
    return m->client;
}

/* Journal events: an error to raise is returned, after the caller freed. */
static int journal(neon_module *m, const char *kind, cJSON *data)
{
    return m->host->event(m->host->ud, kind, data);
}

/* Pushes the structured error of a failed call, strings copied. */
static void push_error(lua_State *L, const neon_reply *r, const char *message, const char *method, const char *path)
{
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, r->status);
    lua_setfield(L, -2, "status");
    lua_pushstring(L, r->code ? r->code : (r->status ? "HTTP_ERROR" : "NO_ANSWER"));
    lua_setfield(L, -2, "code");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    if (r->request_id) {
        lua_pushstring(L, r->request_id);
        lua_setfield(L, -2, "request_id");
    }
    lua_pushstring(L, method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    if (r->outcome_unknown) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "outcome_unknown");
    }
}

static cJSON *operation_ids(const cJSON *operations)
{
    cJSON *ids = cJSON_CreateArray();
    const cJSON *op;
    cJSON_ArrayForEach(op, operations) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(op, "id");
        if (cJSON_IsString(id))
            cJSON_AddItemToArray(ids, cJSON_CreateString(id->valuestring));
    }
    return ids;
}

static int journal_call(neon_module *m, const char *method, const char *path, const neon_reply *r,
                        const cJSON *answer, const char *error)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "method", method);
    cJSON_AddStringToObject(data, "path", path);
    cJSON_AddNumberToObject(data, "status", (double)r->status);
    cJSON_AddNumberToObject(data, "duration_ms", round(r->duration * 1000));
    cJSON_AddNumberToObject(data, "retries", r->attempts > 0 ? r->attempts - 1 : 0);
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(answer, "operations");
    if (cJSON_GetArraySize(ops) > 0)
        cJSON_AddItemToObject(data, "operations", operation_ids(ops));
    if (error) {
        if (r->code)
            cJSON_AddStringToObject(data, "error_code", r->code);
        cJSON_AddStringToObject(data, "error", error);
    }
    return journal(m, "neon", data);
}

/* Waits on operations and journals the wait. On failure pushes the error
 * table and returns DR_EFAIL; the caller frees, then raises. */
static int wait_operations(lua_State *L, neon_module *m, const cJSON *operations)
{
    if (cJSON_GetArraySize(operations) == 0)
        return 0;
    neon_reply r;
    int polls = 0;
    int rc = neon_wait_operations(client_of(L, m), operations, &r, &polls);
    char *error = rc ? xstrdup(err_last()) : NULL;
    cJSON *data = cJSON_CreateObject();
    cJSON_AddItemToObject(data, "operations", operation_ids(operations));
    cJSON_AddNumberToObject(data, "duration_ms", round(r.duration * 1000));
    cJSON_AddNumberToObject(data, "polls", polls);
    if (error)
        cJSON_AddStringToObject(data, "error", error);
    int jrc = journal(m, "neon-wait", data);
    if (rc)
        push_error(L, &r, error, "GET", "operations");
    else if (jrc)
        lua_pushfstring(L, "cannot record the neon-wait event: %s", err_last());
    free(error);
    neon_reply_free(&r);
    return rc || jrc ? DR_EFAIL : 0;
}

static int valid_method(const char *method)
{
    static const char *const methods[] = { "GET", "POST", "PATCH", "PUT", "DELETE" };
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
        if (strcmp(method, methods[i]) == 0)
            return 1;
    return 0;
}

/* neon.request(method, path [, body [, {wait = true}]]) */
static int l_request(lua_State *L)
{
    neon_module *m = module_of(L);
    const char *method = luaL_checkstring(L, 1), *path = luaL_checkstring(L, 2);
    if (!valid_method(method))
        return luaL_error(L, "neon.request: method '%s' is not one of GET, POST, PATCH, PUT, DELETE", method);
    if (path[0] != '/')
        return luaL_error(L, "neon.request: the path '%s' must start with '/' (it is relative to the API base)", path);
    if (m->host->plan_mode && strcmp(method, "GET") != 0)
        return luaL_error(L, "neon.request %s %s is refused in plan mode (a plan must not act)", method, path);
    int wait = 1;
    if (lua_type(L, 4) == LUA_TTABLE) {
        lua_getfield(L, 4, "wait");
        if (!lua_isnil(L, -1))
            wait = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    neon_client *client = client_of(L, m);
    cJSON *body = NULL;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        if (!(body = jsonlua_from_lua(L, 3, "body")))
            return luaL_error(L, "neon.request %s %s: %s", method, path, err_last());
    }
    sandbox_check_abort(L);
    term_debug("neon %s %s", method, path);
    cJSON *answer = NULL;
    neon_reply r;
    int rc = neon_call(client, method, path, body, &answer, &r);
    cJSON_Delete(body);
    char *error = rc ? xstrdup(err_last()) : NULL;
    int jrc = journal_call(m, method, path, &r, answer, error);
    int failed = rc != 0 || jrc != 0;
    if (rc)
        push_error(L, &r, error, method, path);
    else if (jrc)
        lua_pushfstring(L, "cannot record the neon event: %s", err_last());
    else
        jsonlua_push(L, answer);
    if (!failed && wait)
        failed = wait_operations(L, m, cJSON_GetObjectItemCaseSensitive(answer, "operations")) != 0;
    free(error);
    neon_reply_free(&r);
    cJSON_Delete(answer);
    if (failed) {
        sandbox_check_abort(L); /* a signal or the step's deadline wins over the call's own error */
        return lua_error(L);
    }
    return 1;
}

/* neon.wait(operations) */
static int l_wait(lua_State *L)
{
    neon_module *m = module_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    neon_client *client = client_of(L, m);
    (void)client;
    cJSON *ops = jsonlua_from_lua(L, 1, "operations");
    if (!ops)
        return luaL_error(L, "neon.wait: %s", err_last());
    int failed = wait_operations(L, m, ops) != 0;
    cJSON_Delete(ops);
    if (failed) {
        sandbox_check_abort(L);
        return lua_error(L);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* neon.target() */
static int l_target(lua_State *L)
{
    neon_module *m = module_of(L);
    cJSON *t = target_json(m->target);
    jsonlua_push(L, t);
    cJSON_Delete(t);
    return 1;
}

static int open_neon(lua_State *L)
{
    neon_module *m = module_of(L);
    m->required = 1;
    static const luaL_Reg functions[] = {
        { "request", l_request }, { "wait", l_wait }, { "target", l_target }, { NULL, NULL },
    };
    luaL_newlibtable(L, functions);
    lua_pushlightuserdata(L, m);
    luaL_setfuncs(L, functions, 1);
    /* The named functions, in Lua. */
    sandbox_extend_module(L, m->sb, neon_lua, sizeof neon_lua - 1, "=neon.lua");
    return 1;
}

void neonmod_register(sandbox *sb, neon_module *m)
{
    m->sb = sb;
    sandbox_add_module(sb, "neon", open_neon, m);
}

void neonmod_close(neon_module *m)
{
    neon_client_free(m->client);
    m->client = NULL;
}
