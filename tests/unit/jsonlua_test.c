#include "test.h"

#include "err.h"
#include "jsonlua.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>

/* Evaluates a Lua expression and converts it; returns the JSON text or
 * "error: <message>". Caller frees. */
static char *convert(const char *expr)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    jsonlua_push_null(L);
    lua_setglobal(L, "null");
    char *code = NULL;
    if (asprintf(&code, "return %s", expr) < 0 || luaL_dostring(L, code) != LUA_OK) {
        free(code);
        lua_close(L);
        return strdup("lua error");
    }
    free(code);
    cJSON *json = jsonlua_from_lua(L, -1, "outputs");
    char *out;
    if (json) {
        out = cJSON_PrintUnformatted(json);
        cJSON_Delete(json);
    } else if (asprintf(&out, "error: %s", err_last()) < 0) {
        out = NULL;
    }
    lua_close(L);
    return out;
}

#define CHECK_CONVERTS(expr, expected)       \
    do {                                     \
        char *got_ = convert(expr);          \
        int ok_ = got_ && strcmp(got_, expected) == 0; \
        if (!ok_)                            \
            test_fail(__FILE__, __LINE__, expr " -> " expected, got_); \
        free(got_);                          \
        if (!ok_)                            \
            return;                          \
    } while (0)

static void plain_values_convert(void)
{
    CHECK_CONVERTS("{ id = 'br-1', n = 3, ok = true }", "{\"id\":\"br-1\",\"n\":3,\"ok\":true}");
    CHECK_CONVERTS("{ 1, 2, 'three' }", "[1,2,\"three\"]");
    CHECK_CONVERTS("1.5", "1.5");
    CHECK_CONVERTS("null", "null");
    CHECK_CONVERTS("{ a = { b = { c = null } } }", "{\"a\":{\"b\":{\"c\":null}}}");
}

static void a_function_is_refused_with_its_path(void)
{
    CHECK_CONVERTS("{ branches = { { created = print } } }",
                   "error: outputs.branches[1].created: a function cannot be saved as JSON");
}

static void mixed_and_sparse_tables_are_refused(void)
{
    char *got = convert("{ 1, 2, x = 3 }");
    CHECK_CONTAINS(got, "error: outputs: a table mixing");
    free(got);
    got = convert("{ [1] = 1, [3] = 3 }");
    CHECK_CONTAINS(got, "error: outputs: a table mixing");
    free(got);
}

static void a_cycle_is_refused(void)
{
    char *got = convert("(function() local t = {} t.self = t return t end)()");
    CHECK_CONTAINS(got, "nested too deeply");
    free(got);
}

static void nan_and_huge_integers_are_refused(void)
{
    char *got = convert("{ x = 0/0 }");
    CHECK_CONTAINS(got, "NaN");
    free(got);
    got = convert("{ x = math.maxinteger }");
    CHECK_CONTAINS(got, "beyond 2^53");
    free(got);
}

static void json_round_trips_into_lua(void)
{
    lua_State *L = luaL_newstate();
    cJSON *v = cJSON_Parse("{\"a\":[1,2.5,\"x\",null,true],\"b\":{}}");
    jsonlua_push(L, v);
    lua_getfield(L, -1, "a");
    lua_rawgeti(L, -1, 1);
    CHECK(lua_isinteger(L, -1) && lua_tointeger(L, -1) == 1);
    lua_pop(L, 1);
    lua_rawgeti(L, -1, 4);
    CHECK(jsonlua_is_null(L, -1));
    lua_pop(L, 2);
    cJSON *back = jsonlua_from_lua(L, -1, "v");
    char *text = cJSON_PrintUnformatted(back);
    CHECK_STR(text, "{\"a\":[1,2.5,\"x\",null,true],\"b\":{}}");
    free(text);
    cJSON_Delete(back);
    cJSON_Delete(v);
    lua_close(L);
}

void register_jsonlua_tests(void)
{
    REGISTER(plain_values_convert);
    REGISTER(a_function_is_refused_with_its_path);
    REGISTER(mixed_and_sparse_tables_are_refused);
    REGISTER(a_cycle_is_refused);
    REGISTER(nan_and_huge_integers_are_refused);
    REGISTER(json_round_trips_into_lua);
}
