/* cmd_drill: drctl drill SCENARIO, a recovery rehearsed on a copy of
 * production and measured (RTO, RPO, exactness, nothing left behind); and
 * drctl drill --history. */
#ifndef DRCTL_CMD_DRILL_H
#define DRCTL_CMD_DRILL_H

#include "cli.h"
#include "runbook.h"
#include "session.h"

#include <cjson/cJSON.h>

int cmd_drill(cli *c);

/* The approvals a drill runs with: each --approve, and every destructive
 * step of the scenario (the drill's scope, not a person, keeps them to
 * the drill's own branches). The strings are borrowed: free only *out. */
void cmd_drill_approvals(char ***out, size_t *count, const cli *c, const runbook *rb);

/* A resumed drill knows again what it made: its scope (run.json's
 * "drill") is rebuilt and the journal replayed into it. */
void cmd_drill_resume_scope(session *s, const cli *c, const char *run_id, const cJSON *drill);

/* A drill's end: its figures, or JSON with the exit code, the message when
 * rc is an error, and the steps (taken from state). */
void cmd_drill_outcome(const cli *c, const char *run_id, const cJSON *info, cJSON *state, int rc);

#endif
