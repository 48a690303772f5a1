/* Placeholders for the outputs of steps that have not run: a plan (and
 * the page drctl docs writes) computes a destructive step's confirmation
 * before the steps it reads have run, so ctx.outputs.step.field stands
 * for the value as "<step.field>" (the confirmation contract,
 * docs/design.md). */
#ifndef DRCTL_PLACEHOLDER_H
#define DRCTL_PLACEHOLDER_H

#include <lua.h>

/* Pushes a table standing for ctx.outputs: any step's outputs, and any
 * field of them, are placeholders named by their path. They concatenate,
 * format with %s and tostring as "<path>"; # gives "<number of path>";
 * arithmetic, calls and string methods give placeholders. What needs the
 * value itself raises "<path> is known only at run time": comparisons,
 * its items (pairs, ipairs, [1]). */
void placeholder_push_outputs(lua_State *L);

/* A placeholder at idx is replaced, in place, by its text ("<path>");
 * returns whether it was one. */
int placeholder_to_text(lua_State *L, int idx);

#endif
