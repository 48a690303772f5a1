/* Sandbox escape attempts: each must be refused with a message that names
 * what was refused, and nothing may happen on the machine. */
#include "test.h"

#include "buf.h"
#include "drmod.h"
#include "err.h"
#include "sandbox.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <unistd.h>

static int no_event(void *ud, const char *kind, cJSON *data)
{
    (void)ud;
    (void)kind;
    cJSON_Delete(data);
    return 0;
}

static int no_confirm(void *ud, const char *summary, const char *challenge)
{
    (void)ud;
    (void)summary;
    (void)challenge;
    return DR_EREFUSED;
}

/* Runs code as a runbook chunk would run; "ok: <tostring of result>" or
 * "error: <message>". Caller frees. */
static char *eval_limited(const char *code, double timeout, size_t memory)
{
    sandbox *sb;
    sandbox_new(&sb, memory);
    sandbox_add_lib_dir(sb, test_tmpdir());
    dr_host host = { .event = no_event, .confirm = no_confirm };
    drmod_register(sb, &host);
    lua_State *L = sandbox_state(sb);
    char *out;
    sandbox_push_env(sb);
    if (luaL_loadbufferx(L, code, strlen(code), "=test", "t") != LUA_OK) {
        out = xasprintf("error: %s", lua_tostring(L, -1));
        sandbox_free(sb);
        return out;
    }
    lua_insert(L, -2);
    lua_setupvalue(L, -2, 1);
    char *error = NULL;
    if (sandbox_call(sb, 0, 1, timeout, &error, NULL) == 0) {
        out = xasprintf("ok: %s", luaL_tolstring(L, -1, NULL));
    } else {
        out = xasprintf("error: %s", error);
        free(error);
    }
    sandbox_free(sb);
    return out;
}

static char *eval(const char *code)
{
    return eval_limited(code, 5, 64u << 20);
}

#define CHECK_EVAL(code, expected)                                   \
    do {                                                             \
        char *got_ = eval(code);                                     \
        int ok_ = got_ && strstr(got_, expected) != NULL;            \
        if (!ok_)                                                    \
            test_fail(__FILE__, __LINE__, code " gives " expected, got_); \
        free(got_);                                                  \
        if (!ok_)                                                    \
            return;                                                  \
    } while (0)

static void io_is_refused(void)
{
    CHECK_EVAL("return io.open('/etc/passwd')", "error: test:1: 'io' is not available to runbooks");
}

static void os_execute_is_refused_and_runs_nothing(void)
{
    const char *marker = test_write_file("marker", "");
    unlink(marker);
    char *code = xasprintf("return os.execute('touch %s')", marker);
    char *got = eval(code);
    free(code);
    CHECK_CONTAINS(got, "os.execute is not available to runbooks");
    free(got);
    CHECK(access(marker, F_OK) != 0);
}

static void os_getenv_is_refused(void)
{
    CHECK_EVAL("return os.getenv('HOME')", "os.getenv is not available to runbooks: the environment reaches");
}

static void os_remove_and_exit_are_refused(void)
{
    CHECK_EVAL("return os.remove('/tmp/x')", "os.remove is not available");
    CHECK_EVAL("return os.exit(0)", "os.exit is not available");
}

static void the_allowed_os_functions_work(void)
{
    CHECK_EVAL("return type(os.time()) .. type(os.date('%Y')) .. type(os.clock())", "ok: numberstringnumber");
}

static void debug_is_refused(void)
{
    CHECK_EVAL("return debug.getregistry()", "'debug' is not available to runbooks");
}

static void package_loadlib_is_refused(void)
{
    CHECK_EVAL("return package.loadlib('libc.so.6', 'system')", "'package' is not available");
}

static void requiring_a_c_or_system_module_is_refused(void)
{
    CHECK_EVAL("return require 'io'", "module 'io' is not available to runbooks");
    CHECK_EVAL("return require 'socket.core'", "module 'socket.core' is not available to runbooks");
}

static void require_cannot_walk_out_of_lua_dirs(void)
{
    CHECK_EVAL("return require '../../etc/passwd'", "module names are letters");
    CHECK_EVAL("return require '/etc/passwd'", "module names are letters");
}

static void dofile_and_loadfile_are_refused(void)
{
    CHECK_EVAL("return dofile('/etc/passwd')", "'dofile' is not available");
    CHECK_EVAL("return loadfile('/etc/passwd')", "'loadfile' is not available");
}

static void string_dump_is_gone(void)
{
    CHECK_EVAL("return string.dump(function() end)", "string.dump is not available");
    CHECK_EVAL("return getmetatable('').__index.dump", "string.dump is not available");
}

static void binary_chunks_are_refused(void)
{
    CHECK_EVAL("local f, e = load('\\27LuaT\\0\\25\\147'); return e", "binary chunk");
    CHECK_EVAL("local f, e = load('return 1', 'x', 'b'); return e", "binary chunks are not allowed");
}

static void loaded_chunks_get_the_sandbox_not_the_real_globals(void)
{
    CHECK_EVAL("return load('return io')()", "'io' is not available");
    CHECK_EVAL("return tostring(rawget(_G, 'io')) .. tostring(rawget(_G, 'debug'))", "ok: nilnil");
}

static void a_lua_library_module_loads_from_lua_dirs(void)
{
    test_write_file("drctl/helper.lua", "local M = {} function M.twice(x) return 2 * x end return M\n");
    CHECK_EVAL("return require('drctl.helper').twice(21)", "ok: 42");
}

