/* api_internal: what the files of neon-local's API share behind api.h: the
 * API object, its state and lock, its clock, and the answers every resource
 * gives the same way.
 *
 * Every request handler and every job step that touches the state runs with
 * api->lock held: nl_api_handle takes it around each handler, the worker
 * around each prepare and apply (jobs.h). */
#ifndef DRCTL_NL_API_INTERNAL_H
#define DRCTL_NL_API_INTERNAL_H

#include "api.h"

#include <cjson/cJSON.h>
#include <pthread.h>

struct nl_api {
    char *data_dir;
    char *state_path;
    cJSON *state;             /* the document state.h describes */
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* signalled when the worker has something new to do */
    pthread_t worker;
    int stopping;
    double clock_speed;       /* schedules and expiry run this much faster */
    double clock_origin;      /* real time when the schedule clock started */
};

/* Writes the state durably (mode 0600: it holds the roles' passwords). */
int nl_api_save(nl_api *api);

/* Tells the worker a job is waiting. */
void nl_api_wake_worker(nl_api *api);

/* The schedule clock: real time, or faster for rehearsals (--clock-speed). */
double nl_api_schedule_now(const nl_api *api);

/* The clock's sweep over the state: visit (state.h) on every branch, its
 * context the schedule clock's now (a const double *); the state saved
 * when any visit changed its branch. Returns 1 when one did. */
int nl_api_sweep_branches(nl_api *api, int (*visit)(cJSON *project, cJSON *branch, void *now));

/* DATA_DIR/pg/BRANCH_ID/PART (PART: "data", "wal", "base"; NULL: the
 * branch's folder itself). Caller frees. */
char *nl_api_branch_path(const nl_api *api, const char *branch_id, const char *part);

/* The same inside the folder a restore builds beside the branch
 * (DATA_DIR/pg/BRANCH_ID.restore). */
char *nl_api_staging_path(const nl_api *api, const char *branch_id, const char *part);

/* Saves the state, then answers status with body (taken); 500 when the
 * state cannot be saved. */
nl_response nl_api_saved(nl_api *api, unsigned status, cJSON *body);

/* nl_api_saved, and the worker woken: for a change it finishes. */
nl_response nl_api_queued(nl_api *api, unsigned status, cJSON *body);

/* {key: item, operations: ops}, both taken (ops NULL: an empty list). */
cJSON *nl_api_body(const char *key, cJSON *item, cJSON *ops);

/* GET of one of a project's lists (NL_ENDPOINTS, NL_ROLES, ...) as
 * {key: [...]}, public fields only: the items on branch_id, or all of them
 * when branch_id is NULL. */
nl_response nl_api_list_items(nl_api *api, const char *project_id, const char *branch_id, const char *list,
                              const char *key);

/* The 404 of a project that is not there (or deleted). */
nl_response nl_api_no_project(const char *project_id);

/* The 404 of a branch that is not in the project. */
nl_response nl_api_no_branch(const char *project_id, const char *branch_id);

/* The 423 of a branch or endpoint a job is still changing. */
nl_response nl_api_busy(const char *what, const char *id);

#endif
