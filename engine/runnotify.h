/* runnotify: a run's end told to the team's webhooks (the notifications
 * contract, docs/design.md).
 *
 * A run that failed, paused for a confirmation or was interrupted, and a
 * drill that passed or failed, is sent to every webhook of notify.webhook
 * (notify.h), bounded by notify.timeout. What each delivery did is handed
 * back for the journal's "notify" event, which the runner appends before
 * the run's end, so that the end's commit carries it. A notification never
 * fails a run: settings that do not load are a warning, and nothing is
 * sent. */
#ifndef DRCTL_RUNNOTIFY_H
#define DRCTL_RUNNOTIFY_H

#include "checkpoint.h"

#include <cjson/cJSON.h>

/* The run as it ends. */
typedef struct runnotify_run {
    const char *audit_dir;
    const char *run_id;
    const char *runbook;
    const char *kind;            /* the end about to be recorded: run-failed, run-paused, ... */
    const char *reason;          /* its reason, or NULL */
    const cJSON *target;         /* run.json's target, or NULL */
    const cJSON *params;         /* the run's params (project and branch are read) */
    const cJSON *drill;          /* run.json's drill, or NULL */
    const checkpoint *cp;
    const char *chain_head;      /* the journal's chain head now, or NULL */
    long chain_seq;              /* the last event's seq */
} runnotify_run;

/* The event a run's end is notified as (run-failed, run-paused,
 * run-interrupted, drill), or NULL when that end is not notified. */
const char *runnotify_event(const char *kind, int is_drill);

/* Sends the run's end when it is notified and a webhook is configured,
 * and says on the terminal what came of it. Returns the "notify" event's
 * data, {"event","deliveries":[...]}, or NULL: nothing was sent. */
cJSON *runnotify_send(const runnotify_run *run);

#endif
