#include "runbook.h"

#include "buf.h"
#include "config.h"
#include "err.h"
#include "fsio.h"
#include "timefmt.h"

#include <git2.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char key_validated = 0;

static const char *const runbook_fields[] = {
    "name", "version", "summary", "description", "params", "steps", "lock", NULL,
};
static const char *const param_fields[] = {
    "type", "required", "default", "doc", "values", "secret", "env", "config", NULL,
};
static const char *const step_fields[] = {
    "name", "run", "plan", "destructive", "confirm", "idempotent", "timeout", "retry", "always", "approvers", NULL,
};
static const char *const retry_fields[] = { "attempts", "backoff", NULL };
static const char *const approver_fields[] = { "count", "from", "valid_for", NULL };

int runbook_valid_name(const char *name)
{
    if (!*name || strlen(name) > 64)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return 0;
    return 1;
}

static int valid_param_name(const char *name)
{
    if (!*name || strlen(name) > 64 || !((*name >= 'a' && *name <= 'z') || *name == '_'))
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    return 1;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return 99;
    size_t row[33];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            if (up + 1 < best)
                best = up + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Raises "<where> <context>: <message>". where is "file:line:". */
static int raise_at(lua_State *L, const char *where, const char *context, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int raise_at(lua_State *L, const char *where, const char *context, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    lua_pushfstring(L, "%s %s: %s", where, context, message);
    return lua_error(L);
}

static void check_fields(lua_State *L, int idx, const char *const *allowed, const char *where,
                         const char *context)
{
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            raise_at(L, where, context, "fields must be named (found a %s key)", luaL_typename(L, -1));
        const char *key = lua_tostring(L, -1);
        int known = 0;
        const char *suggestion = NULL;
        buf list = BUF_INIT;
        for (const char *const *f = allowed; *f; f++) {
            if (strcmp(*f, key) == 0)
                known = 1;
            else if (edit_distance(*f, key) <= 2)
                suggestion = *f;
            buf_printf(&list, "%s%s", f == allowed ? "" : ", ", *f);
        }
        if (!known) {
            char *fields = buf_detach(&list);
            lua_pushfstring(L, "%s %s: unknown field '%s'%s%s%s (fields: %s)", where, context, key,
                            suggestion ? " (did you mean '" : "", suggestion ? suggestion : "",
                            suggestion ? "'?)" : "", fields);
            free(fields);
            lua_error(L);
        }
        buf_dispose(&list);
    }
}

/* The type of field `name` of the table at idx must be `type` (or nil when
 * optional). Leaves the field's value on the stack. */
static void check_field_type(lua_State *L, int idx, const char *name, int type, int required,
                             const char *where, const char *context)
{
    int actual = lua_getfield(L, idx, name);
    if (actual == LUA_TNIL && !required)
        return;
    if (actual == LUA_TNIL)
        raise_at(L, where, context, "'%s' is required (a %s)", name, lua_typename(L, type));
    if (actual != type)
        raise_at(L, where, context, "'%s' must be a %s, not a %s", name, lua_typename(L, type),
                 lua_typename(L, actual));
}

/* "file:line:" of a Lua function at idx, or NULL. */
static char *function_where(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TFUNCTION)
        return NULL;
    lua_Debug ar;
    lua_pushvalue(L, idx);
    if (!lua_getinfo(L, ">S", &ar) || ar.linedefined <= 0)
        return NULL;
    return xasprintf("%s:%d:", ar.short_src, ar.linedefined);
}

/* A param default in the text form -p would take. */
static char *default_as_text(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        return xstrdup(lua_tostring(L, idx));
    case LUA_TBOOLEAN:
        return xstrdup(lua_toboolean(L, idx) ? "true" : "false");
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return xasprintf("%lld", (long long)lua_tointeger(L, idx));
        return xasprintf("%.17g", lua_tonumber(L, idx));
    default:
        return NULL;
    }
}

typedef struct invalid_default {
    const char *where, *context, *form;
} invalid_default;

