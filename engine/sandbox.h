/* sandbox: the Lua state runbooks run in.
 *
 * Built by allow-list, like Redis scripting: only base, table, string,
 * math, utf8, coroutine and os.time/date/clock exist; io, debug, package,
 * dofile, loadfile and string.dump do not. Every global environment has a
 * metatable that raises on unknown names, with a message saying what was
 * refused and why. Chunks load in text mode only; `require` reaches the
 * engine's modules and the lua/ library, nothing else. Memory is capped by
 * the allocator, and a count hook enforces step deadlines and signals.
 *
 * An abort (timeout, signal, refused confirmation) is raised as a sentinel
 * error that the runbook's pcall/xpcall/coroutine.resume cannot swallow.
 * What runbook authors see of all this: docs/runbooks.md, "The sandbox". */
#ifndef DRCTL_SANDBOX_H
#define DRCTL_SANDBOX_H

#include <lua.h>
#include <stddef.h>

typedef enum {
    SANDBOX_ABORT_NONE,
    SANDBOX_ABORT_TIMEOUT,
    SANDBOX_ABORT_INTERRUPT,
    SANDBOX_ABORT_REFUSED
} sandbox_abort;

typedef struct sandbox sandbox;

int sandbox_new(sandbox **out, size_t memory_limit);
void sandbox_free(sandbox *sb);

lua_State *sandbox_state(sandbox *sb);
sandbox *sandbox_from_state(lua_State *L);

/* Directories searched, in order, for library modules (a.b -> DIR/a/b.lua). */
void sandbox_add_lib_dir(sandbox *sb, const char *dir);

/* Makes `require(name)` return opener's result; opener runs once, with
 * upvalue as its first upvalue (a light userdata). */
void sandbox_add_module(sandbox *sb, const char *name, lua_CFunction opener, void *upvalue);

/* For a module written partly in Lua (compiled into the engine): runs
 * source, in an environment of its own, with the table on the stack top as
 * its argument; its result replaces that table. Raises on error. */
void sandbox_extend_module(lua_State *L, sandbox *sb, const char *source, size_t len, const char *chunk_name);

/* Where `print` goes (a C function with upvalue as its first upvalue). */
void sandbox_set_print(sandbox *sb, lua_CFunction print, void *upvalue);

/* Pushes a fresh global environment for a chunk. */
void sandbox_push_env(sandbox *sb);

/* Loads a file in text mode; pushes the chunk with the environment on the
 * stack top as its _ENV (the environment is popped). */
int sandbox_load_file(sandbox *sb, const char *path);

/* Calls the function below nargs arguments, protected, with a deadline of
 * timeout seconds (0: none). On error returns DR_EFAIL (error or timeout),
 * DR_EINTR or DR_EREFUSED, and *error gets the message (caller frees);
 * *traceback, if not NULL, the Lua traceback. */
int sandbox_call(char **error, char **traceback, sandbox *sb, int nargs, int nresults, double timeout);

/* Raises an abort from a C function (never returns). */
int sandbox_raise_abort(lua_State *L, sandbox_abort reason);

/* From a C function: raises if the deadline passed or a signal came. */
void sandbox_check_abort(lua_State *L);

/* Seconds left before the deadline, or -1 when there is none. */
double sandbox_time_left(sandbox *sb);

size_t sandbox_memory_used(sandbox *sb);

#endif
