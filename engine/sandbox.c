#include "sandbox.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "signals.h"
#include "timefmt.h"

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lualib.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonlua.h"
#include "jsontext.h"

#define HOOK_EVERY_INSTRUCTIONS 1000

/* How long turning an error object into text may take. It has its own
 * limit, not what is left of the call's: the error of a step that failed
 * just before its deadline must still be shown, and a __tostring that does
 * not loop needs far less than this. */
#define ERROR_TEXT_SECONDS 2.0

struct sandbox {
    lua_State *L;
    size_t memory_used;
    size_t memory_limit;
    double deadline;          /* monotonic seconds; 0 when none */
    sandbox_abort abort_reason;
    char **lib_dirs;
    size_t lib_dir_count;
    char *traceback;          /* of the last error, set by the message handler */
};

/* Registry keys: the addresses are unique, their values never read. */
static const char key_sentinel = 0;
static const char key_preload = 0;
static const char key_loaded = 0;
static const char key_print = 0;
static const char key_safe = 0;   /* table of the wrapped pcall, xpcall, resume */

static void *sandbox_alloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    sandbox *sb = ud;
    size_t old = ptr ? old_size : 0;
    if (new_size == 0) {
        free(ptr);
        sb->memory_used -= old;
        return NULL;
    }
    if (new_size > old && sb->memory_used + (new_size - old) > sb->memory_limit)
        return NULL;
    void *p = realloc(ptr, new_size);
    if (p)
        sb->memory_used = sb->memory_used - old + new_size;
    return p;
}

sandbox *sandbox_from_state(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

lua_State *sandbox_state(sandbox *sb)
{
    return sb->L;
}

size_t sandbox_memory_used(sandbox *sb)
{
    return sb->memory_used;
}

int sandbox_raise_abort(lua_State *L, sandbox_abort reason)
{
    sandbox *sb = sandbox_from_state(L);
    if (sb->abort_reason == SANDBOX_ABORT_NONE)
        sb->abort_reason = reason;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_sentinel);
    return lua_error(L);
}

void sandbox_check_abort(lua_State *L)
{
    sandbox *sb = sandbox_from_state(L);
    if (sb->abort_reason != SANDBOX_ABORT_NONE)
        sandbox_raise_abort(L, sb->abort_reason);
    if (signals_pending())
        sandbox_raise_abort(L, SANDBOX_ABORT_INTERRUPT);
    if (sb->deadline > 0 && timefmt_monotonic() > sb->deadline)
        sandbox_raise_abort(L, SANDBOX_ABORT_TIMEOUT);
}

double sandbox_time_left(sandbox *sb)
{
    if (sb->deadline <= 0)
        return -1;
    double left = sb->deadline - timefmt_monotonic();
    return left > 0 ? left : 0;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    sandbox_check_abort(L);
}

/* ---- the global environment ------------------------------------------ */

static const char *refusal_hint(const char *name)
{
    static const struct {
        const char *name, *hint;
    } hints[] = {
        { "io", "runbooks have no file access; act through dr.exec and the engine modules" },
        { "debug", "the debug library could break out of the sandbox" },
        { "package", "modules come through require: engine modules and lua/ only" },
        { "dofile", "files are loaded through require from lua/ only" },
        { "loadfile", "files are loaded through require from lua/ only" },
        { "loadstring", "use load(text) (text chunks only)" },
        { "getenv", "the environment reaches a runbook only through params" },
        { "execute", "run programs with dr.exec(argv), which takes no shell" },
        { "remove", "runbooks have no file access" },
        { "rename", "runbooks have no file access" },
        { "exit", "fail a step with dr.fail(message)" },
        { "tmpname", "runbooks have no file access" },
        { "setlocale", "the locale is fixed by the engine" },
        { "dump", "binary chunks are not allowed in runbooks" },
    };
    for (size_t i = 0; i < sizeof hints / sizeof *hints; i++)
        if (strcmp(hints[i].name, name) == 0)
            return hints[i].hint;
    return NULL;
}