/* The message for a default that is not valid, made in a protected call:
 * the expected form is C memory until it is copied. */
static int push_invalid_default(lua_State *L)
{
    const invalid_default *bad = lua_touserdata(L, 1);
    lua_pushfstring(L, "%s %s: the default is not valid: expected %s", bad->where, bad->context, bad->form);
    return 1;
}

/* The param type a setting's value fits: a duration setting is a
 * duration param, a text one a string; a list fits no param. */
static int config_kind_fits(config_kind kind, param_type type)
{
    return (kind == CONFIG_DURATION && type == PARAM_DURATION) || (kind == CONFIG_TEXT && type == PARAM_STRING);
}

static const char *config_kind_param_type(config_kind kind)
{
    return kind == CONFIG_DURATION ? "duration" : kind == CONFIG_TEXT ? "string" : NULL;
}

/* `config = "KEY"` names a setting of config.json whose value fits the
 * param: a mistake here is found when the runbook loads, not when a run
 * first reads the team's settings. */
static void validate_param_config(lua_State *L, int idx, const param_spec *spec, const char *runbook_name,
                                  const char *where)
{
    if (lua_getfield(L, idx, "config") == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    char context[192];
    snprintf(context, sizeof context, "runbook '%s', param '%s'", runbook_name, spec->name);
    if (lua_type(L, -1) != LUA_TSTRING)
        raise_at(L, where, context, "'config' must be a string, the name of a setting of config.json");
    const char *key = lua_tostring(L, -1);
    const config_key *k = config_find_key(key);
    if (!k) {
        size_t count;
        const config_key *keys = config_keys(&count);
        luaL_Buffer known;
        luaL_buffinit(L, &known);
        for (size_t i = 0; i < count; i++) {
            if (i)
                luaL_addstring(&known, ", ");
            luaL_addstring(&known, keys[i].name);
        }
        luaL_pushresult(&known);
        raise_at(L, where, context, "config '%s' is not a setting of config.json (the settings: %s)", key,
                 lua_tostring(L, -1));
    }
    const char *fits = config_kind_param_type(k->kind);
    if (!config_kind_fits(k->kind, spec->type))
        raise_at(L, where, context, "config '%s' %s, not a %s param", key,
                 fits ? (k->kind == CONFIG_DURATION ? "is a duration: it fits a duration param"
                                                    : "is text: it fits a string param")
                      : "is a list: it fits no param",
                 params_type_name(spec->type));
    lua_pop(L, 1);
}

static void validate_param(lua_State *L, int idx, const char *name, const char *runbook_name, const char *where)
{
    char context[96];
    snprintf(context, sizeof context, "param '%s'", name);
    if (!valid_param_name(name))
        raise_at(L, where, context, "param names are lower-case letters, digits and '_'");
    if (lua_type(L, idx) != LUA_TTABLE)
        raise_at(L, where, context, "must be a table like { type = \"string\" }");
    check_fields(L, idx, param_fields, where, context);
    check_field_type(L, idx, "type", LUA_TSTRING, 1, where, context);
    param_spec spec = { 0 };
    spec.name = (char *)name;
    if (params_type_from_name(&spec.type, lua_tostring(L, -1)) != 0)
        raise_at(L, where, context, "type '%s' is not one of string, int, bool, enum, timestamp, duration, path",
                 lua_tostring(L, -1));
    lua_pop(L, 1);
    check_field_type(L, idx, "required", LUA_TBOOLEAN, 0, where, context);
    check_field_type(L, idx, "secret", LUA_TBOOLEAN, 0, where, context);
    check_field_type(L, idx, "doc", LUA_TSTRING, 0, where, context);
    check_field_type(L, idx, "env", LUA_TSTRING, 0, where, context);
    lua_pop(L, 4); /* what the four checks left */
    int values_type = lua_getfield(L, idx, "values");
    if (spec.type == PARAM_ENUM) {
        if (values_type != LUA_TTABLE || luaL_len(L, -1) == 0)
            raise_at(L, where, context, "an enum needs values = { \"a\", \"b\", ... }");
        lua_Integer n = luaL_len(L, -1);
        /* Lua's memory, kept below the values table: whatever raises
         * below, nothing is left for C to free. */
        spec.values = lua_newuserdatauv(L, (size_t)n * sizeof *spec.values, 0);
        lua_insert(L, -2);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_rawgeti(L, -1, i) != LUA_TSTRING)
                raise_at(L, where, context, "enum values must be strings");
            spec.values[spec.value_count++] = (char *)lua_tostring(L, -1);
            lua_pop(L, 1);
        }
    } else if (values_type != LUA_TNIL) {
        raise_at(L, where, context, "'values' is only for enum params");
    }
    validate_param_config(L, idx, &spec, runbook_name, where);
    if (lua_getfield(L, idx, "default") != LUA_TNIL) {
        char *text = default_as_text(L, -1);
        cJSON *value = NULL;
        int rc = text ? params_parse_value(&value, &spec, text) : DR_EUSAGE;
        free(text);
        cJSON_Delete(value);
        if (rc != 0) {
            char *form = params_expected_form(&spec);
            invalid_default bad = { where, context, form };
            lua_pushcfunction(L, push_invalid_default);
            lua_pushlightuserdata(L, &bad);
            lua_pcall(L, 1, 1, 0); /* a Lua error here (out of memory) is raised instead */
            free(form);
            lua_error(L);
        }
    }
    lua_pop(L, spec.values ? 3 : 2);
}

