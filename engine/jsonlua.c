#include "jsonlua.h"

#include "buf.h"
#include "err.h"
#include "jsontext.h"

#include <lauxlib.h>
#include <limits.h>
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

/* Integral numbers within 2^53 come back as Lua integers, as they left
 * (JSON does not tell 2.0 from 2); others, and -0.0, as floats. */
static void push_number(lua_State *L, double v)
{
    if (v == floor(v) && fabs(v) <= (double)MAX_SAFE_INTEGER && !(v == 0 && signbit(v)))
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

/* A conversion in progress. Everything it owns is reachable from here, and
 * every node is attached to the tree as soon as it is made, so that when a
 * Lua error unwinds the conversion halfway (out of memory, a stack
 * overflow) the one lua_pcall around it can free it all. */
typedef struct conversion {
    cJSON *root;      /* the tree built so far */
    buf path;         /* where we are, for messages: "outputs.rows[3]" */
    size_t root_len;  /* the length of the root's name in path */
    size_t bytes;     /* the JSON text the tree prints as, so far */
    size_t values;
    int formatted;    /* count cJSON_Print's layout, not the compact one */
    int refused;      /* the refusal's message is set */
} conversion;

static int convert(conversion *c, lua_State *L, int idx, cJSON *parent, const char *key, int depth);

static int refuse(conversion *c, const char *what)
{
    err_set(DR_EFAIL, "%s: %s", buf_cstr(&c->path), what);
    c->refused = 1;
    return -1;
}

/* Both limits are about the whole value, so the message names the root,
 * and says where the limit was passed. */
static int refuse_too_large(conversion *c, const char *what)
{
    const char *path = buf_cstr(&c->path);
    if (c->path.len == c->root_len)
        err_set(DR_EFAIL, "%s: %s; keep big data in files or tables, and return their names", path, what);
    else
        err_set(DR_EFAIL, "%.*s: %s (the limit is passed at %s); keep big data in files or tables, and "
                "return their names", (int)c->root_len, path, what, path);
    c->refused = 1;
    return -1;
}

/* Counts text before it is copied into the tree, so that a value too large
 * is refused before the engine holds a second copy of it. */
static int charge(conversion *c, size_t bytes)
{
    if (bytes > JSONLUA_MAX_BYTES - c->bytes) {
        char what[64];
        snprintf(what, sizeof what, "larger than %d MiB as JSON", JSONLUA_MAX_BYTES / (1024 * 1024));
        return refuse_too_large(c, what);
    }
    c->bytes += bytes;
    return 0;
}

/* Each node costs about a hundred bytes of tree whatever its text, so the
 * number of values is bounded too: a list of small numbers stays within
 * the byte limit while its tree would take gigabytes. */
static int count_value(conversion *c)
{
    if (++c->values > JSONLUA_MAX_VALUES) {
        char what[64];
        snprintf(what, sizeof what, "more than %d values as JSON", JSONLUA_MAX_VALUES);
        return refuse_too_large(c, what);
    }
    return 0;
}

static int attach(conversion *c, cJSON *parent, const char *key, cJSON *node)
{
    if (!node)
        return refuse(c, "out of memory converting to JSON");
    if (!parent)
        c->root = node;
    else if (!(key ? cJSON_AddItemToObject(parent, key, node) : cJSON_AddItemToArray(parent, node))) {
        cJSON_Delete(node);
        return refuse(c, "out of memory converting to JSON");
    }
    return 0;
}

static void path_push(conversion *c, const char *key, size_t len, lua_Integer index)
{
    if (!key) {
        buf_printf(&c->path, "[%lld]", (long long)index);
        return;
    }
    buf_putc(&c->path, '.');
    for (size_t i = 0; i < len; i++) {
        if (key[i] == '\0')
            buf_puts(&c->path, "\\0");
        else
            buf_putc(&c->path, key[i]);
    }
}

static void path_pop(conversion *c, size_t mark)
{
    c->path.len = mark;
    c->path.data[mark] = '\0';
}

/* A table is an array when its keys are exactly 1..n. Returns n, 0 for an
 * empty table, or -1 when the keys are all strings, -2 when mixed/sparse.
 * *count is the number of keys. lua_next is raw: no __pairs. */
static lua_Integer table_shape(size_t *count, lua_State *L, int idx)
{
    lua_Integer integers = 0, max_index = 0;
    size_t keys = 0;
    int has_string = 0, has_other = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        keys++;
        if (lua_type(L, -1) == LUA_TSTRING) {
            has_string = 1;
        } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
            lua_Integer k = lua_tointeger(L, -1);
            if (k > max_index)
                max_index = k;
            integers++;
        } else {
            has_other = 1;
        }
    }
    *count = keys;
    if (has_other || (has_string && integers > 0))
        return -2;
    if (has_string)
        return -1;
    if (integers != max_index)
        return -2;
    return integers;
}

