/* cmd_config: drctl config, the team's settings in the audit repository
 * (config.h): shown with where each came from, set and unset one at a
 * time, each change one commit by the operator. */
#ifndef DRCTL_CMD_CONFIG_H
#define DRCTL_CMD_CONFIG_H

#include "cli.h"

int cmd_config(cli *c);

#endif