static void validate_duration_field(lua_State *L, int idx, const char *field, const char *where,
                                    const char *context)
{
    int type = lua_getfield(L, idx, field);
    if (type == LUA_TSTRING) {
        double seconds;
        if (timefmt_parse_duration(&seconds, lua_tostring(L, -1)) != 0)
            raise_at(L, where, context, "'%s': %s", field, err_last());
    } else if (type == LUA_TNUMBER) {
        if (lua_tonumber(L, -1) <= 0)
            raise_at(L, where, context, "'%s' must be positive", field);
    } else if (type != LUA_TNIL) {
        raise_at(L, where, context, "'%s' must be a duration like \"30s\"", field);
    }
    lua_pop(L, 1);
}

#define APPROVERS_MAX 10

static void check_approver_count(lua_State *L, int idx, const char *where, const char *context)
{
    if (!lua_isinteger(L, idx) || lua_tointeger(L, idx) < 1 || lua_tointeger(L, idx) > APPROVERS_MAX)
        raise_at(L, where, context, "approvers must be a whole number from 1 to %d (how many operators approve), "
                 "or { count = 2, from = { \"alice@example.org\", ... }, valid_for = \"1h\" }", APPROVERS_MAX);
}

/* approvers = N, or { count = N, from = { "a@x", ... }, valid_for = "1h" };
 * only on a destructive step, which is what approvals are for. */
