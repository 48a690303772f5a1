#include "test.h"

#include "pgconnect.h"

#include <stdlib.h>
#include <string.h>

/* The value libpq used for KEYWORD on CONN (an attempt that failed has
 * its options all the same), copied into OUT. */
static void option_of(PGconn *conn, const char *keyword, char *out, size_t size)
{
    out[0] = 0;
    PQconninfoOption *opts = PQconninfo(conn);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, keyword) && o->val)
            snprintf(out, size, "%s", o->val);
    PQconninfoFree(opts);
}

/* Port 1 on loopback refuses at once: nothing here waits for a server. */
#define NOWHERE "postgresql://u@127.0.0.1:1/db"

static void drctl_defaults_apply_when_nothing_else_is_set(void)
{
    unsetenv("PGCONNECT_TIMEOUT");
    unsetenv("PGAPPNAME");
    PGconn *conn = pg_connect_uri(NOWHERE, "drctl", "10");
    char value[64];
    CHECK(PQstatus(conn) == CONNECTION_BAD);
    option_of(conn, "connect_timeout", value, sizeof value);
    CHECK_STR(value, "10");
    option_of(conn, "fallback_application_name", value, sizeof value);
    CHECK_STR(value, "drctl");
    PQfinish(conn);
}

static void the_uri_s_own_timeout_and_name_win(void)
{
    PGconn *conn = pg_connect_uri(NOWHERE "?connect_timeout=33&application_name=mine", "drctl", "10");
    char value[64];
    option_of(conn, "connect_timeout", value, sizeof value);
    CHECK_STR(value, "33");
    option_of(conn, "application_name", value, sizeof value);
    CHECK_STR(value, "mine");
    PQfinish(conn);
}

static void pgconnect_timeout_wins_over_the_default(void)
{
    setenv("PGCONNECT_TIMEOUT", "7", 1);
    PGconn *conn = pg_connect_uri(NOWHERE, "drctl", "10");
    char value[64];
    option_of(conn, "connect_timeout", value, sizeof value);
    CHECK_STR(value, "7");
    PQfinish(conn);
    conn = pg_connect_uri(NOWHERE "?connect_timeout=40", "drctl", "10");
    option_of(conn, "connect_timeout", value, sizeof value);
    CHECK_STR(value, "40");
    PQfinish(conn);
    unsetenv("PGCONNECT_TIMEOUT");
}

TEST_SUITE(pgconnect)
{
    REGISTER(drctl_defaults_apply_when_nothing_else_is_set);
    REGISTER(the_uri_s_own_timeout_and_name_win);
    REGISTER(pgconnect_timeout_wins_over_the_default);
}
