/* jsonlua: converting between cJSON trees and Lua values.
 *
 * Step outputs are part of the checkpoint, so a value that JSON cannot carry
 * faithfully (a function, a cycle, NaN, a sparse array, an integer beyond
 * 2^53) is refused with the path of the offending value instead of being
 * silently changed. JSON null is the light userdata json.null in Lua. */
#ifndef DRCTL_JSONLUA_H
#define DRCTL_JSONLUA_H

#include <cjson/cJSON.h>
#include <lua.h>

/* Pushes value onto the Lua stack (NULL pushes nil). */
void jsonlua_push(lua_State *L, const cJSON *value);

/* Converts the Lua value at idx. On failure returns NULL and sets the error
 * (DR_EFAIL) with a message naming the path from root_name, e.g.
 * "outputs.branches[2].created: a function cannot be saved as JSON". */
cJSON *jsonlua_from_lua(lua_State *L, int idx, const char *root_name);

/* Pushes the json.null sentinel. */
void jsonlua_push_null(lua_State *L);
int jsonlua_is_null(lua_State *L, int idx);

/* Opens the `json` module: encode(value[, pretty]), decode(text), null. */
int jsonlua_open_module(lua_State *L);

#endif
