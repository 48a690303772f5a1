/* cmd_approve: drctl approve RUN_ID STEP, a second operator's approval of
 * a destructive step that needs several (approvals.h), given from their
 * own clone of the audit trail: fetched first, committed and pushed after. */
#ifndef DRCTL_CMD_APPROVE_H
#define DRCTL_CMD_APPROVE_H

#include "cli.h"

int cmd_approve(cli *c);

#endif
