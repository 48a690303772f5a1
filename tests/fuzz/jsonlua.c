/* jsonlua: JSON to Lua values and back, as step outputs and the json
 * module carry them.
 *
 * The input is JSON text (any bytes: most are refused by the parser).
 * Beyond "no crash":
 * - round trip: a tree pushed to Lua and converted back is the same tree,
 *   numbers bit for bit, once normalised the way Lua must see it (an empty
 *   array is an empty table, so an object; of a key given twice the last
 *   wins); a refusal says where, under the root's name;
 * - exact numbers: json_print_exact's text, compact and formatted, parses
 *   back to the very same tree;
 * - the json module agrees: json.decode of the text then json.encode gives
 *   the text json_print_exact gives, and a text json.decode refuses is one
 *   cJSON refuses too. */
#include "fuzz.h"

#include "err.h"
#include "jsonlua.h"
#include "jsontext.h"

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>

/* A state of its own for each input: what one input allocates it frees,
 * so libFuzzer's leak check (run whenever an input's mallocs and frees
 * differ) stays quiet and cheap. */
static lua_State *L;

static void open_state(void)
{
    L = luaL_newstate();
    luaL_requiref(L, "json", jsonlua_open_module, 1);
    lua_pop(L, 1);
}

/* The last member named key, as a Lua table built by setfield keeps it. */
static const cJSON *last_member(const cJSON *object, const char *key)
{
    const cJSON *found = NULL;
    for (const cJSON *m = object->child; m; m = m->next)
        if (strcmp(m->string, key) == 0)
            found = m;
    return found;
}

static size_t distinct_keys(const cJSON *object)
{
    size_t n = 0;
    for (const cJSON *m = object->child; m; m = m->next)
        n += last_member(object, m->string) == m;
    return n;
}

static int is_table(const cJSON *v)
{
    return cJSON_IsObject(v) || (cJSON_IsArray(v) && !v->child);
}

/* got is what Lua gave back for want (the parsed input). */
static int same_as_lua_sees(const cJSON *want, const cJSON *got)
{
    if (is_table(want) && cJSON_IsObject(got)) {
        if (cJSON_IsArray(want))
            return got->child == NULL;
        if (distinct_keys(want) != (size_t)cJSON_GetArraySize(got))
            return 0;
        for (const cJSON *m = got->child; m; m = m->next) {
            const cJSON *w = last_member(want, m->string);
            if (!w || !same_as_lua_sees(w, m))
                return 0;
        }
        return 1;
    }
    if ((want->type & 0xFF) != (got->type & 0xFF))
        return 0;
    if (cJSON_IsNumber(want))
        return memcmp(&want->valuedouble, &got->valuedouble, sizeof(double)) == 0;
    if (cJSON_IsString(want))
        return strcmp(want->valuestring, got->valuestring) == 0;
    if (cJSON_IsArray(want)) {
        const cJSON *w = want->child, *g = got->child;
        for (; w && g; w = w->next, g = g->next)
            if (!same_as_lua_sees(w, g))
                return 0;
        return !w && !g;
    }
    return 1;
}

/* Bit for bit, member order included. */
static int identical(const cJSON *a, const cJSON *b)
{
    if ((a->type & 0xFF) != (b->type & 0xFF))
        return 0;
    if (cJSON_IsNumber(a))
        return memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) == 0 ||
               (a->valuedouble == 0 && b->valuedouble == 0); /* JSON has one zero when printed as an integer */
    if (cJSON_IsString(a))
        return strcmp(a->valuestring, b->valuestring) == 0;
    const cJSON *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next)
        if ((x->string || y->string) && (!x->string || !y->string || strcmp(x->string, y->string)))
            return 0;
        else if (!identical(x, y))
            return 0;
    return !x && !y;
}

static void check_prints_exactly(const cJSON *tree)
{
    for (int formatted = 0; formatted <= 1; formatted++) {
        char *text = json_print_exact(tree, formatted);
        cJSON *back = cJSON_Parse(text);
        FUZZ_CHECK(back && identical(tree, back));
        cJSON_Delete(back);
        free(text);
    }
}

/* json.decode(text) then json.encode(value, pretty) in Lua; NULL when
 * decode refused the text. */
static char *through_module(const char *text, size_t len, int pretty, int *decoded)
{
    lua_settop(L, 0);
    lua_getglobal(L, "json");
    lua_getfield(L, -1, "decode");
    lua_pushlstring(L, text, len);
    FUZZ_CHECK(lua_pcall(L, 1, 2, 0) == LUA_OK);
    *decoded = !lua_isnil(L, -2);
    if (!*decoded) {
        FUZZ_CHECK(lua_isstring(L, -1));
        lua_settop(L, 0);
        return NULL;
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "encode");
    lua_insert(L, -2);
    lua_pushboolean(L, pretty);
    char *encoded = NULL;
    if (lua_pcall(L, 2, 1, 0) == LUA_OK)
        encoded = strdup(lua_tostring(L, -1));
    lua_settop(L, 0);
    return encoded;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    open_state();
    const char *end = NULL;
    cJSON *tree = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    /* json.decode takes white space after the value, nothing else. */
    while (tree && end && end < text + size && strchr(" \t\n\r", *end) && *end)
        end++;
    int whole = tree && end && end == text + size;
    lua_settop(L, 0);
    if (tree && !whole) {
        int decoded;
        char *encoded = through_module(text, size, 0, &decoded);
        FUZZ_CHECK(!decoded);
        free(encoded);
        cJSON_Delete(tree);
    } else if (tree) {
        jsonlua_push(L, tree);
        cJSON *back = jsonlua_from_lua(L, -1, "outputs");
        if (back) {
            FUZZ_CHECK(same_as_lua_sees(tree, back));
            check_prints_exactly(back);
        } else {
            FUZZ_CHECK(strncmp(err_last(), "outputs", 7) == 0);
        }
        lua_settop(L, 0);
        int pretty = size && (data[0] & 1);
        int decoded;
        char *encoded = through_module(text, size, pretty, &decoded);
        FUZZ_CHECK(decoded);
        if (back) {
            char *want = json_print_exact(back, pretty);
            FUZZ_CHECK(encoded && strcmp(encoded, want) == 0);
            free(want);
        }
        free(encoded);
        cJSON_Delete(back);
        cJSON_Delete(tree);
    } else {
        int decoded;
        free(through_module(text, size, 0, &decoded));
        FUZZ_CHECK(!decoded);
    }
    lua_close(L);
    return 0;
}