/* __index of a strict table: upvalue 1 is the table's name in messages. */
static int strict_index(lua_State *L)
{
    const char *owner = lua_tostring(L, lua_upvalueindex(1));
    const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
    const char *hint = refusal_hint(name);
    if (owner[0])
        return luaL_error(L, "%s.%s is not available to runbooks%s%s", owner, name,
                          hint ? ": " : "", hint ? hint : "");
    if (hint)
        return luaL_error(L, "'%s' is not available to runbooks: %s", name, hint);
    return luaL_error(L, "unknown global '%s' (declare it local, or check its spelling)", name);
}

static void set_strict(lua_State *L, int idx, const char *owner)
{
    idx = lua_absindex(L, idx);
    lua_createtable(L, 0, 1);
    lua_pushstring(L, owner);
    lua_pushcclosure(L, strict_index, 1);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, idx);
}

/* setmetatable as in Lua, but a metatable with a __gc field is refused:
 * Lua runs finalizers with hooks turned off, so a finalizer that loops
 * cannot be stopped by any deadline or signal, and it would run even in
 * `drctl list`, or as the state is closed. Lua only takes note of __gc when
 * the metatable is set, so a field added later is never called, and any
 * value (false included) marks the object: hence the raw test for
 * presence. */
static int safe_setmetatable(lua_State *L)
{
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    if (t == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        int has_gc = lua_rawget(L, 2) != LUA_TNIL;
        lua_pop(L, 1);
        if (has_gc)
            return luaL_error(L, "setmetatable: a metatable with a __gc field is refused: finalizers run "
                              "where no deadline or signal can stop them; release things with a <close> "
                              "variable or an `always` step instead");
    }
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

static int refuse_string_metatable(lua_State *L)
{
    return luaL_error(L, "the string metatable is locked: runbooks cannot read or change it "
                      "(string methods come from the string library)");
}

/* The metatable of strings is shared by every string in the state, the
 * engine's own included, and its __tostring or __index would run wherever
 * the engine turns a value into text. getmetatable("") returns this locked
 * stand-in instead: reading or writing a field of it raises. */
static void lock_string_metatable(lua_State *L)
{
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_createtable(L, 0, 0);
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, refuse_string_metatable);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, refuse_string_metatable);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
}

/* load(chunk [, chunkname [, mode [, env]]]) in text mode only; without env
 * the chunk gets a fresh sandbox environment, never the real globals. */
static int safe_load(lua_State *L)
{
    size_t len;
    if (lua_type(L, 1) != LUA_TSTRING) {
        lua_pushnil(L);
        lua_pushstring(L, "load: runbooks may load text chunks given as strings only");
        return 2;
    }
    const char *text = lua_tolstring(L, 1, &len);
    const char *chunkname = luaL_optstring(L, 2, "=(load)");
    const char *mode = luaL_optstring(L, 3, "t");
    if (strcmp(mode, "t") != 0) {
        lua_pushnil(L);
        lua_pushstring(L, "load: binary chunks are not allowed in runbooks (mode must be \"t\")");
        return 2;
    }
    int has_env = !lua_isnoneornil(L, 4);
    if (luaL_loadbufferx(L, text, len, chunkname, "t") != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (has_env)
        lua_pushvalue(L, 4);
    else
        sandbox_push_env(sandbox_from_state(L));
    lua_setupvalue(L, -2, 1);
    return 1;
}

static void copy_fields(lua_State *L, int from, const char *const *names)
{
    for (; *names; names++) {
        lua_getfield(L, from, *names);
        lua_setfield(L, -2, *names);
    }
}

static int default_print(lua_State *L)
{
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++)
        fprintf(stderr, "%s%s", i > 1 ? "\t" : "", luaL_tolstring(L, i, NULL));
    fputc('\n', stderr);
    return 0;
}

static int sandbox_require(lua_State *L);

