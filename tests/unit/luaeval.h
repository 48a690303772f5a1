#ifndef DRCTL_TEST_LUAEVAL_H
#define DRCTL_TEST_LUAEVAL_H

#include "sandbox.h"

/* Runs the Lua chunk CODE in SB's environment, as a step would (a
 * protected call with a timeout of TIMEOUT seconds). Returns "ok: " and
 * its first result as tostring gives it, or "error: " and the error
 * (caller frees). SB stays the caller's. */
char *test_eval_in(sandbox *sb, const char *code, double timeout);

#endif
