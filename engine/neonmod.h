/* neonmod: the `neon` module for runbooks (on the API client
 * contract, docs/design.md; every function, its options and results:
 * docs/runbooks.md, "The neon module"). request and wait are C; the named
 * functions are Lua on top of request (engine/neon.lua, compiled in).
 *
 * Every call is a journal event (method, path, status, duration, attempts,
 * operation ids; never the key, never a body). Calls other than GET are
 * refused in plan mode, and in a drill changes to what the drill did not
 * make. Failures are raised as a table, never as a bare string. */
#ifndef DRCTL_NEONMOD_H
#define DRCTL_NEONMOD_H

#include "drmod.h"
#include "neon.h"
#include "target.h"

typedef struct neon_module {
    dr_host *host;
    target *target;        /* resolved by the CLI before any call */
    neon_client *client;   /* made on the first call */
    sandbox *sb;
    int required;          /* a runbook asked for the module */
} neon_module;

void neonmod_register(sandbox *sb, neon_module *m);

/* Frees the client (the module struct is the caller's). */
void neonmod_close(neon_module *m);

#endif
