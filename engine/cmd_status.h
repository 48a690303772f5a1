/* cmd_status: drctl status, every run or the steps of one; and the list of
 * runs drctl audit log shows too. */
#ifndef DRCTL_CMD_STATUS_H
#define DRCTL_CMD_STATUS_H

#include "cli.h"

int cmd_status(cli *c);

/* Every run of the audit folder, newest first, one line each (or JSON);
 * with_duration adds how long each took (drctl audit log). */
int cmd_status_print_runs(cli *c, int with_duration);

#endif
