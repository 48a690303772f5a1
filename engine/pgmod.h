/* pgmod: the `pg` module for runbooks, on libpq (every function, method,
 * option and the type mapping: docs/runbooks.md, "The pg module"; the
 * helpers in Lua are engine/pg.lua, compiled in).
 *
 * Values go as $1 parameters, never into the SQL text. Queries run
 * asynchronously so that a signal or the step's deadline cancels them on
 * the server. Passwords are registered as secrets as soon as they are
 * seen.
 *
 * Rows come one at a time (libpq's single-row mode), so no whole result is
 * ever held outside Lua's memory cap: c:query raises past max_rows or
 * max_bytes and cancels the query.
 *
 * Read-only sessions (every connection of `drctl plan`; in a drill, those
 * to servers the drill did not make) run each statement alone, in a
 * read-only transaction that has its snapshot, rolled back after it;
 * c:exec and c:tx are refused in a plan (in a drill c:exec reads only). */
#ifndef DRCTL_PGMOD_H
#define DRCTL_PGMOD_H

#include "drmod.h"

typedef struct pg_module pg_module;

/* Registers `pg`; the module's connections are closed at every step's end
 * through host->step_ended. */
pg_module *pgmod_register(sandbox *sb, dr_host *host);

/* Whether a statement's first word (past blanks, comments and opening
 * parentheses) is a read: SELECT, WITH, TABLE, VALUES, SHOW or EXPLAIN.
 * Read-only sessions (a plan's; in a drill, those to a server the drill did
 * not make) refuse anything else before sending it, for a clear message;
 * the read-only transaction each statement runs in is what holds. */
int pgmod_statement_reads_only(const char *sql);

/* Closes what is still open and frees the module. */
void pgmod_free(pg_module *m);

#endif