/* Converts the value on the stack top, then pops it. */
static int convert_top(conversion *c, lua_State *L, cJSON *parent, const char *key, int depth)
{
    int rc = convert(c, L, lua_gettop(L), parent, key, depth);
    lua_pop(L, 1);
    return rc;
}

/* cJSON_Print puts ", " between items, cJSON_PrintUnformatted ",". */
static int convert_array(conversion *c, lua_State *L, int idx, cJSON *array, lua_Integer n, int depth)
{
    if (charge(c, 2 + (size_t)(n > 0 ? n - 1 : 0) * (c->formatted ? 2 : 1)) != 0)
        return -1;
    for (lua_Integer i = 1; i <= n; i++) {
        size_t mark = c->path.len;
        path_push(c, NULL, 0, i);
        lua_rawgeti(L, idx, i);
        int rc = convert_top(c, L, array, NULL, depth + 1);
        path_pop(c, mark);
        if (rc)
            return rc;
    }
    return 0;
}

typedef struct member {
    const char *key; /* kept alive by the conversion's own table of keys */
    size_t len;
    lua_Integer slot;
} member;

static int compare_members(const void *a, const void *b)
{
    const member *x = a, *y = b;
    int order = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
    return order ? order : (x->len > y->len) - (x->len < y->len);
}

/* The layout of one member: compact `"key":value,`; formatted, with depth
 * counting every enclosing object and array as cJSON does, a line of
 * `<tabs>"key":\t` value `,\n`. */
static size_t member_overhead(const conversion *c, const member *m, int depth, int last)
{
    size_t size = json_string_size(m->key, m->len) + 1 + (last ? 0 : 1);
    if (c->formatted)
        size += (size_t)depth + 1 + 1 + 1;
    return size;
}

/* Keys are copied into a table of the conversion's own before anything is
 * looked up, and the sorting array lives in a userdata: the strings stay
 * alive whatever happens to the table being converted, and an error that
 * unwinds the conversion leaves Lua to free both. Values are read with
 * lua_rawget: no __index runs. */
static int convert_object(conversion *c, lua_State *L, int idx, cJSON *object, size_t count, int depth)
{
    luaL_checkstack(L, 6, "value too deep to convert to JSON");
    lua_createtable(L, count > INT_MAX ? 0 : (int)count, 0);
    int keys = lua_gettop(L);
    member *members = lua_newuserdatauv(L, count * sizeof *members, 0);
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (n == count || lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 3);
            return refuse(c, "the table changed while it was converted to JSON");
        }
        lua_pushvalue(L, -1);
        lua_rawseti(L, keys, (lua_Integer)n + 1);
        members[n].key = lua_tolstring(L, -1, &members[n].len);
        members[n].slot = (lua_Integer)n + 1;
        n++;
    }
    /* Sorted: the same outputs always give the same bytes in the journal
     * and state.json, whatever Lua's table order. */
    qsort(members, n, sizeof *members, compare_members);
    int rc = charge(c, 2 + (c->formatted ? 1 + (size_t)depth : 0));
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const member *m = &members[i];
        size_t mark = c->path.len;
        path_push(c, m->key, m->len, 0);
        if (memchr(m->key, '\0', m->len))
            rc = refuse(c, "a key with a NUL byte cannot be saved as JSON (rename the key)");
        else
            rc = charge(c, member_overhead(c, m, depth, i + 1 == n));
        if (rc == 0) {
            lua_rawgeti(L, keys, m->slot);
            lua_rawget(L, idx);
            rc = convert_top(c, L, object, m->key, depth + 1);
        }
        path_pop(c, mark);
    }
    lua_pop(L, 2);
    return rc;
}