static void validate_approvers(lua_State *L, int idx, int destructive, const char *where, const char *context)
{
    int type = lua_getfield(L, idx, "approvers");
    int a = lua_gettop(L);
    if (type != LUA_TNIL && !destructive)
        raise_at(L, where, context, "approvers is only for destructive steps; add destructive = true");
    if (type == LUA_TNUMBER) {
        check_approver_count(L, a, where, context);
    } else if (type == LUA_TTABLE) {
        check_fields(L, a, approver_fields, where, context);
        lua_getfield(L, a, "count");
        check_approver_count(L, -1, where, context);
        lua_pop(L, 1);
        int from_type = lua_getfield(L, a, "from");
        if (from_type == LUA_TTABLE) {
            lua_Integer n = luaL_len(L, -1);
            for (lua_Integer i = 1; i <= n; i++) {
                if (lua_rawgeti(L, -1, i) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
                    raise_at(L, where, context, "approvers.from[%lld] must be an operator's e-mail address",
                             (long long)i);
                lua_pop(L, 1);
            }
            if (n == 0)
                raise_at(L, where, context, "approvers.from is empty: list who may approve, or leave it out");
        } else if (from_type != LUA_TNIL) {
            raise_at(L, where, context, "approvers.from must be a list of e-mail addresses");
        }
        lua_pop(L, 1);
        validate_duration_field(L, a, "valid_for", where, context);
    } else if (type != LUA_TNIL) {
        check_approver_count(L, a, where, context);
    }
    lua_pop(L, 1);
}

static void validate_step(lua_State *L, int idx, lua_Integer number, const char *call_where)
{
    char context[128];
    snprintf(context, sizeof context, "step %lld", (long long)number);
    if (lua_type(L, idx) != LUA_TTABLE)
        raise_at(L, call_where, context, "must be a table like { name = ..., run = function(ctx) ... end }");
    lua_getfield(L, idx, "run");
    char *run_where = function_where(L, -1);
    lua_pop(L, 1);
    const char *where = run_where ? run_where : call_where;
    /* From here on, errors name the step and point at its run function;
     * the text lives on the Lua stack so that a raise cannot leak it. */
    lua_pushstring(L, where);
    free(run_where);
    where = lua_tostring(L, -1);
    if (lua_getfield(L, idx, "name") == LUA_TSTRING)
        snprintf(context, sizeof context, "step %lld ('%s')", (long long)number, lua_tostring(L, -1));
    lua_pop(L, 1);
    check_fields(L, idx, step_fields, where, context);
    check_field_type(L, idx, "name", LUA_TSTRING, 1, where, context);
    if (!runbook_valid_name(lua_tostring(L, -1)))
        raise_at(L, where, context, "step names are lower-case letters, digits and '-' (like create-branch)");
    lua_pop(L, 1);
    check_field_type(L, idx, "run", LUA_TFUNCTION, 1, where, context);
    check_field_type(L, idx, "plan", LUA_TFUNCTION, 0, where, context);
    check_field_type(L, idx, "confirm", LUA_TFUNCTION, 0, where, context);
    int has_confirm = !lua_isnil(L, -1);
    check_field_type(L, idx, "destructive", LUA_TBOOLEAN, 0, where, context);
    int destructive = lua_toboolean(L, -1);
    check_field_type(L, idx, "idempotent", LUA_TBOOLEAN, 0, where, context);
    check_field_type(L, idx, "always", LUA_TBOOLEAN, 0, where, context);
    lua_pop(L, 6);
    if (destructive && !has_confirm)
        raise_at(L, where, context, "a destructive step needs confirm = function(ctx) return "
                 "{ summary = ..., challenge = ... } end");
    if (has_confirm && !destructive)
        raise_at(L, where, context, "confirm is only for destructive steps; add destructive = true");
    validate_duration_field(L, idx, "timeout", where, context);
    validate_approvers(L, idx, destructive, where, context);
    int retry_type = lua_getfield(L, idx, "retry");
    if (retry_type == LUA_TTABLE) {
        int retry = lua_gettop(L);
        check_fields(L, retry, retry_fields, where, context);
        if (lua_getfield(L, retry, "attempts") != LUA_TNUMBER || !lua_isinteger(L, -1) ||
            lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > 100)
            raise_at(L, where, context, "retry.attempts must be a whole number from 1 to 100");
        lua_pop(L, 1);
        validate_duration_field(L, retry, "backoff", where, context);
    } else if (retry_type != LUA_TNIL) {
        raise_at(L, where, context, "retry must be a table like { attempts = 3, backoff = \"2s\" }");
    }
    lua_pop(L, 2); /* retry, where */
}

static void validate_steps(lua_State *L, int rb, const char *where)
{
    if (lua_getfield(L, rb, "steps") != LUA_TTABLE)
        raise_at(L, where, "runbook", "'steps' is required: a list of { name = ..., run = ... }");
    int steps = lua_gettop(L);
    lua_Integer n = luaL_len(L, steps);
    if (n == 0)
        raise_at(L, where, "runbook", "'steps' is empty");
    lua_pushnil(L);
    while (lua_next(L, steps) != 0) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n)
            raise_at(L, where, "runbook", "'steps' must be a list (found the key '%s')", luaL_tolstring(L, -1, NULL));
    }
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, steps, i);
        validate_step(L, lua_gettop(L), i, where);
        lua_getfield(L, -1, "name");
        const char *name = lua_tostring(L, -1);
        for (lua_Integer j = 1; j < i; j++) {
            lua_rawgeti(L, steps, j);
            lua_getfield(L, -1, "name");
            if (strcmp(lua_tostring(L, -1), name) == 0)
                raise_at(L, where, "runbook", "step %lld and step %lld are both named '%s'",
                         (long long)j, (long long)i, name);
            lua_pop(L, 2);
        }
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
}

