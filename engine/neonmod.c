#include "neonmod.h"

#include "buf.h"
#include "drill.h"
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

/* What a failed or finished call pushes, read by the protected pushers
 * below: C still holds the reply and the answer while Lua makes its values,
 * and a Lua error then (the memory cap) must not leak them. */
typedef struct call_outcome {
    const neon_reply *r;
    const char *error;          /* the call failed: its error table */
    const char *event;          /* or this event could not be recorded */
    const cJSON *answer;        /* or the answer, as Lua values */
    const char *method, *path;
} call_outcome;

static int push_outcome_protected(lua_State *L)
{
    const call_outcome *o = lua_touserdata(L, 1);
    if (o->error)
        push_error(L, o->r, o->error, o->method, o->path);
    else if (o->event)
        lua_pushfstring(L, "cannot record the %s event: %s", o->event, err_last());
    else
        jsonlua_push(L, o->answer);
    return 1;
}

/* Pushes the outcome; returns 0, or -1 with Lua's own error (the memory
 * cap) pushed instead. */
static int push_outcome(lua_State *L, const call_outcome *o)
{
    lua_pushcfunction(L, push_outcome_protected);
    lua_pushlightuserdata(L, (void *)o);
    return lua_pcall(L, 1, 1, 0) == LUA_OK ? 0 : -1;
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
                        const cJSON *answer, const char *error, cJSON *extra)
{
    cJSON *data = cJSON_CreateObject();
    cJSON *field;
    while (extra && (field = extra->child)) { /* the drill's findings ride with the call */
        cJSON_DetachItemViaPointer(extra, field);
        cJSON_AddItemToObject(data, field->string, field);
    }
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
    int rc = neon_wait_operations(&r, &polls, client_of(L, m), operations);
    char *error = rc ? xstrdup(err_last()) : NULL;
    cJSON *data = cJSON_CreateObject();
    cJSON_AddItemToObject(data, "operations", operation_ids(operations));
    cJSON_AddNumberToObject(data, "duration_ms", round(r.duration * 1000));
    cJSON_AddNumberToObject(data, "polls", polls);
    if (error)
        cJSON_AddStringToObject(data, "error", error);
    int jrc = journal(m, "neon-wait", data);
    if (rc || jrc) {
        call_outcome failure = { .r = &r, .error = error, .event = "neon-wait", .method = "GET",
                                 .path = "operations" };
        push_outcome(L, &failure);
    }
    free(error);
    neon_reply_dispose(&r);
    return rc || jrc ? DR_EFAIL : 0;
}

/* ---- drills ------------------------------------------------------------------ */

/* One GET made for the drill's own checks, journaled like any call. */
static cJSON *drill_get(neon_module *m, neon_client *client, const char *path)
{
    cJSON *answer = NULL;
    neon_reply r;
    int rc = neon_call(&answer, &r, client, "GET", path, NULL);
    journal_call(m, "GET", path, &r, answer, rc ? err_last() : NULL, NULL);
    neon_reply_dispose(&r);
    if (rc) {
        cJSON_Delete(answer);
        return NULL;
    }
    return answer;
}

/* Whether the drill made this branch: learned, or claimed by name and time. */
static int drill_owns_branch(neon_module *m, neon_client *client, const char *project, const char *branch)
{
    drill_scope *s = m->host->drill;
    if (drill_scope_has(s, DRILL_BRANCH, branch))
        return 1;
    if (drill_scope_has(s, DRILL_PROJECT, project))
        return 1;
    char *path = xasprintf("/projects/%s/branches/%s", project, branch);
    cJSON *answer = drill_get(m, client, path);
    free(path);
    int owned = drill_scope_claims(s, cJSON_GetObjectItemCaseSensitive(answer, "branch"));
    if (owned)
        drill_scope_add(s, DRILL_BRANCH, branch);
    cJSON_Delete(answer);
    return owned;
}

static int drill_owns(neon_module *m, neon_client *client, const drill_target *t)
{
    drill_scope *s = m->host->drill;
    if (t->creates_project || t->kind == DRILL_KINDS)
        return 1;
    if (t->project && drill_scope_has(s, DRILL_PROJECT, t->project))
        return 1;
    if (drill_scope_has(s, t->kind, t->id))
        return 1;
    if (t->kind == DRILL_BRANCH)
        return *t->id && drill_owns_branch(m, client, t->project, t->id);
    char *path = NULL;
    if (t->kind == DRILL_PROJECT)
        path = xasprintf("/projects/%s", t->project ? t->project : t->id);
    else if (t->kind == DRILL_ENDPOINT)
        path = xasprintf("/projects/%s/endpoints/%s", t->project, t->id);
    else if (t->kind == DRILL_SNAPSHOT)
        path = xasprintf("/projects/%s/snapshots", t->project);
    cJSON *answer = path && t->project ? drill_get(m, client, path) : NULL;
    free(path);
    int owned = 0;
    if (t->kind == DRILL_PROJECT) {
        owned = drill_scope_claims(s, cJSON_GetObjectItemCaseSensitive(answer, "project"));
    } else if (t->kind == DRILL_ENDPOINT) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(answer, "endpoint"),
                                                          "branch_id");
        owned = cJSON_IsString(b) && drill_owns_branch(m, client, t->project, b->valuestring);
    } else if (t->kind == DRILL_SNAPSHOT) {
        const cJSON *snap;
        cJSON_ArrayForEach(snap, cJSON_GetObjectItemCaseSensitive(answer, "snapshots")) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(snap, "id");
            if (cJSON_IsString(id) && !strcmp(id->valuestring, t->id))
                owned = drill_scope_claims(s, snap);
        }
    }
    cJSON_Delete(answer);
    if (owned)
        drill_scope_add(s, t->kind, t->id);
    return owned;
}

