/* Sandbox escape attempts: each must be refused with a message that names
 * what was refused, and nothing may happen on the machine. */
#include "test.h"

#include "luaeval.h"

#include "buf.h"
#include "drmod.h"
#include "err.h"
#include "sandbox.h"
#include "signals.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <sys/wait.h>
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
    char *out = test_eval_in(sb, code, timeout);
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
    CHECK_EVAL("return ('').dump", "string.dump is not available");
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

/* Finalizers run with hooks off: a loop in one could not be stopped by any
 * deadline or signal, and would hang even the closing of the state. */
static void a_metatable_with_gc_is_refused(void)
{
    CHECK_EVAL("setmetatable({}, { __gc = function() while true do end end })",
               "error: test:1: setmetatable: a metatable with a __gc field is refused");
    CHECK_EVAL("setmetatable({}, { __gc = false })", "a metatable with a __gc field is refused");
    CHECK_EVAL("local ok, e = pcall(setmetatable, {}, { __gc = true }); return e", "__gc field is refused");
    CHECK_EVAL("return load('return setmetatable({}, { __gc = print })')()", "__gc field is refused");
    CHECK_EVAL("return coroutine.wrap(function() return setmetatable({}, { __gc = print }) end)()",
               "__gc field is refused");
}

/* Lua takes note of __gc only when the metatable is set, so a field added
 * afterwards must never run. */
static void a_gc_field_added_later_never_runs(void)
{
    CHECK_EVAL("local ran = false\n"
               "local mt = {}\n"
               "local t = setmetatable({}, mt)\n"
               "mt.__gc = function() ran = true end\n"
               "rawset(getmetatable(t), '__gc', function() ran = true end)\n"
               "t = nil; collectgarbage(); collectgarbage()\n"
               "return tostring(ran)", "ok: false");
    CHECK_EVAL("local mt = {}; setmetatable({}, mt); mt.__gc = print; return setmetatable({}, mt)",
               "__gc field is refused");
    /* the sandbox's own metatables: a finalizer put there never runs
     * either, or closing the state below would hang */
    CHECK_EVAL("local loop = function() while true do end end\n"
               "getmetatable(_G).__gc = loop; getmetatable(string).__gc = loop; getmetatable(os).__gc = loop\n"
               "collectgarbage(); return 'closed'", "ok: closed");
}

static void setmetatable_still_works_and_respects_protection(void)
{
    CHECK_EVAL("local t = setmetatable({}, { __index = function(_, k) return k .. '!' end }); return t.hi", "ok: hi!");
    CHECK_EVAL("local t = setmetatable({}, { __metatable = 'mine' }); return setmetatable(t, {})",
               "cannot change a protected metatable");
    CHECK_EVAL("return setmetatable({}, nil) ~= nil", "ok: true");
    CHECK_EVAL("return setmetatable('x', {})", "bad argument #1 to 'setmetatable'");
}

/* The string metatable is shared with the engine: a __tostring or __index
 * put there would run wherever the engine turns a value into text. */
static void the_string_metatable_is_locked(void)
{
    CHECK_EVAL("getmetatable('').__index = function() return 1 end", "the string metatable is locked");
    CHECK_EVAL("getmetatable('').__tostring = function() while true do end end", "the string metatable is locked");
    CHECK_EVAL("getmetatable('').__gc = print", "the string metatable is locked");
    CHECK_EVAL("return getmetatable('').__index", "the string metatable is locked");
    CHECK_EVAL("setmetatable(getmetatable(''), nil)", "cannot change a protected metatable");
    CHECK_EVAL("return getmetatable(getmetatable(''))", "ok: locked");
    CHECK_EVAL("rawset(getmetatable(''), '__index', function() return 'hijacked' end)\n"
               "rawset(getmetatable(''), '__tostring', function() return 'hijacked' end)\n"
               "return ('a'):upper() .. tostring('b')", "ok: Ab");
}

static void an_error_object_is_shown_by_its_tostring(void)
{
    CHECK_EVAL("error(setmetatable({}, { __tostring = function() return 'custom failure' end }))",
               "error: custom failure");
    CHECK_EVAL("error({ message = 'structured', code = 7 })", "error: structured {\"code\":7}");
}

/* Turning an error into text runs the runbook's __tostring: protected, and
 * under a deadline of its own. */
static void an_error_object_whose_tostring_loops_or_fails_is_contained(void)
{
    CHECK_EVAL("error(setmetatable({}, { __tostring = function() while true do end end }))",
               "error: (an error object that cannot be shown: turning it into text failed: it did not "
               "finish within 2s)");
    CHECK_EVAL("error(setmetatable({}, { __tostring = function() error('boom') end }))",
               "turning it into text failed: test:1: boom");
    CHECK_EVAL("error(setmetatable({}, { __tostring = function() return {} end }))",
               "turning it into text failed: '__tostring' must return a string");
    CHECK_EVAL("error(setmetatable({}, { __tostring = function() return string.rep('x', 1 << 30) end }))",
               "turning it into text failed: it ran out of memory");
}

/* An error table is converted raw: its __index never runs. */
static void an_error_table_with_a_hostile_index_is_shown_raw(void)
{
    CHECK_EVAL("error(setmetatable({ message = 'plain' }, { __index = function() while true do end end }))",
               "error: plain");
    CHECK_EVAL("error(setmetatable({ message = 'plain' }, { __index = function() error('x') end }))",
               "error: plain");
}

/* An error outside every protected call would make Lua abort() silently:
 * the panic handler says what happened and exits with a status of its own. */
static void an_unprotected_error_exits_with_a_clear_message(void)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        sandbox *sb;
        sandbox_new(&sb, 16u << 20);
        lua_State *L = sandbox_state(sb);
        lua_pushliteral(L, "out of every pcall");
        lua_error(L);
        _exit(0);
    }
    close(fds[1]);
    char text[1024] = "";
    size_t len = 0;
    ssize_t n;
    while (len < sizeof text - 1 && (n = read(fds[0], text + len, sizeof text - 1 - len)) > 0)
        len += (size_t)n;
    text[len] = '\0';
    close(fds[0]);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    /* Under valgrind (make valgrind) the child's exit, with its Lua state
     * held, is a leak valgrind turns into its own exit status. */
    const char *preload = getenv("LD_PRELOAD");
    if (!preload || !strstr(preload, "vgpreload"))
        CHECK(WEXITSTATUS(status) == SIGNALS_EXIT_INTERNAL_ERROR);
    CHECK_CONTAINS(text, "a Lua error outside any protected call: out of every pcall");
}

TEST_SUITE(sandbox)
{
    REGISTER(a_metatable_with_gc_is_refused);
    REGISTER(a_gc_field_added_later_never_runs);
    REGISTER(setmetatable_still_works_and_respects_protection);
    REGISTER(the_string_metatable_is_locked);
    REGISTER(an_error_object_is_shown_by_its_tostring);
    REGISTER(an_error_object_whose_tostring_loops_or_fails_is_contained);
    REGISTER(an_error_table_with_a_hostile_index_is_shown_raw);
    REGISTER(an_unprotected_error_exits_with_a_clear_message);
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