/* The `runbook` global: validates the description and returns it. */
static int declare_runbook(lua_State *L)
{
    luaL_where(L, 1);
    char *where = xstrdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    /* Keep where on the Lua stack too, so a raise (longjmp) cannot leak it. */
    lua_pushstring(L, where);
    free(where);
    where = (char *)lua_tostring(L, -1);
    if (lua_type(L, 1) != LUA_TTABLE)
        raise_at(L, where, "runbook", "write runbook { name = ..., version = ..., steps = { ... } }");
    check_fields(L, 1, runbook_fields, where, "runbook");
    check_field_type(L, 1, "name", LUA_TSTRING, 1, where, "runbook");
    if (!runbook_valid_name(lua_tostring(L, -1)))
        raise_at(L, where, "runbook", "name '%s' must be lower-case letters, digits and '-'", lua_tostring(L, -1));
    check_field_type(L, 1, "version", LUA_TSTRING, 1, where, "runbook");
    check_field_type(L, 1, "summary", LUA_TSTRING, 1, where, "runbook");
    check_field_type(L, 1, "description", LUA_TSTRING, 0, where, "runbook");
    check_field_type(L, 1, "lock", LUA_TFUNCTION, 0, where, "runbook");
    lua_pop(L, 5);
    lua_getfield(L, 1, "name");
    const char *runbook_name = lua_tostring(L, -1); /* kept on the stack while the params are checked */
    int params_type = lua_getfield(L, 1, "params");
    if (params_type == LUA_TTABLE) {
        int params = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, params) != 0) {
            if (lua_type(L, -2) != LUA_TSTRING)
                raise_at(L, where, "runbook", "params must be named: params = { name = { type = ... } }");
            validate_param(L, lua_gettop(L), lua_tostring(L, -2), runbook_name, where);
            lua_pop(L, 1);
        }
    } else if (params_type != LUA_TNIL) {
        raise_at(L, where, "runbook", "'params' must be a table of name = { type = ... }");
    }
    lua_pop(L, 2); /* params, name */
    validate_steps(L, 1, where);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_validated);
    lua_pushvalue(L, 1);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_pushvalue(L, 1);
    return 1;
}

/* ---- extraction into C ------------------------------------------------- */

static char *string_field(lua_State *L, int idx, const char *name)
{
    char *value = NULL;
    if (lua_getfield(L, idx, name) == LUA_TSTRING)
        value = xstrdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    return value;
}

static int bool_field(lua_State *L, int idx, const char *name)
{
    lua_getfield(L, idx, name);
    int value = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return value;
}