/* The value of ?name= in a path, or NULL. */
static char *query_value(const char *path, const char *name)
{
    const char *q = strchr(path, '?');
    size_t len = strlen(name);
    while (q) {
        q++;
        if (strncmp(q, name, len) == 0 && q[len] == '=') {
            const char *v = q + len + 1;
            return xstrndup(v, strcspn(v, "&"));
        }
        q = strchr(q, '&');
    }
    return NULL;
}

/* What a successful call teaches the drill: what it made and the hosts
 * of its connection strings. (A branch a restore preserved is claimed by
 * its name, which carries the run id, when it is first touched.) */
static void drill_learn(cJSON *extra, neon_module *m, neon_client *client, const char *method, const char *path,
                        cJSON *answer)
{
    drill_scope *s = m->host->drill;
    cJSON *learned = cJSON_CreateArray();
    if (strcmp(method, "GET") != 0) {
        drill_scope_learn(s, answer, learned);
    } else if (strstr(path, "/connection_uri")) {
        char *branch = query_value(path, "branch_id");
        const char *project = path + strlen("/projects/");
        char *project_id = xstrndup(project, strcspn(project, "/"));
        const cJSON *uri = cJSON_GetObjectItemCaseSensitive(answer, "uri");
        if (branch && cJSON_IsString(uri) && drill_owns_branch(m, client, project_id, branch))
            drill_scope_learn_uri(s, uri->valuestring, learned);
        free(project_id);
        free(branch);
    }
    drill_scope_rewrite_default(s, answer);
    if (cJSON_GetArraySize(learned) > 0)
        cJSON_AddItemToObject(extra, "drill_learned", learned);
    else
        cJSON_Delete(learned);
}

/* A change a drill refuses: recorded (so the step fails even when the
 * runbook catches the error) and journaled. Returns the refusal's message,
 * which the drill keeps. */
static const char *drill_refusal(neon_module *m, const char *method, const char *path, const drill_target *t)
{
    buf what = BUF_INIT;
    buf_printf(&what, "the drill refused %s %s: ", method, path);
    if (t->kind == DRILL_PROJECT)
        buf_printf(&what, "project %s", t->id);
    else
        buf_printf(&what, "%s %s of project %s", t->kind == DRILL_BRANCH ? "branch" : t->kind == DRILL_ENDPOINT
                   ? "endpoint" : "snapshot", *t->id ? t->id : "(the default)", t->project);
    buf_puts(&what, " was not made by this drill, and a drill changes nothing else");
    const char *message = drill_scope_refuse(m->host->drill, buf_cstr(&what));
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "method", method);
    cJSON_AddStringToObject(data, "path", path);
    cJSON_AddStringToObject(data, "refused", message);
    journal(m, "drill-refused", data);
    buf_dispose(&what);
    return message;
}

static void push_refusal(lua_State *L, const char *message)
{
    lua_createtable(L, 0, 4);
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    lua_pushstring(L, "DRILL_REFUSED");
    lua_setfield(L, -2, "code");
    lua_pushinteger(L, 0);
    lua_setfield(L, -2, "status");
}

/* Neon lets no expiring branch have children: when the drill branches from
 * one of its own expiring branches (the copy, for a point in time), that
 * parent's TTL goes first; the drill's cleanup deletes it. */
static void drill_unexpire_parent(neon_module *m, neon_client *client, const char *project, const cJSON *body)
{
    const cJSON *parent = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(body, "branch"), "parent_id");
    if (!cJSON_IsString(parent) || !drill_scope_has(m->host->drill, DRILL_BRANCH, parent->valuestring))
        return;
    char *path = xasprintf("/projects/%s/branches/%s", project, parent->valuestring);
    /* read again after each try: a PATCH whose answer was lost may have worked */
    for (int attempt = 0; attempt < 5; attempt++) {
        cJSON *answer = drill_get(m, client, path);
        const cJSON *expires = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(answer, "branch"),
                                                                "expires_at");
        int expiring = cJSON_IsString(expires), read = answer != NULL;
        cJSON_Delete(answer);
        if (!expiring && read)
            break;
        if (!expiring)
            continue; /* the read itself failed: again */
        cJSON *patch = cJSON_CreateObject();
        cJSON_AddNullToObject(cJSON_AddObjectToObject(patch, "branch"), "expires_at");
        cJSON *reply = NULL;
        neon_reply r;
        int rc = neon_call(&reply, &r, client, "PATCH", path, patch);
        journal_call(m, "PATCH", path, &r, reply, rc ? err_last() : NULL, NULL);
        if (rc == 0)
            term_info("    the drill's branch %s no longer expires: Neon lets no expiring branch have children "
                      "(the drill's cleanup deletes it)", parent->valuestring);
        neon_reply_dispose(&r);
        cJSON_Delete(reply);
        cJSON_Delete(patch);
        if (rc == 0)
            break;
    }
    free(path);
}

