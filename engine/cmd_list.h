/* cmd_list: drctl list, the runbooks on the search path. */
#ifndef DRCTL_CMD_LIST_H
#define DRCTL_CMD_LIST_H

#include "cli.h"

/* Lists each runbook with its version, summary and blob id; one that does
 * not load is listed with its error, and the result is DR_EUSAGE. */
int cmd_list(cli *c);

#endif
