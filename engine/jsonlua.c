#include "jsonlua.h"

#include "buf.h"
#include "err.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Only its address matters: it is the identity of json.null. */
static const char json_null_sentinel = 0;
#define MAX_DEPTH 64
#define MAX_SAFE_INTEGER 9007199254740992LL /* 2^53 */

void jsonlua_push_null(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&json_null_sentinel);
}

int jsonlua_is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == &json_null_sentinel;
}

static void push_number(lua_State *L, double v)
{
    if (v == floor(v) && fabs(v) <= (double)MAX_SAFE_INTEGER)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, v);
}

void jsonlua_push(lua_State *L, const cJSON *value)
{
    luaL_checkstack(L, 4, "JSON value too deep");
    if (!value) {
        lua_pushnil(L);
    } else if (cJSON_IsNull(value)) {
        jsonlua_push_null(L);
    } else if (cJSON_IsBool(value)) {
        lua_pushboolean(L, cJSON_IsTrue(value));
    } else if (cJSON_IsNumber(value)) {
        push_number(L, value->valuedouble);
    } else if (cJSON_IsString(value)) {
        lua_pushstring(L, value->valuestring);
    } else if (cJSON_IsArray(value)) {
        lua_createtable(L, cJSON_GetArraySize(value), 0);
        lua_Integer i = 1;
        for (const cJSON *item = value->child; item; item = item->next) {
            jsonlua_push(L, item);
            lua_rawseti(L, -2, i++);
        }
    } else if (cJSON_IsObject(value)) {
        lua_createtable(L, 0, cJSON_GetArraySize(value));
        for (const cJSON *item = value->child; item; item = item->next) {
            jsonlua_push(L, item);
            lua_setfield(L, -2, item->string);
        }
    } else {
        lua_pushnil(L);
    }
}

/* The path of a value for error messages, grown and shrunk as we descend. */
typedef struct path {
    buf text;
} path;

static cJSON *convert(lua_State *L, int idx, path *where, int depth);

static cJSON *fail(path *where, const char *what)
{
    err_set(DR_EFAIL, "%s: %s", buf_cstr(&where->text), what);
    return NULL;
}

/* A table is an array when its keys are exactly 1..n. Returns n, 0 for an
 * empty table, or -1 when the keys are all strings, -2 when mixed/sparse. */
static lua_Integer table_shape(lua_State *L, int idx)
{
    lua_Integer count = 0, max_index = 0;
    int has_string = 0, has_other = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            has_string = 1;
        } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
            lua_Integer k = lua_tointeger(L, -1);
            if (k > max_index)
                max_index = k;
            count++;
        } else {
            has_other = 1;
        }
    }
    if (has_other || (has_string && count > 0))
        return -2;
    if (has_string)
        return -1;
    if (count != max_index)
        return -2;
    return count;
}

/* Converts the value on the stack top (and pops it), with its path grown
 * by step ("[3]" or ".name") while inside it. */
