/* Allocation faults for the unit tests, SQLite style: the Nth allocation
 * and every later one fail, for N = 1, 2, ... until the operation no longer
 * meets one. Two allocators can fail: cJSON's (cJSON_InitHooks) and a Lua
 * state's (its allocator wrapped, its userdata kept, so that the sandbox
 * still finds itself from the state). xmalloc aborts by design and is not
 * made to fail here. */
#ifndef DRCTL_FAULTINJECT_H
#define DRCTL_FAULTINJECT_H

#include <lua.h>

/* cJSON's nth malloc from now and every later one return NULL (0: none). */
void fi_cjson_fail_at(long nth);
/* cJSON's own allocator again. */
void fi_cjson_off(void);
/* cJSON mallocs since the last fi_cjson_fail_at. */
long fi_cjson_calls(void);

/* The same for the Lua state L (one state at a time). */
void fi_lua_fail_at(lua_State *L, long nth);
void fi_lua_off(lua_State *L);
long fi_lua_calls(void);

/* How a forked child ended, for the tests that run an operation where a
 * failure might end the process: fn's result is the exit status,
 * FI_CHILD_OK for 0, FI_CHILD_FAILED for 1 (a clean error), FI_CHILD_DIED
 * for anything else, with *how saying what ("exit 2", "killed by ..."). */
enum { FI_CHILD_OK, FI_CHILD_FAILED, FI_CHILD_DIED };
int fi_in_child(int (*fn)(void *arg), void *arg, char *how, unsigned how_size);

#endif
