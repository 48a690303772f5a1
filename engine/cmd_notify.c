#include "cmd_notify.h"

#include "err.h"

int cmd_notify(cli *c)
{
    (void)c;
    return err_set(DR_EUSAGE, "drctl notify: not built yet");
}