static int convert_table(conversion *c, lua_State *L, int idx, cJSON *parent, const char *key, int depth)
{
    if (depth > MAX_DEPTH)
        return refuse(c, "nested too deeply (is there a cycle?)");
    size_t count;
    lua_Integer shape = table_shape(&count, L, idx);
    if (shape == -2)
        return refuse(c, "a table mixing string keys with numbers, or with holes, cannot be saved "
                         "as JSON (use a list 1..n or string keys only)");
    cJSON *node = shape > 0 ? cJSON_CreateArray() : cJSON_CreateObject();
    if (attach(c, parent, key, node) != 0)
        return -1;
    if (shape > 0)
        return convert_array(c, L, idx, node, shape, depth);
    return convert_object(c, L, idx, node, count, depth);
}

static int convert_number(conversion *c, lua_State *L, int idx, cJSON *parent, const char *key)
{
    double v;
    if (lua_isinteger(L, idx)) {
        lua_Integer i = lua_tointeger(L, idx);
        if (i > MAX_SAFE_INTEGER || i < -MAX_SAFE_INTEGER)
            return refuse(c, "an integer beyond 2^53 cannot be saved exactly as JSON "
                             "(return it as a string)");
        v = (double)i;
    } else {
        v = lua_tonumber(L, idx);
        if (!isfinite(v))
            return refuse(c, "NaN and infinities cannot be saved as JSON");
    }
    char text[JSON_NUMBER_MAX];
    if (charge(c, json_number_text(text, v)) != 0)
        return -1;
    return attach(c, parent, key, cJSON_CreateNumber(v));
}

static int convert_string(conversion *c, lua_State *L, int idx, cJSON *parent, const char *key)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len); /* a string already: no conversion */
    if (memchr(s, '\0', len))
        return refuse(c, "a string with a NUL byte cannot be saved as JSON");
    if (charge(c, json_string_size(s, len)) != 0)
        return -1;
    return attach(c, parent, key, cJSON_CreateString(s));
}

/* Reads the value raw: lua_type, lua_toboolean, lua_tonumber and lua_next
 * run no metamethod, and neither does luaL_typename (no __name). */
static int convert(conversion *c, lua_State *L, int idx, cJSON *parent, const char *key, int depth)
{
    luaL_checkstack(L, 6, "value too deep to convert to JSON");
    if (count_value(c) != 0)
        return -1;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return charge(c, 4) ? -1 : attach(c, parent, key, cJSON_CreateNull());
    case LUA_TBOOLEAN: {
        int b = lua_toboolean(L, idx);
        return charge(c, b ? 4 : 5) ? -1 : attach(c, parent, key, cJSON_CreateBool(b));
    }
    case LUA_TNUMBER:
        return convert_number(c, L, idx, parent, key);
    case LUA_TSTRING:
        return convert_string(c, L, idx, parent, key);
    case LUA_TTABLE:
        return convert_table(c, L, idx, parent, key, depth);
    case LUA_TLIGHTUSERDATA:
        if (jsonlua_is_null(L, idx))
            return charge(c, 4) ? -1 : attach(c, parent, key, cJSON_CreateNull());
        /* fall through */
    default: {
        char what[96];
        snprintf(what, sizeof what, "a %s cannot be saved as JSON", luaL_typename(L, idx));
        return refuse(c, what);
    }
    }
}

