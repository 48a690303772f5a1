#include "test.h"

#include "buf.h"
#include "err.h"
#include "jsonlua.h"
#include "jsontext.h"

#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Evaluates a Lua expression and converts it; returns the JSON text or
 * "error: <message>". Caller frees. */
static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    jsonlua_push_null(L);
    lua_setglobal(L, "null");
    luaL_requiref(L, "json", jsonlua_open_module, 1);
    lua_pop(L, 1);
    return L;
}

static char *convert(const char *expr)
{
    lua_State *L = new_state();
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
        out = json_print_exact(json, 0);
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

/* Runs a Lua chunk in a state with json; returns its string result, or
 * "lua error: <message>". Caller frees. */
static char *run_lua(const char *code)
{
    lua_State *L = new_state();
    char *out;
    if (luaL_dostring(L, code) != LUA_OK)
        out = xasprintf("lua error: %s", lua_tostring(L, -1));
    else
        out = xstrdup(lua_isstring(L, -1) ? lua_tostring(L, -1) : "(not a string)");
    lua_close(L);
    return out;
}

#define CHECK_LUA(code, expected)                                 \
    do {                                                          \
        char *got_ = run_lua(code);                               \
        int ok_ = strcmp(got_, expected) == 0;                    \
        if (!ok_)                                                 \
            test_fail(__FILE__, __LINE__, expected, got_);        \
        free(got_);                                               \
        if (!ok_)                                                 \
            return;                                               \
    } while (0)

static void numbers_print_so_they_read_back_exactly(void)
{
    CHECK_CONVERTS("{ 9007199254740991, 2^53, 1 << 53, -9007199254740991, 0.1 + 0.2, 1e300, -0.0, 123.456 }",
                   "[9007199254740991,9007199254740992,9007199254740992,-9007199254740991,"
                   "0.30000000000000004,1e+300,-0,123.456]");
    CHECK_CONVERTS("{ 1 / 3, 2^53 + 2, 5e-324, 1e21, 1e15, 2.0, -1.5 }",
                   "[0.3333333333333333,9007199254740994,4.94065645841247e-324,1e+21,1000000000000000,2,-1.5]");
}

/* Where cJSON's own text was exact, ours is the same bytes. */
static void ordinary_numbers_print_as_cjson_prints_them(void)
{
    const char *text = "{\"a\":[1,-5,1.5,123.456,2147483648,10000000000,0.25,3.14,-0,1e+300],"
                       "\"b\":{\"c\":{},\"d\":[],\"e\":[{\"f\":0.001}]},\"g\":\"q\\\"\\n\\u0001\"}";
    cJSON *tree = cJSON_Parse(text);
    for (int formatted = 0; formatted <= 1; formatted++) {
        char *theirs = formatted ? cJSON_Print(tree) : cJSON_PrintUnformatted(tree);
        char *ours = json_print_exact(tree, formatted);
        CHECK_STR(ours, theirs);
        free(theirs);
        free(ours);
    }
    CHECK(cJSON_IsNumber(cJSON_GetArrayItem(cJSON_GetObjectItem(tree, "a"), 2))); /* restored */
    CHECK(cJSON_GetArrayItem(cJSON_GetObjectItem(tree, "a"), 2)->valuestring == NULL);
    cJSON_Delete(tree);
}

/* Doubles drawn from every exponent: each prints as the shortest text of
 * 15, 16 or 17 digits that strtod reads back as the same double. */
static void any_double_reads_back_as_itself(void)
{
    uint64_t state = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < 200000; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        double v;
        memcpy(&v, &state, sizeof v);
        if (!isfinite(v))
            continue;
        char text[JSON_NUMBER_MAX];
        size_t len = json_number_text(text, v);
        CHECK(len == strlen(text) && len < JSON_NUMBER_MAX);
        double back = strtod(text, NULL);
        if (memcmp(&back, &v, sizeof v) != 0)
            test_fail(__FILE__, __LINE__, "reads back as itself", text);
        if (test_failed_now())
            return;
        cJSON *parsed = cJSON_Parse(text);
        CHECK(parsed && cJSON_IsNumber(parsed) && memcmp(&parsed->valuedouble, &v, sizeof v) == 0);
        cJSON_Delete(parsed);
    }
}

/* Lua -> JSON text -> Lua, as a resume does: the same values, integers as
 * integers. */
