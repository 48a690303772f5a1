/* nl_pg: the PostgreSQL servers behind neon-local's branches.
 *
 * Every program is started by argv, never through a shell, and as the
 * `postgres` system user when neon-local runs as root (PostgreSQL refuses
 * root). Each server listens on 127.0.0.1 only, on its own port, with WAL
 * archiving on, so that any instant since it started can be replayed.
 *
 * Every login needs a password, the superuser's (postgres) too, replication
 * included: any local user can reach 127.0.0.1. The superuser's password is
 * generated once into DIR/superuser-password (mode 0600) and reaches the
 * programs neon-local runs through their environment or libpq's parameters,
 * never their arguments. */
#ifndef DRCTL_NL_PG_H
#define DRCTL_NL_PG_H

#include <cjson/cJSON.h>

/* The folder of PostgreSQL 15's programs (initdb, pg_ctl, ...). */
const char *nl_pg_bindir(void);

/* Makes path (and its parents under the data folder) owned by the user
 * the servers run as. */
int nl_pg_own(const char *path);

/* Reads data_dir/superuser-password, or writes a new random one (mode 0600;
 * *created tells); refuses a file other users can read. Call it before any
 * other function here. */
int nl_pg_load_superuser_password(const char *data_dir, int *created);

/* Wipes the password from memory. */
void nl_pg_forget_superuser_password(void);

/* initdb DATADIR with superuser postgres, its password the loaded one. */
int nl_pg_initdb(const char *datadir);

/* Brings a data folder written by an older neon-local (whose pg_hba.conf
 * trusted postgres on 127.0.0.1) to the password rule: stops its server if
 * it runs, sets the superuser's password offline (single-user mode) and
 * rewrites pg_hba.conf. force does it even when pg_hba.conf is current (the
 * password file was made anew). Nothing to do is 0. */
int nl_pg_secure(const char *datadir, int force);

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

/* The certificate and key every server presents from now on, with ssl =
 * on (nl_tls_prepare makes them); NULLs: none (and frees the copies). */
void nl_pg_use_tls(const char *cert_path, const char *key_path);

/* Starts the server, after nl_pg_secure (no server ever starts trusting),
 * with the TLS settings of nl_pg_use_tls written into its
 * postgresql.auto.conf (a folder an older neon-local wrote gets them too). */
int nl_pg_start(const char *datadir);
int nl_pg_stop(const char *datadir);

/* Runs SQL as the superuser on the server at port. */
int nl_pg_sql(int port, const char *dbname, const char *sql);

/* The same; when the server refuses the SQL, its SQLSTATE and primary
 * message (without the port) are also given back. */
int nl_pg_sql_refused(int port, const char *dbname, const char *sql, char sqlstate[6], char *why, size_t why_size);

/* A free TCP port on 127.0.0.1, never one handed out before by this
 * process or claimed by nl_ports_claim_in. */
int nl_free_port(void);

/* Claims every endpoint port (NL_PORT) found anywhere in a state document,
 * deleted branches' kept endpoints included. */
void nl_ports_claim_in(const cJSON *node);

/* Whether PORT was handed out or claimed. */
int nl_port_is_claimed(int port);

#endif