static int ref_field(lua_State *L, int idx, const char *name)
{
    if (lua_getfield(L, idx, name) == LUA_TNIL) {
        lua_pop(L, 1);
        return LUA_NOREF;
    }
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

static double duration_field(lua_State *L, int idx, const char *name, double fallback)
{
    double seconds = fallback;
    int type = lua_getfield(L, idx, name);
    if (type == LUA_TNUMBER)
        seconds = lua_tonumber(L, -1);
    else if (type == LUA_TSTRING)
        timefmt_parse_duration(&seconds, lua_tostring(L, -1));
    lua_pop(L, 1);
    return seconds;
}

static void extract_approvers(approval_rule *rule, lua_State *L, int idx)
{
    rule->count = 1;
    rule->valid_for = APPROVAL_DEFAULT_VALIDITY;
    int type = lua_getfield(L, idx, "approvers");
    if (type == LUA_TNUMBER) {
        rule->count = (int)lua_tointeger(L, -1);
    } else if (type == LUA_TTABLE) {
        int a = lua_gettop(L);
        lua_getfield(L, a, "count");
        rule->count = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (lua_getfield(L, a, "from") == LUA_TTABLE) {
            lua_Integer n = luaL_len(L, -1);
            for (lua_Integer i = 1; i <= n; i++) {
                lua_rawgeti(L, -1, i);
                str_list_add_unique(&rule->from, lua_tostring(L, -1));
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
        rule->valid_for = duration_field(L, a, "valid_for", APPROVAL_DEFAULT_VALIDITY);
    }
    lua_pop(L, 1);
}

static void extract_param(param_spec *spec, lua_State *L, int idx, const char *name)
{
    spec->name = xstrdup(name);
    char *type = string_field(L, idx, "type");
    params_type_from_name(&spec->type, type);
    free(type);
    spec->required = bool_field(L, idx, "required");
    spec->secret = bool_field(L, idx, "secret");
    spec->doc = string_field(L, idx, "doc");
    spec->env = string_field(L, idx, "env");
    spec->config = string_field(L, idx, "config");
    lua_getfield(L, idx, "default");
    spec->default_text = lua_isnil(L, -1) ? NULL : default_as_text(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "values") == LUA_TTABLE) {
        lua_Integer n = luaL_len(L, -1);
        spec->values = xcalloc((size_t)n, sizeof *spec->values);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            spec->values[spec->value_count++] = xstrdup(lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

static int compare_params(const void *a, const void *b)
{
    return strcmp(((const param_spec *)a)->name, ((const param_spec *)b)->name);
}

static void extract(runbook *rb, lua_State *L, int idx)
{
    rb->name = string_field(L, idx, "name");
    rb->version = string_field(L, idx, "version");
    rb->summary = string_field(L, idx, "summary");
    rb->description = string_field(L, idx, "description");
    rb->lock_ref = ref_field(L, idx, "lock");
    if (lua_getfield(L, idx, "params") == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2) != 0) {
            rb->params = xrealloc(rb->params, (rb->param_count + 1) * sizeof *rb->params);
            memset(&rb->params[rb->param_count], 0, sizeof *rb->params);
            extract_param(&rb->params[rb->param_count++], L, lua_gettop(L), lua_tostring(L, -2));
            lua_pop(L, 1);
        }
        /* Lua's table order is arbitrary; show params in a stable order. */
        if (rb->param_count > 1) /* none leaves rb->params NULL, which qsort may not take */
            qsort(rb->params, rb->param_count, sizeof *rb->params, compare_params);
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "steps");
    rb->step_count = (size_t)luaL_len(L, -1);
    rb->steps = xcalloc(rb->step_count, sizeof *rb->steps);
    /* A Lua error (out of memory) can stop this loop half way: the steps
     * not reached must hold no reference runbook_free would release. */
    for (size_t i = 0; i < rb->step_count; i++)
        rb->steps[i].run_ref = rb->steps[i].plan_ref = rb->steps[i].confirm_ref = LUA_NOREF;
    for (size_t i = 0; i < rb->step_count; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        int s = lua_gettop(L);
        step_spec *step = &rb->steps[i];
        step->name = string_field(L, s, "name");
        step->run_ref = ref_field(L, s, "run");
        step->plan_ref = ref_field(L, s, "plan");
        step->confirm_ref = ref_field(L, s, "confirm");
        step->destructive = bool_field(L, s, "destructive");
        step->idempotent = bool_field(L, s, "idempotent");
        step->always = bool_field(L, s, "always");
        step->timeout = duration_field(L, s, "timeout", 0);
        extract_approvers(&step->approvers, L, s);
        step->retry_attempts = 1;
        step->retry_backoff = 1;
        if (lua_getfield(L, s, "retry") == LUA_TTABLE) {
            lua_getfield(L, -1, "attempts");
            step->retry_attempts = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
            step->retry_backoff = duration_field(L, lua_gettop(L), "backoff", 1);
        }
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
}

int runbook_blob_id(char out[41], const char *path)
{
    char *text;
    size_t len;
    if (fsio_read_file(&text, &len, path) != 0)
        return DR_EUSAGE;
    git_oid oid;
    int rc = git_odb_hash(&oid, text, len, GIT_OBJECT_BLOB);
    free(text);
    if (rc != 0)
        return err_set(DR_EFAIL, "cannot hash %s", path);
    git_oid_tostr(out, 41, &oid);
    return 0;
}

static char *file_stem(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 4 && strcmp(base + len - 4, ".lua") == 0)
        len -= 4;
    return xstrndup(base, len);
}

static void ensure_validated_set(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_validated) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_createtable(L, 0, 1);
        lua_pushstring(L, "k");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &key_validated);
    }
    lua_pop(L, 1);
}

