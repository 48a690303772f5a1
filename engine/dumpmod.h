/* dumpmod: the `dump` module for runbooks: pg_dump and pg_restore.
 *
 *   dump.pg_dump{uri=, dest=DIR, name=, format="custom"|"directory", jobs=1}
 *       -> {path=, format=, bytes=, sha256=, seconds=, tables=, pg_dump_version=, server_version=}
 *   dump.pg_restore{uri=, source=PATH, jobs=1, clean=false}  -> {seconds=, tables=}
 *   dump.list(PATH)    -> {entries=, tables=}   (pg_restore --list: is the dump readable?)
 *   dump.sha256(PATH)  -> hex digest (a directory: over its files, by name)
 *
 * The programs run by argv; the password never goes on a command line: it
 * goes in a temporary 0600 passfile named by PGPASSFILE, removed after.
 * A pg_dump older than the server's major version is refused before
 * anything is written. The dump is written under NAME.partial and renamed
 * once whole, so a failed dump never looks like a good one; an existing
 * dump is never overwritten. Progress (bytes written, tables done) is shown
 * every second while it runs. */
#ifndef DRCTL_DUMPMOD_H
#define DRCTL_DUMPMOD_H

#include "drmod.h"

void dumpmod_register(sandbox *sb, dr_host *host);

/* The sha256 of a file, or over a directory's files (sorted by name, each
 * as "name sha256\n"); hex in out[65]. */
int dump_sha256(const char *path, char out[65]);

#endif