static int convert_protected(lua_State *L)
{
    conversion *c = lua_touserdata(L, 1);
    convert(c, L, 2, NULL, NULL, 0);
    return 0;
}

/* The conversion runs in a lua_pcall of its own, whether the caller is in
 * a protected call or not: a Lua error inside it is then a refusal like any
 * other, and the tree built so far is freed. */
static cJSON *convert_root(lua_State *L, int idx, const char *root_name, int formatted)
{
    conversion c = { .path = BUF_INIT, .formatted = formatted };
    buf_puts(&c.path, root_name);
    c.root_len = c.path.len;
    idx = lua_absindex(L, idx);
    int status = LUA_ERRMEM;
    if (lua_checkstack(L, 3)) {
        lua_pushcfunction(L, convert_protected);
        lua_pushlightuserdata(L, &c);
        lua_pushvalue(L, idx);
        status = lua_pcall(L, 2, 0, 0);
        if (status != LUA_OK) {
            if (!c.refused)
                err_set(DR_EFAIL, "%s: cannot be converted to JSON: %s", buf_cstr(&c.path),
                        lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "a Lua error");
            lua_pop(L, 1);
        }
    } else {
        err_set(DR_EFAIL, "%s: cannot be converted to JSON: not enough memory", root_name);
    }
    if (status != LUA_OK || c.refused) {
        cJSON_Delete(c.root);
        c.root = NULL;
    }
    buf_dispose(&c.path);
    return c.root;
}

cJSON *jsonlua_from_lua(lua_State *L, int idx, const char *root_name)
{
    return convert_root(L, idx, root_name, 0);
}

static int push_text(lua_State *L)
{
    lua_pushstring(L, lua_touserdata(L, 1));
    return 1;
}

/* Pushes text and frees it, even when pushing raises (out of memory). */
static int push_and_free(lua_State *L, char *text)
{
    lua_pushcfunction(L, push_text);
    lua_pushlightuserdata(L, text);
    int status = lua_pcall(L, 1, 1, 0);
    free(text);
    return status == LUA_OK ? 1 : lua_error(L);
}

static int json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    int pretty = lua_toboolean(L, 2);
    cJSON *value = convert_root(L, 1, "value", pretty);
    if (!value)
        return luaL_error(L, "json.encode: %s", err_last());
    char *text = json_print_exact(value, pretty);
    cJSON_Delete(value);
    return push_and_free(L, text);
}

static int push_tree(lua_State *L)
{
    jsonlua_push(L, lua_touserdata(L, 1));
    return 1;
}

/* Pushes a decoded tree and frees it, even when pushing raises: a big
 * tree can pass the memory cap, and cJSON's memory is not Lua's. */
int jsonlua_push_and_free(lua_State *L, cJSON *tree)
{
    lua_pushcfunction(L, push_tree);
    lua_pushlightuserdata(L, tree);
    int status = lua_pcall(L, 1, 1, 0);
    cJSON_Delete(tree);
    return status == LUA_OK ? 1 : lua_error(L);
}

static int json_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    /* The tree cJSON builds lives outside Lua's memory cap, at several
     * times the text's size: bound the text as outputs are bounded. */
    if (len > JSONLUA_MAX_BYTES) {
        lua_pushnil(L);
        lua_pushfstring(L, "json.decode: the text is %I bytes, over the limit of %d MiB "
                           "(keep big data in files or tables)", (lua_Integer)len, JSONLUA_MAX_BYTES >> 20);
        return 2;
    }
    const char *end = NULL;
    cJSON *value = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    /* What follows the value must be white space only: "[1] junk" is not JSON. */
    while (value && end && end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (value && end && end < text + len) {
        cJSON_Delete(value);
        value = NULL;
    }
    if (!value) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        lua_pushnil(L);
        lua_pushfstring(L, "json.decode: invalid JSON at byte %d", (int)at);
        return 2;
    }
    return jsonlua_push_and_free(L, value);
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
