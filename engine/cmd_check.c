#include "cmd_check.h"

#include "err.h"

int cmd_check(cli *c)
{
    (void)c;
    return err_set(DR_EUSAGE, "drctl check: not built yet");
}