static void numbers_come_back_into_lua_unchanged(void)
{
    lua_State *L = new_state();
    CHECK(luaL_dostring(L, "return { 9007199254740991, 2^53, 0.1 + 0.2, 1e300, -0.0, 123.456, 1/3, 7 }") == LUA_OK);
    cJSON *tree = jsonlua_from_lua(L, -1, "outputs");
    char *text = json_print_exact(tree, 0);
    cJSON *back = cJSON_Parse(text);
    jsonlua_push(L, back);
    lua_setglobal(L, "back");
    lua_setglobal(L, "sent");
    CHECK(luaL_dostring(L,
        "local want = { 9007199254740991, 2^53, 0.1 + 0.2, 1e300, -0.0, 123.456, 1/3, 7 }\n"
        "local types = { 'integer', 'integer', 'float', 'float', 'float', 'float', 'float', 'integer' }\n"
        "for i = 1, #want do\n"
        "  local v = back[i]\n"
        "  if v ~= want[i] or math.type(v) ~= types[i] or 1 / v ~= 1 / want[i] then\n"
        "    return 'item ' .. i .. ': ' .. string.format('%.17g', v) .. ' ' .. math.type(v)\n"
        "  end\n"
        "end\n"
        "return back[1] == 9007199254740991 and back[3] == 0.1 + 0.2 and 'same' or 'changed'") == LUA_OK);
    CHECK_STR(lua_tostring(L, -1), "same");
    cJSON_Delete(back);
    free(text);
    cJSON_Delete(tree);
    lua_close(L);
}

#define HOSTILE_META                                                                   \
    "local ran = {}\n"                                                                 \
    "local meta = { __name = 'Hostile',\n"                                             \
    "  __index = function(t, k) ran[#ran+1] = '__index'\n"                             \
    "    for key in next, t do rawset(t, key, nil) end collectgarbage() return 'x' end,\n" \
    "  __pairs = function(t) ran[#ran+1] = '__pairs' return next, {}, nil end,\n"      \
    "  __len = function() ran[#ran+1] = '__len' return 5 end,\n"                       \
    "  __tostring = function() ran[#ran+1] = '__tostring' return 'x' end }\n"          \
    "local function keys(t) for i = 1, 30 do t['key-' .. i .. ('-'):rep(50)] = i end return t end\n"

static void tables_are_read_raw_and_no_metamethod_runs(void)
{
    CHECK_LUA(HOSTILE_META
              "local t = setmetatable(keys({ sub = setmetatable({ 1, 2 }, meta) }), meta)\n"
              "local back = json.decode(json.encode(t))\n"
              "local n = 0 for k, v in pairs(back) do n = n + 1 end\n"
              "return n .. ' ' .. json.encode(back.sub) .. ' ' .. back['key-7' .. ('-'):rep(50)] .. ' ran:' .. table.concat(ran, ',')",
              "31 [1,2] 7 ran:");
}

/* The key "a\0b" used to be looked up as "a", which ran __index. */
static void a_key_with_a_nul_byte_is_refused_and_runs_nothing(void)
{
    CHECK_LUA(HOSTILE_META
              "local t = setmetatable(keys({ ['a\\0b'] = 1 }), meta)\n"
              "local ok, err = pcall(json.encode, t)\n"
              "return tostring(ok) .. ' ' .. err .. ' ran:' .. table.concat(ran, ',')",
              "false json.encode: value.a\\0b: a key with a NUL byte cannot be saved as JSON (rename the key) ran:");
}

/* The byte count is the text's exact length: a value that prints as
 * JSONLUA_MAX_BYTES is accepted, one byte more is refused, compact or
 * formatted. */
static void the_byte_limit_is_the_exact_text_length(void)
{
    char *code = xasprintf(
        "local function value(pad) return { a = { 1, { x = 's\\n\\1' }, true, null, 0.5 }, "
        "b = { c = { d = {} } }, e = {}, pad = ('p'):rep(pad) } end\n"
        "local out = {}\n"
        "for _, pretty in ipairs({ false, true }) do\n"
        "  local base = #json.encode(value(0), pretty)\n"
        "  local fits = %d - base\n"
        "  local ok1, t1 = pcall(json.encode, value(fits), pretty)\n"
        "  local ok2, t2 = pcall(json.encode, value(fits + 1), pretty)\n"
        "  out[#out + 1] = tostring(ok1 and #t1 == %d) .. ' ' .. tostring(ok2) .. ' ' .. (ok2 and '' or t2)\n"
        "end\n"
        "return table.concat(out, ' | ')", JSONLUA_MAX_BYTES, JSONLUA_MAX_BYTES);
    CHECK_LUA(code,
              "true false json.encode: value: larger than 16 MiB as JSON (the limit is passed at value.pad); "
              "keep big data in files or tables, and return their names | "
              "true false json.encode: value: larger than 16 MiB as JSON (the limit is passed at value.pad); "
              "keep big data in files or tables, and return their names");
    free(code);
}

