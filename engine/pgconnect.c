#include "pgconnect.h"

#include <stdlib.h>

PGconn *pg_connect_uri(const char *uri, const char *app, const char *default_timeout)
{
    /* libpq lets a later keyword override what the expanded dbname set,
     * so drctl's defaults come first and the URI's own values after them;
     * a default given here would also hide the environment's, which
     * libpq reads only for what nothing set. */
    const char *timeout = getenv("PGCONNECT_TIMEOUT");
    const char *keys[] = { "connect_timeout", "fallback_application_name", "dbname", NULL };
    const char *vals[] = { timeout && *timeout ? timeout : default_timeout, app, uri, NULL };
    return PQconnectdbParams(keys, vals, 1);
}
