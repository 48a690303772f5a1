/* tls: the certificate every branch server presents (ssl = on), so that
 * what Neon's clients print (sslmode=require, channel_binding=require)
 * connects as it does to Neon.
 *
 * It is made once, into DIR/tls, and never leaves that folder:
 *   server.key  the private key (EC P-256), mode 0600, owned by the user
 *               the servers run as, as PostgreSQL requires;
 *   server.crt  a self-signed certificate for it (CN neon-local, SAN
 *               localhost and 127.0.0.1, a CA so that it can be its own
 *               root: clients that want proof they reach this neon-local
 *               pass sslmode=verify-ca sslrootcert=DIR/tls/server.crt).
 * The endpoints' addresses change (see proxy.h), so no name is checked:
 * verify-full cannot work, verify-ca does. */
#ifndef DRCTL_NL_TLS_H
#define DRCTL_NL_TLS_H

/* Makes DIR/tls/server.key and server.crt if either is missing, or checks
 * those there (a key other users can read is refused). *cert_path and
 * *key_path are their absolute paths (caller frees). Call it after
 * nl_pg_load_superuser_password's folder exists and before any server
 * starts. */
int nl_tls_prepare(const char *data_dir, char **cert_path, char **key_path);

#endif
