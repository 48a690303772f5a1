/* pgmod: the `pg` module for runbooks (libpq).
 *
 *   local c = pg.connect(uri [, {project=, branch_id=}])  (password from
 *             neon.reveal_password when the URI has none and a project is given)
 *   c:query(sql, ...)  -> rows ({column = value}), info {columns=, command=, affected=}
 *   c:query{sql=, params={...}, timeout="5s", max_rows=, max_bytes=}   the same,
 *                      with a statement timeout and other limits
 *   c:exec(sql, ...)   -> number of rows affected (rows returned are dropped)
 *   c:tx(function() ... end)   BEGIN/COMMIT, ROLLBACK when it raises
 *   c:close()          (every connection also closes when its step ends)
 *   pg.copy(src, dst, {from = "table" | "SELECT ...", to = "table", columns = {...}})
 *                      -> {rows=, bytes=, seconds=, peak_rss_kb=}: COPY TO STDOUT
 *                         streamed into COPY FROM STDIN, never the whole table in memory
 *   pg.null            SQL NULL (the same value as json.null)
 *   + helpers in Lua (engine/pg.lua): user_tables, row_counts, primary_key,
 *     foreign_keys, orphans, fingerprint.
 *
 * Values go as $1 parameters, never into the SQL text. Types map to Lua:
 * integers, float numbers, booleans; numeric as a string (no precision
 * lost); timestamps as RFC 3339 text; everything else as text. Queries run
 * asynchronously so that a signal or the step's deadline cancels them on
 * the server. A SQL error fails the step with PostgreSQL's message and
 * SQLSTATE. Passwords are registered as secrets as soon as they are seen.
 *
 * Rows come one at a time (libpq's single-row mode), so no whole result is
 * ever held outside Lua's memory cap: c:query raises past max_rows
 * (100,000) or max_bytes (64 MiB of text) and cancels the query.
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