void sandbox_push_env(sandbox *sb)
{
    static const char *const base_names[] = {
        "assert", "error", "ipairs", "next", "pairs", "select", "tonumber", "tostring", "type",
        "setmetatable", "getmetatable", "rawequal", "rawget", "rawset", "rawlen",
        "collectgarbage", "_VERSION", "string", "table", "math", "utf8", NULL,
    };
    static const char *const coroutine_names[] = {
        "create", "isyieldable", "running", "status", "wrap", "yield", "close", NULL,
    };
    static const char *const os_names[] = { "time", "date", "clock", NULL };
    lua_State *L = sb->L;
    luaL_checkstack(L, 8, "sandbox environment");
    lua_createtable(L, 0, 32);
    lua_pushglobaltable(L);
    int globals = lua_gettop(L);
    lua_pushvalue(L, -2);
    copy_fields(L, globals, base_names);
    lua_pop(L, 1);

    lua_getfield(L, globals, "coroutine");
    int real_coroutine = lua_gettop(L);
    lua_createtable(L, 0, 8);
    copy_fields(L, real_coroutine, coroutine_names);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_safe);
    lua_getfield(L, -1, "resume");
    lua_setfield(L, -3, "resume");
    lua_pop(L, 1);
    lua_setfield(L, -4, "coroutine");
    lua_pop(L, 1);

    lua_getfield(L, globals, "os");
    int real_os = lua_gettop(L);
    lua_createtable(L, 0, 3);
    copy_fields(L, real_os, os_names);
    set_strict(L, -1, "os");
    lua_setfield(L, -4, "os");
    lua_pop(L, 2); /* real os, globals */

    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_safe);
    lua_getfield(L, -1, "pcall");
    lua_setfield(L, -3, "pcall");
    lua_getfield(L, -1, "xpcall");
    lua_setfield(L, -3, "xpcall");
    lua_pop(L, 1);

    lua_pushcfunction(L, safe_load);
    lua_setfield(L, -2, "load");
    lua_pushcfunction(L, sandbox_require);
    lua_setfield(L, -2, "require");
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &key_print) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        lua_pushcfunction(L, default_print);
    }
    lua_setfield(L, -2, "print");
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
    set_strict(L, -1, "");
}

/* ---- require ---------------------------------------------------------- */

static int valid_module_name(const char *name)
{
    if (!*name || *name == '.')
        return 0;
    for (const char *p = name; *p; p++) {
        if (*p == '.' && (p[1] == '.' || p[1] == '\0'))
            return 0;
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
            return 0;
    }
    return 1;
}

static int sandbox_require(lua_State *L)
{
    sandbox *sb = sandbox_from_state(L);
    const char *name = luaL_checkstring(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_loaded);
    if (lua_getfield(L, -1, name) != LUA_TNIL)
        return 1;
    lua_pop(L, 1);
    int loaded = lua_gettop(L);

    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_preload);
    if (lua_getfield(L, -1, name) == LUA_TFUNCTION) {
        lua_call(L, 0, 1);
    } else {
        lua_pop(L, 2);
        if (!valid_module_name(name))
            return luaL_error(L, "require '%s': module names are letters, digits, '_', '-' and dots", name);
        buf tried = BUF_INIT;
        char *path = NULL;
        for (size_t i = 0; i < sb->lib_dir_count && !path; i++) {
            char *candidate = xasprintf("%s/%s.lua", sb->lib_dirs[i], name);
            for (char *p = candidate + strlen(sb->lib_dirs[i]) + 1; *p; p++)
                if (*p == '.' && strcmp(p, ".lua") != 0)
                    *p = '/';
            if (fsio_exists(candidate))
                path = candidate;
            else {
                buf_printf(&tried, "%s%s", tried.len ? ", " : "", candidate);
                free(candidate);
            }
        }
        if (!path) {
            lua_pushfstring(L, "module '%s' is not available to runbooks: engine modules are "
                            "dr, json, neon, pg, dump, files and drill, and library modules are looked up as %s",
                            name, tried.len ? buf_cstr(&tried) : "(no lua/ folder found)");
            buf_dispose(&tried);
            return lua_error(L);
        }
        buf_dispose(&tried);
        sandbox_push_env(sb);
        int rc = sandbox_load_file(sb, path);
        free(path);
        if (rc != 0)
            return luaL_error(L, "%s", err_last());
        lua_pushstring(L, name);
        lua_call(L, 1, 1);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, loaded, name);
    return 1;
}

void sandbox_add_module(sandbox *sb, const char *name, lua_CFunction opener, void *upvalue)
{
    lua_State *L = sb->L;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_preload);
    lua_pushlightuserdata(L, upvalue);
    lua_pushcclosure(L, opener, 1);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

