#include "faultinject.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct {
    long nth;
    long calls;
} cjson_plan;

static void *failing_cjson_malloc(size_t size)
{
    long n = ++cjson_plan.calls;
    if (cjson_plan.nth > 0 && n >= cjson_plan.nth)
        return NULL;
    return malloc(size);
}

void fi_cjson_fail_at(long nth)
{
    cjson_plan.nth = nth;
    cjson_plan.calls = 0;
    cJSON_Hooks hooks = { failing_cjson_malloc, free };
    cJSON_InitHooks(&hooks);
}

void fi_cjson_off(void)
{
    cJSON_InitHooks(NULL);
    cjson_plan.nth = 0;
}

long fi_cjson_calls(void)
{
    return cjson_plan.calls;
}

static struct {
    lua_Alloc wrapped;
    long nth;
    long calls;
} lua_plan;

/* Only what asks for more memory counts and can fail: frees and shrinks
 * always succeed, as Lua requires. */
static void *failing_lua_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    size_t old = ptr ? old_size : 0;
    if (new_size > old) {
        long n = ++lua_plan.calls;
        if (lua_plan.nth > 0 && n >= lua_plan.nth)
            return NULL;
    }
    return lua_plan.wrapped(ud, ptr, old_size, new_size);
}

void fi_lua_fail_at(lua_State *L, long nth)
{
    void *ud;
    lua_Alloc current = lua_getallocf(L, &ud);
    if (current != failing_lua_alloc)
        lua_plan.wrapped = current;
    lua_plan.nth = nth;
    lua_plan.calls = 0;
    lua_setallocf(L, failing_lua_alloc, ud);
}

void fi_lua_off(lua_State *L)
{
    void *ud;
    if (lua_getallocf(L, &ud) == failing_lua_alloc)
        lua_setallocf(L, lua_plan.wrapped, ud);
    lua_plan.nth = 0;
}

long fi_lua_calls(void)
{
    return lua_plan.calls;
}

int fi_in_child(int (*fn)(void *arg), void *arg, char *how, unsigned how_size)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(how, how_size, "cannot fork");
        return FI_CHILD_DIED;
    }
    if (pid == 0)
        exit(fn(arg)); /* exit, not _exit: the leak checker and gcov run */
    int status;
    while (waitpid(pid, &status, 0) < 0)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) <= 1)
        return WEXITSTATUS(status) == 0 ? FI_CHILD_OK : FI_CHILD_FAILED;
    if (WIFSIGNALED(status))
        snprintf(how, how_size, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(how, how_size, "exit %d", WEXITSTATUS(status));
    return FI_CHILD_DIED;
}
