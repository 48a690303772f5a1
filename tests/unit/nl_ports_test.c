#include "test.h"

#include "postgres.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

/* The kernel picks a free port at random: among two thousand picks some
 * repeat, unless neon-local remembers what it handed out (a port is free
 * for the kernel until its server binds it, and while its endpoint is
 * suspended). */
static void free_ports_are_never_handed_out_twice(void)
{
    enum { PICKS = 2000 };
    static unsigned char seen[65536];
    int repeated = 0, failed = 0;
    for (int i = 0; i < PICKS; i++) {
        int port = nl_free_port();
        if (port <= 0) {
            failed++;
            continue;
        }
        repeated += seen[port];
        seen[port] = 1;
        CHECK(nl_port_is_claimed(port));
    }
    CHECK(failed == 0);
    CHECK(repeated == 0);
}

/* The ports of a state's endpoints (a deleted branch's kept ones too) are
 * claimed when the state loads. */
static void a_state_s_endpoint_ports_are_claimed(void)
{
    cJSON *state = cJSON_Parse("{\"projects\":[{\"_endpoints\":[{\"id\":\"ep-a\",\"_port\":1},{\"_port\":2}],"
                               "\"_deleted_branches\":[{\"_kept\":{\"endpoints\":[{\"_port\":3}]}}]}]}");
    CHECK(state);
    CHECK(!nl_port_is_claimed(1) && !nl_port_is_claimed(2) && !nl_port_is_claimed(3));
    nl_ports_claim_in(state);
    CHECK(nl_port_is_claimed(1) && nl_port_is_claimed(2) && nl_port_is_claimed(3));
    CHECK(!nl_port_is_claimed(4));
    cJSON_Delete(state);
}

TEST_SUITE(nl_ports)
{
    REGISTER(free_ports_are_never_handed_out_twice);
    REGISTER(a_state_s_endpoint_ports_are_claimed);
}