void sandbox_set_print(sandbox *sb, lua_CFunction print, void *upvalue)
{
    lua_pushlightuserdata(sb->L, upvalue);
    lua_pushcclosure(sb->L, print, 1);
    lua_rawsetp(sb->L, LUA_REGISTRYINDEX, &key_print);
}

void sandbox_add_lib_dir(sandbox *sb, const char *dir)
{
    for (size_t i = 0; i < sb->lib_dir_count; i++)
        if (strcmp(sb->lib_dirs[i], dir) == 0)
            return;
    sb->lib_dirs = xrealloc(sb->lib_dirs, (sb->lib_dir_count + 1) * sizeof *sb->lib_dirs);
    sb->lib_dirs[sb->lib_dir_count++] = xstrdup(dir);
}

int sandbox_load_file(sandbox *sb, const char *path)
{
    lua_State *L = sb->L;
    char *text;
    size_t len;
    if (fsio_read_file(&text, &len, path) != 0) {
        lua_pop(L, 1);
        return DR_EUSAGE;
    }
    char *chunkname = xasprintf("@%s", path);
    int status = luaL_loadbufferx(L, text, len, chunkname, "t");
    free(chunkname);
    free(text);
    if (status != LUA_OK) {
        err_set(DR_EUSAGE, "%s", lua_tostring(L, -1));
        lua_pop(L, 2);
        return DR_EUSAGE;
    }
    lua_insert(L, -2);
    lua_setupvalue(L, -2, 1);
    return 0;
}

/* ---- protected calls -------------------------------------------------- */

static int message_handler(lua_State *L)
{
    sandbox *sb = sandbox_from_state(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_sentinel);
    int is_abort = lua_rawequal(L, 1, -1);
    lua_pop(L, 1);
    if (!is_abort) {
        luaL_traceback(L, L, NULL, 1);
        free(sb->traceback);
        sb->traceback = xstrdup(lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    return 1;
}

/* The text of an error value: strings as they are; tables (structured
 * errors such as {status=, code=, message=}) by their __tostring when they
 * have one, otherwise by their message, with the other fields after it. */
static char *error_text(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TTABLE && luaL_getmetafield(L, idx, "__tostring") == LUA_TNIL) {
        cJSON *detail = jsonlua_from_lua(L, idx, "error");
        cJSON *message = cJSON_GetObjectItemCaseSensitive(detail, "message");
        char *text;
        if (cJSON_IsString(message)) {
            char *message_text = xstrdup(message->valuestring);
            cJSON_DeleteItemFromObjectCaseSensitive(detail, "message");
            char *rest = cJSON_GetArraySize(detail) ? json_print_exact(detail, 0) : NULL;
            text = rest ? xasprintf("%s %s", message_text, rest) : xstrdup(message_text);
            free(rest);
            free(message_text);
        } else if (detail) {
            char *json = json_print_exact(detail, 0);
            text = xstrdup(json);
            free(json);
        } else {
            text = xasprintf("(an error table that cannot be shown: %s)", err_last());
        }
        cJSON_Delete(detail);
        return text;
    }
    if (lua_type(L, idx) == LUA_TTABLE)
        lua_pop(L, 1); /* the __tostring found above */
    const char *s = luaL_tolstring(L, idx, NULL);
    char *text = xstrdup(s);
    lua_pop(L, 1);
    return text;
}

/* error_text inside a protected call: arguments are where the text goes
 * (a light userdata) and the error value. The text is set only once every
 * Lua call is over, so an error halfway leaks nothing. */
static int error_text_call(lua_State *L)
{
    char **out = lua_touserdata(L, 1);
    *out = error_text(L, 2);
    return 0;
}

/* What a call is, for the watchdog's message: the runbook file and line of
 * the first Lua function from idx to the stack top (a wrapper in C, such as
 * the runner's, is given the runbook's function as an argument). */
static void describe_function(lua_State *L, int idx, char *what, size_t size)
{
    snprintf(what, size, "a runbook's Lua code");
    for (int i = idx; i <= lua_gettop(L); i++) {
        if (lua_type(L, i) != LUA_TFUNCTION || lua_iscfunction(L, i))
            continue;
        lua_Debug ar;
        lua_pushvalue(L, i);
        lua_getinfo(L, ">S", &ar); /* pops the copy */
        if (strcmp(ar.what, "main") == 0)
            snprintf(what, size, "the top-level code of %s", ar.short_src);
        else
            snprintf(what, size, "the Lua function at %s:%d", ar.short_src, ar.linedefined);
        return;
    }
}

static void set_deadline(sandbox *sb, double timeout)
{
    sb->abort_reason = SANDBOX_ABORT_NONE;
    sb->deadline = timeout > 0 ? timefmt_monotonic() + timeout : 0;
}

/* The text of the error value at idx, never raising: a __tostring or a
 * conversion that loops is stopped by a deadline of its own, one that
 * fails is named. */
static char *error_text_safely(sandbox *sb, int idx)
{
    lua_State *L = sb->L;
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING) /* the string metatable is locked: no metamethod */
        return xstrdup(lua_tostring(L, idx));
    if (!lua_checkstack(L, 4))
        return xstrdup("(an error object that cannot be shown: the Lua stack is full)");
    char *text = NULL;
    lua_pushcfunction(L, error_text_call);
    lua_pushlightuserdata(L, &text);
    lua_pushvalue(L, idx);
    set_deadline(sb, ERROR_TEXT_SECONDS);
    signals_watch previous;
    signals_watch_begin(&previous, sb->deadline + SIGNALS_HARD_STOP_GRACE_SECONDS,
                        "turning a runbook's error into text");
    int status = lua_pcall(L, 2, 0, 0);
    signals_watch_end(&previous);
    sandbox_abort reason = sb->abort_reason;
    set_deadline(sb, 0);
    if (status == LUA_OK)
        return text;
    const char *why = reason == SANDBOX_ABORT_TIMEOUT     ? "it did not finish within 2s"
                      : reason == SANDBOX_ABORT_INTERRUPT ? "a signal interrupted it"
                      : status == LUA_ERRMEM              ? "it ran out of memory"
                      : lua_type(L, -1) == LUA_TSTRING    ? lua_tostring(L, -1)
                                                          : "it raised an error";
    text = xasprintf("(an error object that cannot be shown: turning it into text failed: %s)", why);
    lua_pop(L, 1);
    return text;
}