/* Runs a call prepared on the stack at load time; errors become DR_EUSAGE. */
static int load_call(sandbox *sb, int nargs)
{
    char *error = NULL;
    int rc = sandbox_call(&error, NULL, sb, nargs, 1, RUNBOOK_LOAD_TIMEOUT_SECONDS);
    if (rc) {
        rc = rc == DR_EINTR ? DR_EINTR : DR_EUSAGE;
        err_set(rc, "%s", error);
        free(error);
    }
    return rc;
}

/* Whether the table on the stack top went through `runbook { ... }`. */
static int was_validated(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_validated);
    lua_pushvalue(L, -2);
    lua_rawget(L, -2);
    int validated = lua_toboolean(L, -1);
    lua_pop(L, 2);
    return validated;
}

/* Runs the file; on success leaves its validated description on the stack. */
static int evaluate(sandbox *sb, const char *path)
{
    lua_State *L = sandbox_state(sb);
    ensure_validated_set(L);
    sandbox_push_env(sb);
    lua_pushcfunction(L, declare_runbook);
    lua_setfield(L, -2, "runbook");
    int rc = sandbox_load_file(sb, path);
    if (rc == 0)
        rc = load_call(sb, 0);
    if (rc)
        return rc;
    if (!was_validated(L)) {
        lua_pop(L, 1);
        return err_set(DR_EUSAGE, "%s: the file must end with 'return runbook { ... }'", path);
    }
    return 0;
}

static runbook *runbook_new(sandbox *sb, const char *path)
{
    runbook *rb = xcalloc(1, sizeof *rb);
    rb->sb = sb;
    rb->path = xstrdup(path);
    rb->lock_ref = LUA_NOREF;
    return rb;
}

/* Evaluates the runbook at PATH into RB; with MODULE, then hands its
 * description to MODULE's FUNCTION, and takes the runbook that makes.
 * Runs inside protected_load: any Lua error here (out of memory) is
 * caught there. */
