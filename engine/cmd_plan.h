/* cmd_plan: drctl plan, what a run would do, step by step, without doing it. */
#ifndef DRCTL_CMD_PLAN_H
#define DRCTL_CMD_PLAN_H

#include "cli.h"

int cmd_plan(cli *c);

#endif
