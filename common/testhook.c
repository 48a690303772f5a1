/* The test build's fault points (see testhook.h); empty otherwise. */
#include "testhook.h"

#ifdef DRCTL_TEST_HOOKS
#include <signal.h>
#include <stdlib.h>

void testhook_journal_durable(long seq)
{
    const char *at = getenv("DRCTL_TEST_KILL_AT_SEQ");
    if (at && *at && strtol(at, NULL, 10) == seq)
        raise(SIGKILL);
}
#else
/* ISO C wants a translation unit to declare something. */
typedef int testhook_empty_unit;
#endif