int sandbox_call(char **error, char **traceback, sandbox *sb, int nargs, int nresults, double timeout)
{
    lua_State *L = sb->L;
    *error = NULL;
    if (traceback)
        *traceback = NULL;
    int base = lua_gettop(L) - nargs;
    char what[128];
    describe_function(L, base, what, sizeof what);
    lua_pushcfunction(L, message_handler);
    lua_insert(L, base);
    set_deadline(sb, timeout);
    signals_watch previous;
    signals_watch_begin(&previous, timeout > 0 ? sb->deadline + SIGNALS_HARD_STOP_GRACE_SECONDS : 0, what);
    int status = lua_pcall(L, nargs, nresults, base);
    signals_watch_end(&previous);
    sandbox_abort abort_reason = sb->abort_reason;
    set_deadline(sb, 0);
    lua_remove(L, base);
    if (status == LUA_OK)
        return 0;
    int rc = DR_EFAIL;
    if (abort_reason == SANDBOX_ABORT_INTERRUPT) {
        rc = DR_EINTR;
        *error = xstrdup("interrupted by a signal");
    } else if (abort_reason == SANDBOX_ABORT_REFUSED) {
        rc = DR_EREFUSED;
        *error = xstrdup("a confirmation was refused");
    } else if (abort_reason == SANDBOX_ABORT_TIMEOUT) {
        char limit[32];
        timefmt_format_duration(limit, sizeof limit, timeout);
        *error = xasprintf("timed out after %s", limit);
    } else if (status == LUA_ERRMEM) {
        *error = xasprintf("ran out of memory (runbooks may use at most %zu MiB)",
                           sb->memory_limit >> 20);
    } else {
        *error = error_text_safely(sb, -1);
        if (traceback && sb->traceback)
            *traceback = xstrdup(sb->traceback);
    }
    lua_pop(L, 1);
    free(sb->traceback);
    sb->traceback = NULL;
    return rc;
}

/* ---- construction ------------------------------------------------------ */

/* An error outside every protected call: Lua would abort() with no word.
 * Say what happened, let the run record it, and exit with a status of its
 * own. */
