/* neonmod: the `neon` module for runbooks (the Neon module contract).
 *
 *   neon.request(method, path [, body [, {wait = true}]]) -> decoded answer
 *   neon.wait(operations)            polls each to finished/skipped
 *   neon.target()                    {kind = "cloud"|"local", api_host = }
 *   + named functions (projects, branches, snapshots, endpoints, roles,
 *     databases, connection_uri, operations), written in Lua on top of
 *     request (engine/neon.lua, compiled in).
 *
 * Every call is a journal event (method, path, status, duration, attempts,
 * operation ids; never the key, never a body). Calls other than GET are
 * refused in plan mode. Failures are raised as a table
 * {status=, code=, message=, request_id=, method=, path=, outcome_unknown=}. */
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