/* set_as_default on a drill's branch: the drill's own default moves, the
 * project's never does. Answers as the API would, with the branch (NULL
 * when it cannot be read, with the message set). */
static cJSON *drill_set_default(neon_module *m, neon_client *client, const drill_target *t)
{
    drill_scope_set_default(m->host->drill, t->id);
    char *path = xasprintf("/projects/%s/branches/%s", t->project, t->id);
    cJSON *answer = drill_get(m, client, path);
    free(path);
    if (!answer) {
        err_set(DR_EFAIL, "the drill's branch %s cannot be read: %s", t->id, err_last());
        return NULL;
    }
    drill_scope_rewrite_default(m->host->drill, answer);
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "method", "POST");
    cJSON_AddStringToObject(data, "path", "set_as_default (kept inside the drill: the project's default stays)");
    cJSON_AddStringToObject(data, "drill_default", t->id);
    journal(m, "neon", data);
    return answer;
}

/* A change made in a drill, before it is sent: refused (raised) when the
 * drill did not make what it changes, answered by the drill itself for
 * set_as_default (its results pushed), or let through (-1), a new branch's
 * body stamped with the drill's TTL. When it does not go on, the body is
 * freed, and the target, before anything is pushed. */
static int drill_request(lua_State *L, neon_module *m, neon_client *client, const char *method, const char *path,
                         cJSON **body)
{
    drill_target t;
    drill_target_of(&t, method, path, *body);
    const char *refusal = NULL;
    cJSON *answer = NULL;
    int owned = drill_owns(m, client, &t), answered = !owned || t.set_default;
    if (!owned) {
        refusal = drill_refusal(m, method, path, &t);
    } else if (t.creates_branch) {
        /* a new branch of a drill carries its TTL */
        if (!*body)
            *body = cJSON_CreateObject();
        drill_scope_stamp_expiry(m->host->drill, *body);
        drill_unexpire_parent(m, client, t.project, *body);
    }
    if (answered) {
        cJSON_Delete(*body);
        *body = NULL;
        if (owned)
            answer = drill_set_default(m, client, &t);
    }
    drill_target_dispose(&t);
    if (!answered)
        return -1;
    if (refusal) {
        push_refusal(L, refusal);
        return lua_error(L);
    }
    if (!answer)
        return luaL_error(L, "%s", err_last());
    return jsonlua_push_and_free(L, answer);
}

/* neon.request(method, path [, body [, {wait = true}]]) */
static int l_request(lua_State *L)
{
    neon_module *m = module_of(L);
    const char *method = luaL_checkstring(L, 1), *path = luaL_checkstring(L, 2);
    if (!neon_valid_method(method))
        return luaL_error(L, "neon.request: method '%s' is not one of GET, POST, PATCH, PUT, DELETE", method);
    if (neon_check_path(path) != 0)
        return luaL_error(L, "neon.request %s: %s", method, err_last());
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
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    sandbox_check_abort(L); /* before the body is made: it would not be freed */
    cJSON *body = NULL;
    if (!lua_isnoneornil(L, 3) && !(body = jsonlua_from_lua(L, 3, "body")))
        return luaL_error(L, "neon.request %s %s: %s", method, path, err_last());
    if (m->host->drill && strcmp(method, "GET") != 0) {
        int results = drill_request(L, m, client, method, path, &body);
        if (results >= 0)
            return results;
    }
    term_debug("neon %s %s", method, path);
    cJSON *answer = NULL;
    neon_reply r;
    int rc = neon_call(&answer, &r, client, method, path, body);
    cJSON *extra = cJSON_CreateObject();
    if (rc == 0 && m->host->drill)
        drill_learn(extra, m, client, method, path, answer);
    cJSON_Delete(body);
    char *error = rc ? xstrdup(err_last()) : NULL;
    int jrc = journal_call(m, method, path, &r, answer, error, extra);
    cJSON_Delete(extra);
    call_outcome outcome = { .r = &r, .error = error, .event = jrc ? "neon" : NULL, .answer = answer,
                             .method = method, .path = path };
    int failed = push_outcome(L, &outcome) != 0 || rc != 0 || jrc != 0;
    if (!failed && wait)
        failed = wait_operations(L, m, cJSON_GetObjectItemCaseSensitive(answer, "operations")) != 0;
    free(error);
    neon_reply_dispose(&r);
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
    return jsonlua_push_and_free(L, t);
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
