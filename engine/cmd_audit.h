/* cmd_audit: drctl audit log | show RUN_ID | verify, reading and checking
 * the audit trail. */
#ifndef DRCTL_CMD_AUDIT_H
#define DRCTL_CMD_AUDIT_H

#include "cli.h"

int cmd_audit(cli *c);

#endif
