#include "placeholder.h"

#include <lauxlib.h>
#include <string.h>

#define PLACEHOLDER "drctl placeholder" /* what "got ..." says in an error */

static void push_placeholder(lua_State *L, const char *path);

/* The path of the placeholder at idx, or NULL. */
static const char *path_of(lua_State *L, int idx)
{
    if (!luaL_testudata(L, idx, PLACEHOLDER))
        return NULL;
    lua_getiuservalue(L, idx, 1);
    const char *path = lua_tostring(L, -1);
    lua_pop(L, 1); /* the uservalue keeps the string alive */
    return path;
}

/* The first placeholder among the first two arguments (binary metamethods
 * get them in either order). */
static const char *operand_path(lua_State *L)
{
    const char *path = path_of(L, 1);
    return path ? path : path_of(L, 2);
}

/* What needs the value itself (a comparison, its items) is refused, so
 * that no text is made from a guess: the plan then says the confirmation
 * is computed at run time. */
static int known_at_run_time(lua_State *L)
{
    return luaL_error(L, "<%s> is known only at run time", operand_path(L));
}

static int placeholder_tostring(lua_State *L)
{
    lua_pushfstring(L, "<%s>", path_of(L, 1));
    return 1;
}

/* A string method called on a placeholder (name:lower()) gives the
 * placeholder back: what it stands for is still the same value. */
static int same_value(lua_State *L)
{
    lua_settop(L, 1);
    return 1;
}

static int is_string_method(const char *key)
{
    static const char *const methods[] = { "byte", "find", "format", "gmatch", "gsub", "len", "lower", "match",
                                           "rep", "reverse", "sub", "upper", NULL };
    for (const char *const *m = methods; *m; m++)
        if (!strcmp(key, *m))
            return 1;
    return 0;
}

static int placeholder_index(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING)
        return known_at_run_time(L); /* its items: how many is unknown */
    const char *key = lua_tostring(L, 2);
    if (is_string_method(key)) {
        lua_pushcfunction(L, same_value);
        return 1;
    }
    lua_pushfstring(L, "%s.%s", path_of(L, 1), key);
    push_placeholder(L, lua_tostring(L, -1));
    return 1;
}

static int placeholder_concat(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);
    luaL_tolstring(L, 2, NULL);
    lua_concat(L, 2);
    return 1;
}

static int placeholder_len(lua_State *L)
{
    lua_pushfstring(L, "number of %s", path_of(L, 1));
    push_placeholder(L, lua_tostring(L, -1));
    return 1;
}

/* Arithmetic and calls: the result is known no better than the operand. */
static int placeholder_same(lua_State *L)
{
    push_placeholder(L, operand_path(L));
    return 1;
}


static void push_metatable(lua_State *L)
{
    if (!luaL_newmetatable(L, PLACEHOLDER))
        return;
    static const luaL_Reg methods[] = {
        { "__index", placeholder_index },   { "__tostring", placeholder_tostring },
        { "__concat", placeholder_concat }, { "__len", placeholder_len },
        { "__add", placeholder_same },      { "__sub", placeholder_same },
        { "__mul", placeholder_same },      { "__div", placeholder_same },
        { "__mod", placeholder_same },      { "__pow", placeholder_same },
        { "__unm", placeholder_same },      { "__idiv", placeholder_same },
        { "__call", placeholder_same },     { "__lt", known_at_run_time },
        { "__le", known_at_run_time },      { "__pairs", known_at_run_time },
        { NULL, NULL },
    };
    luaL_setfuncs(L, methods, 0);
}

static void push_placeholder(lua_State *L, const char *path)
{
    lua_pushstring(L, path);
    lua_newuserdatauv(L, 0, 1);
    lua_rotate(L, -2, 1);
    lua_setiuservalue(L, -2, 1);
    push_metatable(L);
    lua_setmetatable(L, -2);
}

static int outputs_index(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING)
        return 0;
    push_placeholder(L, lua_tostring(L, 2));
    return 1;
}

void placeholder_push_outputs(lua_State *L)
{
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, outputs_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

int placeholder_to_text(lua_State *L, int idx)
{
    const char *path = path_of(L, idx);
    if (!path)
        return 0;
    idx = lua_absindex(L, idx);
    lua_pushfstring(L, "<%s>", path);
    lua_replace(L, idx);
    return 1;
}
