/* dumpmod: the `dump` module for runbooks: pg_dump, pg_restore and
 * pg_restore --list (the runbook API, docs/runbooks.md, "The dump
 * module"). It also registers `files` (filesmod.h), and keeps the file
 * functions it had before that module existed as aliases of its functions.
 *
 * The programs run by argv; the password never goes on a command line: it
 * goes in a temporary 0600 passfile named by PGPASSFILE, removed after.
 * A pg_dump older than the server's major version is refused before
 * anything is written. The dump is written under NAME.partial and renamed
 * once whole, so a failed dump never looks like a good one; an existing
 * dump is never overwritten. Its folder, a restore's source and a listed
 * dump must lie inside the folders the run was given (confine.h). */
#ifndef DRCTL_DUMPMOD_H
#define DRCTL_DUMPMOD_H

#include "drmod.h"

/* Makes `dump` and `files` requirable. host must outlive the sandbox's use. */
void dumpmod_register(sandbox *sb, dr_host *host);

#endif
