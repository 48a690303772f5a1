#ifndef DRCTL_PGCONNECT_H
#define DRCTL_PGCONNECT_H

#include <libpq-fe.h>

/* Connects to the database a connection string or URI names. The
 * operator's settings win over drctl's defaults: a connect_timeout or an
 * application_name in the URI, else PGCONNECT_TIMEOUT or PGAPPNAME, else
 * DEFAULT_TIMEOUT seconds and APP. The caller checks PQstatus and
 * PQfinishes the result (never NULL but out of memory). */
PGconn *pg_connect_uri(const char *uri, const char *app, const char *default_timeout);

#endif