static cJSON *convert_child(lua_State *L, path *where, const char *step, int depth)
{
    size_t mark = where->text.len;
    buf_puts(&where->text, step);
    cJSON *item = convert(L, lua_gettop(L), where, depth + 1);
    where->text.len = mark;
    where->text.data[mark] = '\0';
    lua_pop(L, 1);
    return item;
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static cJSON *convert_table(lua_State *L, int idx, path *where, int depth)
{
    if (depth > MAX_DEPTH)
        return fail(where, "nested too deeply (is there a cycle?)");
    lua_Integer shape = table_shape(L, idx);
    if (shape == -2)
        return fail(where, "a table mixing string keys with numbers, or with holes, cannot be saved "
                           "as JSON (use a list 1..n or string keys only)");
    if (shape > 0) {
        cJSON *array = cJSON_CreateArray();
        for (lua_Integer i = 1; i <= shape; i++) {
            lua_rawgeti(L, idx, i);
            char step[32];
            snprintf(step, sizeof step, "[%lld]", (long long)i);
            cJSON *item = convert_child(L, where, step, depth);
            if (!item) {
                cJSON_Delete(array);
                return NULL;
            }
            cJSON_AddItemToArray(array, item);
        }
        return array;
    }
    /* Keys in sorted order: the same outputs always give the same bytes in
     * the journal and state.json, whatever Lua's table order. */
    size_t count = 0, cap = 8;
    const char **keys = xmalloc(cap * sizeof *keys);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (count == cap)
            keys = xrealloc(keys, (cap *= 2) * sizeof *keys);
        keys[count++] = lua_tostring(L, -1); /* kept alive by the table */
    }
    qsort(keys, count, sizeof *keys, compare_keys);
    cJSON *object = cJSON_CreateObject();
    for (size_t i = 0; i < count; i++) {
        lua_getfield(L, idx, keys[i]);
        char *step = xasprintf(".%s", keys[i]);
        cJSON *item = convert_child(L, where, step, depth);
        free(step);
        if (!item) {
            free(keys);
            cJSON_Delete(object);
            return NULL;
        }
        cJSON_AddItemToObject(object, keys[i], item);
    }
    free(keys);
    return object;
}

static cJSON *convert(lua_State *L, int idx, path *where, int depth)
{
    luaL_checkstack(L, 6, "value too deep");
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return cJSON_CreateNull();
    case LUA_TBOOLEAN:
        return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            lua_Integer v = lua_tointeger(L, idx);
            if (v > MAX_SAFE_INTEGER || v < -MAX_SAFE_INTEGER)
                return fail(where, "an integer beyond 2^53 cannot be saved exactly as JSON "
                                   "(return it as a string)");
            return cJSON_CreateNumber((double)v);
        } else {
            double v = lua_tonumber(L, idx);
            if (!isfinite(v))
                return fail(where, "NaN and infinities cannot be saved as JSON");
            return cJSON_CreateNumber(v);
        }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (strlen(s) != len)
            return fail(where, "a string with a NUL byte cannot be saved as JSON");
        return cJSON_CreateString(s);
    }
    case LUA_TTABLE:
        return convert_table(L, idx, where, depth);
    case LUA_TLIGHTUSERDATA:
        if (jsonlua_is_null(L, idx))
            return cJSON_CreateNull();
        /* fall through */
    default: {
        char what[96];
        snprintf(what, sizeof what, "a %s cannot be saved as JSON", luaL_typename(L, idx));
        return fail(where, what);
    }
    }
}

cJSON *jsonlua_from_lua(lua_State *L, int idx, const char *root_name)
{
    path where = { BUF_INIT };
    buf_puts(&where.text, root_name);
    cJSON *out = convert(L, lua_absindex(L, idx), &where, 0);
    buf_free(&where.text);
    return out;
}

static int json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    int pretty = lua_toboolean(L, 2);
    cJSON *value = jsonlua_from_lua(L, 1, "value");
    if (!value)
        return luaL_error(L, "json.encode: %s", err_last());
    char *text = pretty ? cJSON_Print(value) : cJSON_PrintUnformatted(value);
    cJSON_Delete(value);
    lua_pushstring(L, text);
    free(text);
    return 1;
}

static int json_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *end = NULL;
    cJSON *value = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!value) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        lua_pushnil(L);
        lua_pushfstring(L, "json.decode: invalid JSON at byte %d", (int)at);
        return 2;
    }
    jsonlua_push(L, value);
    cJSON_Delete(value);
    return 1;
}

int jsonlua_open_module(lua_State *L)
{
    static const luaL_Reg functions[] = {
        { "encode", json_encode },
        { "decode", json_decode },
        { NULL, NULL },
    };
    luaL_newlib(L, functions);
    jsonlua_push_null(L);
    lua_setfield(L, -2, "null");
    return 1;
}
