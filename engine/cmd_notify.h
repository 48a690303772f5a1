/* cmd_notify: drctl notify test: one test notification to every webhook, recorded (notify.h). */
#ifndef DRCTL_CMD_NOTIFY_H
#define DRCTL_CMD_NOTIFY_H

#include "cli.h"

int cmd_notify(cli *c);

#endif