static int load_into(runbook *rb, sandbox *sb, const char *path, const char *module, const char *function)
{
    lua_State *L = sandbox_state(sb);
    int rc = evaluate(sb, path);
    if (rc)
        return rc;
    if (module) {
        int scenario = lua_gettop(L);
        sandbox_push_env(sb);
        lua_getfield(L, -1, "require");
        lua_remove(L, -2);
        lua_pushstring(L, module);
        if ((rc = load_call(sb, 1)) != 0)
            return rc;
        lua_getfield(L, -1, function);
        lua_remove(L, -2);
        if (!lua_isfunction(L, -1))
            return err_set(DR_EUSAGE, "the module %s has no function %s", module, function);
        lua_pushvalue(L, scenario);
        if ((rc = load_call(sb, 1)) != 0)
            return rc;
        /* what the composer made is checked like any runbook */
        lua_pushcfunction(L, declare_runbook);
        lua_insert(L, -2);
        if ((rc = load_call(sb, 1)) != 0)
            return rc;
    }
    extract(rb, L, lua_gettop(L));
    if (!module) {
        char *stem = file_stem(path);
        if (strcmp(stem, rb->name) != 0)
            rc = err_set(DR_EUSAGE, "%s declares the name '%s'; a runbook's file must be named after it "
                         "(%s.lua)", path, rb->name, rb->name);
        free(stem);
    }
    return rc;
}

typedef struct load_job {
    runbook *rb;
    sandbox *sb;
    const char *path, *module, *function;
    int rc;
} load_job;

static int load_job_run(lua_State *L)
{
    load_job *job = lua_touserdata(L, 1);
    job->rc = load_into(job->rb, job->sb, job->path, job->module, job->function);
    return 0;
}

/* The whole load in one protected call, so that an allocation Lua cannot
 * make (its memory limit reached) is an error like a bad runbook, never
 * a panic; the stack is left as it was found. */
static int protected_load(runbook *rb, sandbox *sb, const char *path, const char *module, const char *function)
{
    lua_State *L = sandbox_state(sb);
    int top = lua_gettop(L);
    load_job job = { rb, sb, path, module, function, 0 };
    lua_pushcfunction(L, load_job_run);
    lua_pushlightuserdata(L, &job);
    int status = lua_pcall(L, 1, 0, 0);
    if (status != LUA_OK)
        job.rc = err_set(DR_EFAIL, "%s: cannot load the runbook: %s", path,
                         status == LUA_ERRMEM ? "Lua ran out of memory" : "a Lua error while loading it");
    lua_settop(L, top);
    return job.rc;
}

static int load(runbook **out, sandbox *sb, const char *path, const char *module, const char *function)
{
    *out = NULL;
    runbook *rb = runbook_new(sb, path);
    int rc = runbook_blob_id(rb->blob_id, path);
    if (rc == 0)
        rc = protected_load(rb, sb, path, module, function);
    if (rc) {
        runbook_free(rb);
        return rc;
    }
    *out = rb;
    return 0;
}

int runbook_load(runbook **out, sandbox *sb, const char *path)
{
    return load(out, sb, path, NULL, NULL);
}

int runbook_load_composed(runbook **out, sandbox *sb, const char *path, const char *module, const char *function)
{
    return load(out, sb, path, module, function);
}

int runbook_step_index(const runbook *rb, const char *name)
{
    for (size_t i = 0; i < rb->step_count; i++)
        if (strcmp(rb->steps[i].name, name) == 0)
            return (int)i;
    return -1;
}

void runbook_free(runbook *rb)
{
    if (!rb)
        return;
    lua_State *L = rb->sb ? sandbox_state(rb->sb) : NULL;
    for (size_t i = 0; i < rb->step_count; i++) {
        step_spec *s = &rb->steps[i];
        if (L) {
            luaL_unref(L, LUA_REGISTRYINDEX, s->run_ref);
            luaL_unref(L, LUA_REGISTRYINDEX, s->plan_ref);
            luaL_unref(L, LUA_REGISTRYINDEX, s->confirm_ref);
        }
        free(s->name);
        str_list_dispose(&s->approvers.from);
    }
    if (L)
        luaL_unref(L, LUA_REGISTRYINDEX, rb->lock_ref);
    free(rb->steps);
    for (size_t i = 0; i < rb->param_count; i++)
        params_spec_dispose(&rb->params[i]);
    free(rb->params);
    free(rb->path);
    free(rb->name);
    free(rb->version);
    free(rb->summary);
    free(rb->description);
    free(rb);
}
