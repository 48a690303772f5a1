/* jobs: the worker, which does the slow PostgreSQL work (initdb, base
 * backups, replays, starting and stopping servers, removing data) off the
 * request path.
 *
 * A request only writes what it wants into the state (a branch in
 * NL_BRANCH_INIT, an endpoint with NL_PENDING, ...) and wakes the worker.
 * Every kind of job then goes through the same three steps:
 *
 *   prepare  under the lock: finds the first item waiting for this kind of
 *            job and copies out what the work needs;
 *   run      without the lock: the work itself, on files and servers only;
 *   apply    under the lock: records the result on the items, looked up
 *            again by id, since a request may have removed them meanwhile.
 *
 * Deleted branches kept for recovery have two jobs of their own: their
 * server stopped (NL_STOPPING), and at the end of their period their data
 * removed (NL_PURGING); a deleted project's endpoints are suspended by the
 * endpoint job, and its branches removed by the deletion job when its
 * period ends.
 *
 * The state is saved after each apply. An apply may hand back a follow-up
 * job, which runs at once the same way (the base backup a ready branch's
 * history starts from). */
#ifndef DRCTL_NL_JOBS_H
#define DRCTL_NL_JOBS_H

#include "api_internal.h"

typedef struct nl_job_kind nl_job_kind;

/* One job: its kind, and what its work needs, copied out of the state. */
typedef struct nl_job {
    const nl_job_kind *kind;
    void *data;
} nl_job;

struct nl_job_kind {
    const char *name;
    /* *out: a new job's data for the first item waiting, or NULL when none is. */
    void (*prepare)(void **out, nl_api *api);
    /* 0 or an error code, the message in err_last(). */
    int (*run)(nl_api *api, const void *data);
    /* next: a follow-up job to run at once, or left {NULL, NULL}. */
    void (*apply)(nl_job *next, nl_api *api, const void *data, int rc);
    void (*free)(void *data);
};

/* The worker thread's body (arg: the nl_api); returns once api->stopping. */
void *nl_worker_main(void *arg);

/* What still needs a branch's files or its server: a branch being made
 * from it (at head or at a point in time, a snapshot of it, a branch from a
 * snapshot), a branch being restored from it, an endpoint change on it. The
 * worker reads a source when it gets to the job, not when the job is asked
 * for, and the job stays in the state until it is done, so this holds from
 * the request to the end. Deleting, expiring or restoring over such a
 * branch, or stopping or starting its server, would make the job fail
 * half-way. A deleted project's branches are all needed: the project is
 * kept as it was until it is recovered or its period ends (recovery.h).
 * Returns what the job is (caller frees), or NULL. */
char *nl_job_needing(cJSON *project, const char *branch_id);

/* 1 when nl_job_needing finds a job. */
int nl_job_is_needed(cJSON *project, const char *branch_id);

/* 423 in Neon's shape while a job still needs the branch; 0 when none does. */
int nl_job_refuse_if_needed(nl_response *error, cJSON *project, const cJSON *branch);

/* An endpoint whose change (create, start, suspend, delete, move) is
 * waiting or running, on the branch or moving off it, or NULL. */
cJSON *nl_job_endpoint_changing(cJSON *project, const char *branch_id);

/* A branch a new job may read: ready, and no server being started, stopped
 * or moved on it (the worker could read it before that is done, or while);
 * never a deleted branch, nor one of a deleted project. */
int nl_job_readable_now(cJSON *project, const cJSON *branch);

/* A branch (or snapshot) whose creation or restore failed: in error, its
 * operations failed, nothing running on it any more. Deleting it is the
 * only way to clean it up, and Neon lets a failed branch be deleted too. */
int nl_job_failed_and_idle(cJSON *project, const cJSON *branch);

#endif
