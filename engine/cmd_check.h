/* cmd_check: drctl check, the production checklist scored from live data (check.h). */
#ifndef DRCTL_CMD_CHECK_H
#define DRCTL_CMD_CHECK_H

#include "cli.h"

int cmd_check(cli *c);

#endif
