/* nl_pg: the PostgreSQL servers behind neon-local's branches.
 *
 * Every program is started by argv, never through a shell, and as the
 * `postgres` system user when neon-local runs as root (PostgreSQL refuses
 * root). Each server listens on 127.0.0.1 only, on its own port, with WAL
 * archiving on, so that any instant since it started can be replayed. */
#ifndef DRCTL_NL_PG_H
#define DRCTL_NL_PG_H

/* The folder of PostgreSQL 15's programs (initdb, pg_ctl, ...). */
const char *nl_pg_bindir(void);

/* Makes path (and its parents under the data folder) owned by the user
 * the servers run as. */
int nl_pg_own(const char *path);

/* initdb DATADIR with superuser postgres (trust on 127.0.0.1 only). */
int nl_pg_initdb(const char *datadir);

/* A copy of the running server at source_port into datadir (pg_basebackup,
 * WAL streamed), to become a new branch. */
int nl_pg_basebackup(int source_port, const char *datadir);

/* Writes the server's settings: port, loopback, socket folder, WAL
 * archiving into archive_dir, then `extra` (may be NULL) verbatim. */
int nl_pg_configure(const char *datadir, int port, const char *archive_dir, const char *extra);

/* Makes sure the WAL of everything committed so far on the server at port
 * is in its archive: commits a marker transaction (so that a commit record
 * later than any past instant exists), switches WAL, and waits until the
 * archiver has copied that segment. */
int nl_pg_archive_now(int port);

/* Copies a base backup folder to datadir (as the server's user). */
int nl_pg_copy_backup(const char *backup, const char *datadir);

/* Replays a copied base backup to `target_setting` (for example
 * "recovery_target_time = '2026-01-11 14:29:59+00'") with WAL from
 * source_archive, then promotes it: starts the server and waits until it
 * is out of recovery. */
int nl_pg_recover_to(const char *datadir, int port, const char *archive_dir, const char *source_archive,
                     const char *target_setting);

/* The server's current WAL position as "X/Y" (caller frees), or NULL. */
char *nl_pg_current_lsn(int port);

/* 1 when the server at port answers `SELECT 1`. */
int nl_pg_is_up(int port);

int nl_pg_start(const char *datadir);
int nl_pg_stop(const char *datadir);

/* Runs SQL as the superuser on the server at port. */
int nl_pg_sql(int port, const char *dbname, const char *sql);

/* A free TCP port on 127.0.0.1. */
int nl_free_port(void);

#endif
