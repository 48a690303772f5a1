/* cmd_run: drctl run, resume and abort, the commands that run steps. */
#ifndef DRCTL_CMD_RUN_H
#define DRCTL_CMD_RUN_H

#include "audit.h"
#include "cli.h"
#include "session.h"
#include "drmod.h"
#include "runner.h"

int cmd_run(cli *c);
int cmd_resume(cli *c);
int cmd_abort(cli *c);

/* The runner's options from the command line: audit folder, approvals,
 * --allow-runbook-change, --run-id; host is the sandbox's (or NULL). */
runner_options cmd_run_options(const cli *c, dr_host *host);

/* Starts a new run of s's runbook with params, recorded in trail on s's
 * target, and reports its outcome (cmd_run_report_outcome). */
int cmd_run_start(cli *c, session *s, const cJSON *params, audit *trail);

/* What a command that ran steps says at the end: the error on stderr, and
 * one line (or JSON, or a drill's figures) on stdout with the run's
 * outcome; marks the error shown. Nothing when run_id is NULL (no run was
 * made). Returns rc. */
int cmd_run_report_outcome(cli *c, const char *run_id, int rc);

#endif
