/* runner: executing a runbook's steps with a durable checkpoint around each
 * (the checkpoint and confirmation contracts, docs/design.md).
 *
 * Each state change is an event appended to the journal and fsynced, then
 * state.json is rewritten durably, before the next action. On resume, done
 * steps are skipped with their outputs restored; a step that began and did
 * not finish is re-run only if idempotent, otherwise only after the same
 * confirmation as a destructive step. `always` steps run after a failure.
 * A signal saves the step as interrupted and returns DR_EINTR. */
#ifndef DRCTL_RUNNER_H
#define DRCTL_RUNNER_H

#include "drmod.h"
#include "runbook.h"

#include <cjson/cJSON.h>

typedef struct runner_options {
    const char *audit_dir;
    char *const *approvals;       /* --approve STEP, validated by the caller */
    size_t approval_count;
    int allow_runbook_change;
    const char *run_id;           /* --run-id for a new run, or NULL */
    dr_host *host;                /* the host the sandbox's dr module uses */
    struct audit *audit;          /* the audit trail, or NULL (plan) */
    const cJSON *target;          /* the Neon the run acts on (run.json), or NULL */
    const cJSON *drill;           /* a drill: its scenario (run.json "drill"), or NULL */
    int plan_policy;              /* a plan reads the team's approvals policy from audit_dir */
} runner_options;

/* The name --approve takes to go on with the local target lock only when
 * origin cannot be reached (it is no step of the runbook). */
#define RUNNER_LOCAL_LOCK_STEP "local-lock"

/* Computes the plan: {"runbook","version","blob_id","params","steps":[...]}.
 * A plan function that fails is shown in the plan and makes this DR_EFAIL;
 * a ctx that does not fit in the sandbox's memory makes it DR_EFAIL with
 * *plan NULL. */
int runner_plan(cJSON **plan, runbook *rb, const cJSON *params, dr_host *host, const char *audit_dir);

/* Starts a new run with validated params (not taken). *run_id_out gets the
 * run's id as soon as it exists, even when the run then fails. */
int runner_start(char **run_id_out, runbook *rb, const cJSON *params, const runner_options *opts);

/* Resumes run_id; assignments may only give secret params again. */
int runner_resume(runbook *rb, const char *run_id, char *const *assignments, size_t assignment_count,
                  const runner_options *opts);

/* Closes a paused, failed or interrupted run for good: runs its pending
 * `always` steps (cleanup) when rb is given and unchanged, then records it
 * aborted. */
int runner_abort(runbook *rb, const char *run_id, char *const *assignments, size_t assignment_count,
                 const runner_options *opts);

/* Closes a run whose runbook cannot be loaded (deleted, broken): records
 * it aborted, saying why its cleanup steps did not run. */
int runner_close_without_runbook(const char *run_id, const runner_options *opts, const char *why);

#endif
