/* proxy: every endpoint's own address, as Neon gives every endpoint a host
 * name of its own.
 *
 * Neon's clients (neonctl connection-string) build connection strings from
 * endpoint.host alone, so PostgreSQL's standard port 5432. neon-local gives
 * each endpoint an address of its own in 127.0.0.0/8 (all of it loopback on
 * Linux), listens there on port 5432 and passes every connection, its bytes
 * untouched (TLS stays end to end, channel binding included), to the
 * branch's server on 127.0.0.1:PORT, which connection_uri names directly.
 *
 * An address is one this process could bind: no other program listens
 * there, 127.0.0.1 and 127.0.0.0/16 are never used (a system PostgreSQL
 * may hold 127.0.0.1:5432). It stays bound while neon-local runs, so two
 * neon-locals running at once never share one. The address is the
 * endpoint's host in the state: it is taken again when neon-local starts,
 * and one that another program took meanwhile is replaced by a new one,
 * never shared. A connection reaches the branch's server only while its
 * endpoint is active. */
#ifndef DRCTL_NL_PROXY_H
#define DRCTL_NL_PROXY_H

#include "api_internal.h"

#define NL_PROXY_PORT 5432
#define NL_ADDRESS_MAX 16 /* "127.255.255.255" and its NUL */

/* The host of an endpoint that has no address of its own (every one tried
 * was taken): a name that resolves nowhere (.invalid), so that a client
 * never reaches another program's server. neon-local tries again when it
 * starts. */
#define NL_PROXY_NO_ADDRESS "no-free-address.neon-local.invalid"

/* A free address for a new endpoint, written into address; held from now on
 * when the proxy runs (checked free only, when it does not). -1 when none
 * of the addresses tried was free (the reason in err_last()). */
int nl_proxy_claim(char address[NL_ADDRESS_MAX]);

/* Starts passing connections for api's endpoints: each one's address is
 * taken again (or replaced, the state saved), then kept in step with the
 * state as endpoints come and go. */
int nl_proxy_start(nl_api *api);

/* Closes every address and connection; waits for them to end. */
void nl_proxy_stop(void);

#endif