static void a_runaway_loop_stops_at_the_timeout_even_under_pcall(void)
{
    char *got = eval_limited("while true do pcall(function() while true do end end) end", 0.3, 64u << 20);
    CHECK_CONTAINS(got, "error: timed out after");
    free(got);
    got = eval_limited("coroutine.wrap(function() while true do end end)()", 0.3, 64u << 20);
    CHECK_CONTAINS(got, "error: timed out after");
    free(got);
}

static void a_memory_bomb_is_stopped_by_the_cap(void)
{
    char *got = eval_limited("local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end", 10, 32u << 20);
    CHECK_CONTAINS(got, "error: ran out of memory");
    free(got);
}

static void unknown_globals_raise(void)
{
    CHECK_EVAL("return undefined_thing + 1", "unknown global 'undefined_thing'");
}

static void dr_exec_runs_argv_without_a_shell(void)
{
    CHECK_EVAL("local dr = require 'dr'; local r = dr.exec({'echo', '$HOME;', 'id'}); return r.code .. ':' .. r.stdout",
               "ok: 0:$HOME; id");
    CHECK_EVAL("local dr = require 'dr'; return dr.exec({'sh', '-c', 'exit 7'}).code", "ok: 7");
    CHECK_EVAL("local dr = require 'dr'; return dr.exec({'cat'}, { stdin = 'piped' }).stdout", "ok: piped");
    CHECK_EVAL("local dr = require 'dr'; return dr.exec({'/nonexistent/tool'})", "cannot run '/nonexistent/tool'");
}

static void dr_exec_does_not_pass_drctl_secrets_to_children(void)
{
    setenv("NEON_API_KEY", "napi_secret_value", 1);
    char *got = eval("local dr = require 'dr'; return dr.exec({'env'}).stdout");
    unsetenv("NEON_API_KEY");
    CHECK(strstr(got, "napi_secret_value") == NULL);
    CHECK_CONTAINS(got, "PATH=");
    free(got);
    CHECK_EVAL("local dr = require 'dr'; return dr.exec({'env'}, { env = { PGAPPNAME = 'drctl' } }).stdout",
               "PGAPPNAME=drctl");
}

static void dr_exec_timeout_kills_the_child(void)
{
    CHECK_EVAL("local dr = require 'dr'; local r = dr.exec({'sleep', '10'}, { timeout = 0.2 }); return tostring(r.timed_out)",
               "ok: true");
}

static void dr_exec_timeout_applies_after_the_child_closes_its_outputs(void)
{
    CHECK_EVAL("local dr = require 'dr'; local r = dr.exec({'sh', '-c', 'exec >&- 2>&-; sleep 10'}, { timeout = 0.3 }); "
               "return tostring(r.timed_out)", "ok: true");
}

static void dr_confirm_refused_cannot_be_caught(void)
{
    CHECK_EVAL("local dr = require 'dr'; pcall(dr.confirm, { summary = 's', challenge = 'c' }); return 'escaped'",
               "error: a confirmation was refused");
}

static void dr_time_functions_agree(void)
{
    CHECK_EVAL("local dr = require 'dr'; return dr.time('2026-01-11T14:30:00+01:00')", "ok: 1768138200");
    CHECK_EVAL("local dr = require 'dr'; return dr.format_time(dr.time('2026-01-11 14:30:00'))", "ok: 2026-01-11T14:30:00Z");
    CHECK_EVAL("local dr = require 'dr'; return dr.duration('1h30m')", "ok: 5400");
    CHECK_EVAL("local dr = require 'dr'; return dr.time('nope')", "is not a valid time");
}

static void json_module_round_trips(void)
{
    CHECK_EVAL("local json = require 'json'; return json.decode(json.encode({ a = { 1, 2 } })).a[2]", "ok: 2");
    CHECK_EVAL("local json = require 'json'; local v, e = json.decode('{bad'); return e", "invalid JSON");
}

void register_sandbox_tests(void)
{
    REGISTER(io_is_refused);
    REGISTER(os_execute_is_refused_and_runs_nothing);
    REGISTER(os_getenv_is_refused);
    REGISTER(os_remove_and_exit_are_refused);
    REGISTER(the_allowed_os_functions_work);
    REGISTER(debug_is_refused);
    REGISTER(package_loadlib_is_refused);
    REGISTER(requiring_a_c_or_system_module_is_refused);
    REGISTER(require_cannot_walk_out_of_lua_dirs);
    REGISTER(dofile_and_loadfile_are_refused);
    REGISTER(string_dump_is_gone);
    REGISTER(binary_chunks_are_refused);
    REGISTER(loaded_chunks_get_the_sandbox_not_the_real_globals);
    REGISTER(a_lua_library_module_loads_from_lua_dirs);
    REGISTER(a_runaway_loop_stops_at_the_timeout_even_under_pcall);
    REGISTER(a_memory_bomb_is_stopped_by_the_cap);
    REGISTER(unknown_globals_raise);
    REGISTER(dr_exec_runs_argv_without_a_shell);
    REGISTER(dr_exec_does_not_pass_drctl_secrets_to_children);
    REGISTER(dr_exec_timeout_kills_the_child);
    REGISTER(dr_exec_timeout_applies_after_the_child_closes_its_outputs);
    REGISTER(dr_confirm_refused_cannot_be_caught);
    REGISTER(dr_time_functions_agree);
    REGISTER(json_module_round_trips);
}