static int on_panic(lua_State *L)
{
    const char *message = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)";
    char why[512];
    snprintf(why, sizeof why, "internal error: a Lua error outside any protected call: %s", message);
    signals_hard_stop(why, SIGNALS_EXIT_INTERNAL_ERROR);
}

/* Wrappers that let pcall, xpcall and coroutine.resume catch every error
 * but the abort sentinel, which they raise again. */
static const char safe_wrappers[] =
    "local real_pcall, real_xpcall, real_resume, sentinel = ...\n"
    "local error, select = error, select\n"
    "local function pass(ok, ...)\n"
    "  if not ok and select('#', ...) > 0 and (...) == sentinel then error(sentinel, 0) end\n"
    "  return ok, ...\n"
    "end\n"
    "return {\n"
    "  pcall = function(f, ...) return pass(real_pcall(f, ...)) end,\n"
    "  xpcall = function(f, handler, ...)\n"
    "    return pass(real_xpcall(f, function(e)\n"
    "      if e == sentinel then return e end\n"
    "      return handler(e)\n"
    "    end, ...))\n"
    "  end,\n"
    "  resume = function(co, ...) return pass(real_resume(co, ...)) end,\n"
    "}\n";

static void open_allowed_libraries(lua_State *L)
{
    static const luaL_Reg libs[] = {
        { LUA_GNAME, luaopen_base },       { LUA_TABLIBNAME, luaopen_table },
        { LUA_STRLIBNAME, luaopen_string }, { LUA_MATHLIBNAME, luaopen_math },
        { LUA_UTF8LIBNAME, luaopen_utf8 },  { LUA_COLIBNAME, luaopen_coroutine },
        { LUA_OSLIBNAME, luaopen_os },      { NULL, NULL },
    };
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    /* The real globals are never a runbook's environment, but strip them
     * too, so nothing reachable by accident can load files or bytecode. */
    static const char *const removed[] = { "dofile", "loadfile", "load", NULL };
    for (const char *const *name = removed; *name; name++) {
        lua_pushnil(L);
        lua_setglobal(L, *name);
    }
    lua_pushcfunction(L, safe_setmetatable);
    lua_setglobal(L, "setmetatable");
    lock_string_metatable(L);
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    set_strict(L, -1, "string");
    lua_pop(L, 1);
}

static void install_safe_wrappers(lua_State *L)
{
    if (luaL_loadbufferx(L, safe_wrappers, sizeof safe_wrappers - 1, "=sandbox", "t") != LUA_OK)
        abort();
    lua_getglobal(L, "pcall");
    lua_getglobal(L, "xpcall");
    lua_getglobal(L, "coroutine");
    lua_getfield(L, -1, "resume");
    lua_remove(L, -2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_sentinel);
    lua_call(L, 4, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_safe);
}

int sandbox_new(sandbox **out, size_t memory_limit)
{
    sandbox *sb = xcalloc(1, sizeof *sb);
    sb->memory_limit = memory_limit;
    sb->L = lua_newstate(sandbox_alloc, sb);
    if (!sb->L) {
        free(sb);
        *out = NULL;
        return err_set(DR_EFAIL, "cannot create the Lua state");
    }
    lua_State *L = sb->L;
    lua_atpanic(L, on_panic);
    /* The sentinel is a table created here, so nothing else can equal it. */
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_sentinel);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_preload);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_loaded);
    open_allowed_libraries(L);
    install_safe_wrappers(L);
    lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY_INSTRUCTIONS);
    *out = sb;
    return 0;
}

void sandbox_free(sandbox *sb)
{
    if (!sb)
        return;
    lua_close(sb->L);
    for (size_t i = 0; i < sb->lib_dir_count; i++)
        free(sb->lib_dirs[i]);
    free(sb->lib_dirs);
    free(sb->traceback);
    free(sb);
}

void sandbox_extend_module(lua_State *L, sandbox *sb, const char *source, size_t len, const char *chunk_name)
{
    if (luaL_loadbufferx(L, source, len, chunk_name, "t") != LUA_OK)
        lua_error(L);
    sandbox_push_env(sb);
    lua_setupvalue(L, -2, 1);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 1);
    lua_remove(L, -2);
}