static void too_many_values_are_refused_by_path(void)
{
    char *got = convert("(function() local t = {} for i = 1, 1100000 do t[i] = 0 end return { rows = t } end)()");
    CHECK_CONTAINS(got, "error: outputs: more than 1048576 values as JSON (the limit is passed at outputs.rows[1048575])");
    free(got);
    got = convert("{ blob = ('x'):rep(17 * 1024 * 1024) }");
    CHECK_STR(got, "error: outputs: larger than 16 MiB as JSON (the limit is passed at outputs.blob); "
                   "keep big data in files or tables, and return their names");
    free(got);
}

/* An allocator that fails once a budget of allocations is spent, as
 * SQLite's harness does: each conversion that fails must fail cleanly (the
 * leak checker of the sanitizer build sees anything left behind). */
typedef struct failing_alloc {
    long left; /* allocations that still succeed; < 0: no limit */
} failing_alloc;

static void *failing_allocator(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    failing_alloc *fa = ud;
    (void)old_size;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    if (fa->left == 0)
        return NULL;
    if (fa->left > 0)
        fa->left--;
    return realloc(ptr, new_size);
}

static void a_lua_error_halfway_fails_the_conversion_cleanly(void)
{
    int failures = 0, successes = 0;
    for (long budget = 0; budget < 400 && successes == 0; budget++) {
        failing_alloc fa = { -1 };
        lua_State *L = lua_newstate(failing_allocator, &fa);
        luaL_openlibs(L);
        CHECK(luaL_dostring(L, "local t = {} for i = 1, 40 do t['k' .. i] = { i, { x = 'v' .. i } } end "
                               "return { list = { t, t }, n = 1 }") == LUA_OK);
        fa.left = budget;
        cJSON *tree = jsonlua_from_lua(L, -1, "outputs");
        fa.left = -1;
        if (tree) {
            successes++;
            char *text = json_print_exact(tree, 0);
            CHECK_CONTAINS(text, "\"k40\":[40,{\"x\":\"v40\"}]");
            free(text);
            cJSON_Delete(tree);
        } else {
            failures++;
            CHECK_CONTAINS(err_last(), "outputs");
            CHECK_CONTAINS(err_last(), "cannot be converted to JSON: not enough memory");
        }
        CHECK(lua_gettop(L) == 1); /* the stack is as it was */
        lua_close(L);
    }
    CHECK(failures > 0 && successes == 1);
}

static int convert_inside_pcall(lua_State *L)
{
    cJSON *tree = jsonlua_from_lua(L, 1, "outputs");
    char *text = tree ? json_print_exact(tree, 0) : xasprintf("error: %s", err_last());
    cJSON_Delete(tree);
    lua_pushstring(L, text);
    free(text);
    return 1;
}

/* The conversion has a protected call of its own, and works inside one. */
static void conversion_works_inside_a_protected_call(void)
{
    lua_State *L = new_state();
    lua_pushcfunction(L, convert_inside_pcall);
    CHECK(luaL_dostring(L, "return { a = { 1, 2.5 } }") == LUA_OK);
    CHECK(lua_pcall(L, 1, 1, 0) == LUA_OK);
    CHECK_STR(lua_tostring(L, -1), "{\"a\":[1,2.5]}");
    lua_pop(L, 1);
    lua_pushcfunction(L, convert_inside_pcall);
    CHECK(luaL_dostring(L, "return { f = print }") == LUA_OK);
    CHECK(lua_pcall(L, 1, 1, 0) == LUA_OK);
    CHECK_STR(lua_tostring(L, -1), "error: outputs.f: a function cannot be saved as JSON");
    lua_close(L);
}

TEST_SUITE(jsonlua)
{
    REGISTER(plain_values_convert);
    REGISTER(a_function_is_refused_with_its_path);
    REGISTER(mixed_and_sparse_tables_are_refused);
    REGISTER(a_cycle_is_refused);
    REGISTER(nan_and_huge_integers_are_refused);
    REGISTER(json_round_trips_into_lua);
    REGISTER(numbers_print_so_they_read_back_exactly);
    REGISTER(ordinary_numbers_print_as_cjson_prints_them);
    REGISTER(any_double_reads_back_as_itself);
    REGISTER(numbers_come_back_into_lua_unchanged);
    REGISTER(tables_are_read_raw_and_no_metamethod_runs);
    REGISTER(a_key_with_a_nul_byte_is_refused_and_runs_nothing);
    REGISTER(the_byte_limit_is_the_exact_text_length);
    REGISTER(too_many_values_are_refused_by_path);
    REGISTER(a_lua_error_halfway_fails_the_conversion_cleanly);
    REGISTER(conversion_works_inside_a_protected_call);
}
