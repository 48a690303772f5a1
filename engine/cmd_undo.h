/* cmd_undo: drctl undo RUN_ID, which puts a branch back as it was before a
 * finished recovery run (accidental-deletion or corruption): a run of the
 * undo runbook with param run = RUN_ID, on the target RUN_ID acted on. */
#ifndef DRCTL_CMD_UNDO_H
#define DRCTL_CMD_UNDO_H

#include "cli.h"

int cmd_undo(cli *c);

#endif
