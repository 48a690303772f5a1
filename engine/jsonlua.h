/* jsonlua: converting between cJSON trees and Lua values.
 *
 * Step outputs are part of the checkpoint, so a value that JSON cannot carry
 * faithfully (a function, a cycle, NaN, a sparse array, an integer beyond
 * 2^53) is refused with the path of the offending value instead of being
 * silently changed. JSON null is the light userdata json.null in Lua.
 *
 * Tables are read raw (lua_next, lua_rawget): no metamethod runs while a
 * value is converted, so what is saved is the table's own content. */
#ifndef DRCTL_JSONLUA_H
#define DRCTL_JSONLUA_H

#include <cjson/cJSON.h>
#include <lua.h>

/* The most one value may take as JSON text, and the most values (numbers,
 * strings, tables...) it may hold: outputs are copied into the journal,
 * state.json, the report and git, outside the Lua memory cap. */
#define JSONLUA_MAX_BYTES (16 * 1024 * 1024)
#define JSONLUA_MAX_VALUES (1024 * 1024)

/* Pushes value onto the Lua stack (NULL pushes nil). */
void jsonlua_push(lua_State *L, const cJSON *value);

/* Pushes tree and frees it, even when the push raises (under the memory
 * cap): the tree lives outside Lua and would leak. Returns 1. */
int jsonlua_push_and_free(lua_State *L, cJSON *tree);

/* Converts the Lua value at idx. On failure returns NULL and sets the error
 * (DR_EFAIL) with a message naming the path from root_name, e.g.
 * "outputs.branches[2].created: a function cannot be saved as JSON", or
 * "outputs: larger than 16 MiB as JSON (the limit is passed at
 * outputs.rows[9000]); ...". It runs in a protected call of its own, so it
 * may be called with or without one: a Lua error inside it (out of memory)
 * is returned as a refusal, and nothing leaks. */
cJSON *jsonlua_from_lua(lua_State *L, int idx, const char *root_name);

/* Pushes the json.null sentinel. */
void jsonlua_push_null(lua_State *L);
int jsonlua_is_null(lua_State *L, int idx);

/* Opens the `json` module (docs/runbooks.md, "The json module"). */
int jsonlua_open_module(lua_State *L);

#endif
