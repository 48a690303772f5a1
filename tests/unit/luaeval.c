#include "luaeval.h"

#include "buf.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

char *test_eval_in(sandbox *sb, const char *code, double timeout)
{
    lua_State *L = sandbox_state(sb);
    sandbox_push_env(sb);
    if (luaL_loadbufferx(L, code, strlen(code), "=test", "t") != LUA_OK) {
        char *out = xasprintf("error: %s", lua_tostring(L, -1));
        lua_pop(L, 2);
        return out;
    }
    lua_insert(L, -2);
    lua_setupvalue(L, -2, 1); /* the chunk's _ENV: the sandbox's environment */
    char *error = NULL, *out;
    if (sandbox_call(&error, NULL, sb, 0, 1, timeout) == 0) {
        out = xasprintf("ok: %s", luaL_tolstring(L, -1, NULL));
        lua_pop(L, 2);
    } else {
        out = xasprintf("error: %s", error);
        free(error);
    }
    return out;
}
