#include "jobs.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "ids.h"
#include "jsonfield.h"
#include "operations.h"
#include "provision.h"
#include "recovery.h"
#include "schedules.h"
#include "snapshots.h"
#include "branches.h"
#include "state.h"
#include "timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- finding what waits --------------------------------------------------------- */

/* The first item of a list (NL_BRANCHES, NL_ENDPOINTS) of any project that
 * `waiting` says needs work, with its project; NULL when there is none. */
static cJSON *first_pending(cJSON **project_out, nl_api *api, const char *list, int (*waiting)(const cJSON *item))
{
    cJSON *project;
    cJSON_ArrayForEach(project, nl_state_projects(api->state)) {
        cJSON *item;
        cJSON_ArrayForEach(item, nl_state_list(project, list)) {
            if (waiting(item)) {
                *project_out = project;
                return item;
            }
        }
    }
    return NULL;
}

static char *copy_or_null(const char *text)
{
    return text ? xstrdup(text) : NULL;
}

/* The branch a job was for, looked up again after the work: a request may
 * have deleted it, or its project, meanwhile. */
static cJSON *branch_again(cJSON **project_out, nl_api *api, const char *project_id, const char *branch_id)
{
    *project_out = nl_state_any_project(api->state, project_id);
    return nl_state_item_in(*project_out, NL_BRANCHES, branch_id);
}

/* A branch a job has made or restored: ready, or in error (and, for a
 * restore, updated: it has new contents). */
static void settle_branch(cJSON *branch, int rc, int updated)
{
    char *now = nl_now_text();
    nl_state_set_current(branch, rc ? NL_BRANCH_ERROR : NL_BRANCH_READY);
    nl_state_set_text(branch, "state_changed_at", now);
    if (updated)
        nl_state_set_text(branch, "updated_at", now);
    free(now);
}

/* ---- the start of a branch's history -------------------------------------------- */

/* After a branch is ready (and its client told so): the base backup its
 * own history starts from. Until it is there, a point in time on the
 * branch answers 423. */
typedef struct history_job {
    char *project_id, *branch_id;
    int port;
} history_job;

static void history_free(void *data)
{
    history_job *job = data;
    if (!job)
        return;
    free(job->project_id);
    free(job->branch_id);
    free(job);
}

static int history_run(nl_api *api, const void *data)
{
    const history_job *job = data;
    return nl_provision_history_base(api, job->branch_id, job->port);
}

static void history_apply(nl_job *next, nl_api *api, const void *data, int rc)
{
    (void)next;
    const history_job *job = data;
    cJSON *project;
    cJSON *branch = branch_again(&project, api, job->project_id, job->branch_id);
    /* Deleted while its base was being taken, it may still be kept. */
    if (!branch)
        branch = nl_state_kept_branch(project, job->branch_id);
    if (branch && rc == 0) {
        nl_state_set(branch, NL_HISTORY_FROM, cJSON_CreateNumber(timefmt_now()));
    } else if (!branch) {
        /* Deleted for good while its base was being taken: the base must go with it. */
        char *folder = nl_api_branch_path(api, job->branch_id, NULL);
        fsio_remove_tree(folder);
        free(folder);
    } else {
        fprintf(stderr, "neon-local: branch %s: no base backup, so no point in time: %s\n", job->branch_id,
                err_last());
    }
}

/* It runs only as the follow-up of another job: nothing waits for it in the state. */
static const nl_job_kind history_kind = { "history start", NULL, history_run, history_apply, history_free };

static void follow_with_history(nl_job *next, const char *project_id, const char *branch_id, int port)
{
    history_job *job = xcalloc(1, sizeof *job);
    job->project_id = xstrdup(project_id);
    job->branch_id = xstrdup(branch_id);
    job->port = port;
    next->kind = &history_kind;
    next->data = job;
}

/* ---- deleting a branch -------------------------------------------------------------- */

/* A project whose recovery period is over goes once its last branch, kept
 * ones too, is removed. */
static void forget_project_if_removed(nl_api *api, cJSON *project)
{
    if (!nl_state_flag(project, NL_PURGING) || cJSON_GetArraySize(nl_state_list(project, NL_BRANCHES)) > 0 ||
        cJSON_GetArraySize(nl_state_list(project, NL_KEPT_BRANCHES)) > 0)
        return;
    fprintf(stderr, "neon-local: deleted project %s removed for good\n", json_text(project, "id", NULL));
    cJSON_DetachItemViaPointer(nl_state_projects(api->state), project);
    cJSON_Delete(project);
}

typedef struct deletion_job {
    char *project_id, *branch_id;
} deletion_job;

static int awaits_deletion(const cJSON *branch)
{
    return nl_state_is(branch, NL_BRANCH_DELETING);
}

static void deletion_prepare(void **out, nl_api *api)
{
    cJSON *project;
    cJSON *branch = first_pending(&project, api, NL_BRANCHES, awaits_deletion);
    *out = NULL;
    if (!branch)
        return;
    deletion_job *job = xcalloc(1, sizeof *job);
    job->project_id = xstrdup(json_text(project, "id", NULL));
    job->branch_id = xstrdup(json_text(branch, "id", NULL));
    *out = job;
}

static int deletion_run(nl_api *api, const void *data)
{
    const deletion_job *job = data;
    return nl_provision_remove_branch(api, job->branch_id);
}

static void deletion_apply(nl_job *next, nl_api *api, const void *data, int rc)
{
    (void)next;
    const deletion_job *job = data;
    /* The raw lookup: a deleted project is exactly what this cleans up. */
    cJSON *project;
    cJSON *branch = branch_again(&project, api, job->project_id, job->branch_id);
    if (!project)
        return;
    nl_operations_finish(project, job->branch_id, rc ? err_last() : NULL);
    if (rc != 0) {
        if (branch)
            nl_state_set_current(branch, NL_BRANCH_ERROR);
        return;
    }
    nl_state_forget_branch(project, job->branch_id);
    forget_project_if_removed(api, project);
}

static void deletion_free(void *data)
{
    deletion_job *job = data;
    if (!job)
        return;
    free(job->project_id);
    free(job->branch_id);
    free(job);
}

static const nl_job_kind deletion_kind = { "delete branch", deletion_prepare, deletion_run, deletion_apply,
                                           deletion_free };

/* ---- a deleted branch: its server stopped, later its data removed ------------------------ */

/* The job's data for both: which deleted branch, and its port. */
typedef struct kept_job {
    char *project_id, *branch_id;
    int port;
} kept_job;

/* The first deleted branch of any project whose flag (NL_STOPPING,
 * NL_PURGING) is set, as a job's data; NULL when none is. */
static kept_job *first_kept_with(nl_api *api, const char *flag)
{
    cJSON *project;
    cJSON_ArrayForEach(project, nl_state_projects(api->state)) {
        cJSON *kept;
        cJSON_ArrayForEach(kept, nl_state_list(project, NL_KEPT_BRANCHES)) {
            if (!nl_state_flag(kept, flag))
                continue;
            const cJSON *held = cJSON_GetObjectItemCaseSensitive(kept, NL_KEPT);
            kept_job *job = xcalloc(1, sizeof *job);
            job->project_id = xstrdup(json_text(project, "id", NULL));
            job->branch_id = xstrdup(json_text(kept, "id", NULL));
            job->port = nl_endpoint_port(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(held, "endpoints"), 0));
            return job;
        }
    }
    return NULL;
}

static void kept_free(void *data)
{
    kept_job *job = data;
    if (!job)
        return;
    free(job->project_id);
    free(job->branch_id);
    free(job);
}

/* The deleted branch a job was for, looked up again after the work. */
static cJSON *kept_again(cJSON **project_out, nl_api *api, const kept_job *job)
{
    *project_out = nl_state_any_project(api->state, job->project_id);
    return nl_state_kept_branch(*project_out, job->branch_id);
}

static void stop_kept_prepare(void **out, nl_api *api)
{
    *out = first_kept_with(api, NL_STOPPING);
}

static int stop_kept_run(nl_api *api, const void *data)
{
    const kept_job *job = data;
    return nl_provision_endpoint_change(api, "suspend", job->branch_id, NULL, job->port);
}

/* Stopped: its endpoints are idle, and the deletion's operations end.
 * A server that would not stop is logged; the branch stays kept (its data
 * is all there) and recoverable. */
static void stop_kept_apply(nl_job *next, nl_api *api, const void *data, int rc)
{
    (void)next;
    const kept_job *job = data;
    cJSON *project;
    cJSON *kept = kept_again(&project, api, job);
    if (rc)
        fprintf(stderr, "neon-local: deleted branch %s: its server did not stop: %s\n", job->branch_id, err_last());
    if (!kept)
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(kept, NL_STOPPING);
    cJSON *endpoint;
    cJSON_ArrayForEach(endpoint, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(kept, NL_KEPT),
                                                                  "endpoints"))
        nl_state_set_current(endpoint, NL_ENDPOINT_IDLE);
    nl_operations_finish(project, job->branch_id, rc ? err_last() : NULL);
}

static const nl_job_kind stop_kept_kind = { "stop deleted branch", stop_kept_prepare, stop_kept_run,
                                            stop_kept_apply, kept_free };

/* Its recovery period over (or its parent deleted for good): its data goes. */
static void purge_kept_prepare(void **out, nl_api *api)
{
    *out = first_kept_with(api, NL_PURGING);
}

static int purge_kept_run(nl_api *api, const void *data)
{
    const kept_job *job = data;
    return nl_provision_remove_branch(api, job->branch_id);
}

static void purge_kept_apply(nl_job *next, nl_api *api, const void *data, int rc)
{
    (void)next;
    const kept_job *job = data;
    cJSON *project;
    cJSON *kept = kept_again(&project, api, job);
    if (!kept)
        return;
    if (rc != 0) {
        /* Tried again at the next turn: its data must not outlive it. */
        fprintf(stderr, "neon-local: deleted branch %s: cannot remove its data: %s\n", job->branch_id, err_last());
        return;
    }
    cJSON_DetachItemViaPointer(nl_state_list(project, NL_KEPT_BRANCHES), kept);
    cJSON_Delete(kept);
    nl_operations_finish(project, job->branch_id, NULL);
    forget_project_if_removed(api, project);
}

static const nl_job_kind purge_kept_kind = { "remove deleted branch", purge_kept_prepare, purge_kept_run,
                                             purge_kept_apply, kept_free };

/* ---- restoring a branch in place ------------------------------------------------------- */

static int awaits_restore(const cJSON *branch)
{
    return nl_state_is(branch, NL_BRANCH_INIT) && cJSON_GetObjectItemCaseSensitive(branch, NL_RESTORE);
}

static void restore_prepare(void **out, nl_api *api)
{
    cJSON *project;
    cJSON *branch = first_pending(&project, api, NL_BRANCHES, awaits_restore);
    *out = NULL;
    if (!branch)
        return;
    const cJSON *asked = cJSON_GetObjectItemCaseSensitive(branch, NL_RESTORE);
    nl_restore_spec *spec = xcalloc(1, sizeof *spec);
    spec->project_id = xstrdup(json_text(project, "id", NULL));
    spec->branch_id = xstrdup(json_text(branch, "id", NULL));
    spec->source_id = xstrdup(json_text(asked, "source_branch_id", NULL));
    spec->target = copy_or_null(json_text(asked, "target", NULL));
    spec->preserved_id = copy_or_null(json_text(asked, "preserved_id", NULL));
    spec->port = nl_endpoint_port(nl_endpoint_of(project, spec->branch_id));
    spec->source_port = nl_endpoint_port(nl_endpoint_of(project, spec->source_id));
    *out = spec;
}

static int restore_run(nl_api *api, const void *data)
{
    return nl_provision_restore(api, data);
}

static void restore_apply(nl_job *next, nl_api *api, const void *data, int rc)
{
    const nl_restore_spec *spec = data;
    cJSON *project;
    cJSON *branch = branch_again(&project, api, spec->project_id, spec->branch_id);
    if (rc)
        fprintf(stderr, "neon-local: restore of branch %s: %s\n", spec->branch_id, err_last());
    if (!branch)
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(branch, NL_RESTORE);
    settle_branch(branch, rc, 1);
    /* Its old history went with the old state. */
    cJSON_DeleteItemFromObjectCaseSensitive(branch, NL_HISTORY_FROM);
    cJSON *kept = spec->preserved_id ? nl_state_item_in(project, NL_BRANCHES, spec->preserved_id) : NULL;
    if (kept) {
        cJSON_DeleteItemFromObjectCaseSensitive(kept, NL_PRESERVING);
        nl_state_set_current(kept, rc ? NL_BRANCH_ERROR : NL_BRANCH_READY);
    }
    nl_operations_finish(project, spec->branch_id, rc ? err_last() : NULL);
    if (rc == 0)
        follow_with_history(next, spec->project_id, spec->branch_id, spec->port);
}

static void restore_free(void *data)
{
    if (!data)
        return;
    nl_restore_spec_dispose(data);
    free(data);
}

static const nl_job_kind restore_kind = { "restore branch", restore_prepare, restore_run, restore_apply,
                                          restore_free };

/* ---- changing an endpoint's server ------------------------------------------------------ */

typedef struct endpoint_job {
    char *project_id, *endpoint_id, *branch_id;
    char *change;             /* NL_PENDING: create, start, suspend, delete or move */
    char *from_id;            /* NL_FROM, for a move */
    int port;
} endpoint_job;

static int awaits_endpoint_change(const cJSON *endpoint)
{
    return json_text(endpoint, NL_PENDING, NULL) != NULL;
}

static void endpoint_prepare(void **out, nl_api *api)
{
    cJSON *project;
    cJSON *endpoint = first_pending(&project, api, NL_ENDPOINTS, awaits_endpoint_change);
    *out = NULL;
    if (!endpoint)
        return;
    endpoint_job *job = xcalloc(1, sizeof *job);
    job->project_id = xstrdup(json_text(project, "id", NULL));
    job->endpoint_id = xstrdup(json_text(endpoint, "id", NULL));
    job->branch_id = xstrdup(json_text(endpoint, "branch_id", NULL));
    job->change = xstrdup(json_text(endpoint, NL_PENDING, NULL));
    job->from_id = copy_or_null(json_text(endpoint, NL_FROM, NULL));
    job->port = nl_endpoint_port(endpoint);
    *out = job;
}

static int endpoint_run(nl_api *api, const void *data)
{
    const endpoint_job *job = data;
    return nl_provision_endpoint_change(api, job->change, job->branch_id, job->from_id, job->port);
}

static void endpoint_apply(nl_job *next, nl_api *api, const void *data, int rc)
{
    const endpoint_job *job = data;
    cJSON *project;
    cJSON *branch = branch_again(&project, api, job->project_id, job->branch_id);
    cJSON *endpoint = nl_state_item_in(project, NL_ENDPOINTS, job->endpoint_id);
    if (rc)
        fprintf(stderr, "neon-local: endpoint %s (%s): %s\n", job->endpoint_id, job->change, err_last());
    if (!endpoint)
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(endpoint, NL_PENDING);
    cJSON_DeleteItemFromObjectCaseSensitive(endpoint, NL_FROM);
    int stopped = !strcmp(job->change, "suspend") || !strcmp(job->change, "delete");
    if (rc == 0 && !strcmp(job->change, "delete")) {
        cJSON_DetachItemViaPointer(nl_state_list(project, NL_ENDPOINTS), endpoint);
        cJSON_Delete(endpoint);
    } else if (rc == 0) {
        nl_state_set_current(endpoint, stopped ? NL_ENDPOINT_IDLE : NL_ENDPOINT_ACTIVE);
        /* A branch that was data only starts its own history with its endpoint. */
        if (!stopped && branch && !cJSON_GetObjectItemCaseSensitive(branch, NL_HISTORY_FROM))
            follow_with_history(next, job->project_id, job->branch_id, job->port);
    }
    nl_operations_finish(project, job->branch_id, rc ? err_last() : NULL);
}

static void endpoint_free(void *data)
{
    endpoint_job *job = data;
    if (!job)
        return;
    free(job->project_id);
    free(job->endpoint_id);
    free(job->branch_id);
    free(job->change);
    free(job->from_id);
    free(job);
}

static const nl_job_kind endpoint_kind = { "change endpoint", endpoint_prepare, endpoint_run, endpoint_apply,
                                           endpoint_free };

/* ---- making a branch ------------------------------------------------------------------ */

/* Restores, and the branches they preserve, are restore_kind's. */
static int awaits_making(const cJSON *branch)
{
    return nl_state_is(branch, NL_BRANCH_INIT) && !cJSON_GetObjectItemCaseSensitive(branch, NL_RESTORE) &&
           !cJSON_GetObjectItemCaseSensitive(branch, NL_PRESERVING);
}

static void make_prepare(void **out, nl_api *api)
{
    cJSON *project;
    cJSON *branch = first_pending(&project, api, NL_BRANCHES, awaits_making);
    *out = NULL;
    if (!branch)
        return;
    nl_make_spec *spec = xcalloc(1, sizeof *spec);
    const char *parent_id = json_text(branch, "parent_id", NULL);
    spec->project_id = xstrdup(json_text(project, "id", NULL));
    spec->branch_id = xstrdup(json_text(branch, "id", NULL));
    spec->port = nl_endpoint_port(nl_endpoint_of(project, spec->branch_id));
    spec->target = copy_or_null(json_text(branch, NL_TARGET, NULL));
    spec->parent_id = copy_or_null(parent_id);
    if (parent_id) {
        spec->parent_port = nl_endpoint_port(nl_endpoint_of(project, parent_id));
    } else {
        cJSON *role = cJSON_GetArrayItem(nl_state_list(project, NL_ROLES), 0);
        cJSON *database = cJSON_GetArrayItem(nl_state_list(project, NL_DATABASES), 0);
        spec->role = xstrdup(json_text(role, "name", NULL));
        spec->password = xstrdup(json_text(role, NL_PASSWORD, NULL));
        spec->database = xstrdup(json_text(database, "name", NULL));
    }
    *out = spec;
}

static int make_run(nl_api *api, const void *data)
{
    return nl_provision_branch(api, data);
}

static void make_apply(nl_job *next, nl_api *api, const void *data, int rc)
{
    const nl_make_spec *spec = data;
    cJSON *project;
    cJSON *branch = branch_again(&project, api, spec->project_id, spec->branch_id);
    if (rc)
        fprintf(stderr, "neon-local: branch %s: %s\n", spec->branch_id, err_last());
    if (!branch)
        return;
    settle_branch(branch, rc, 0);
    cJSON *endpoint = nl_endpoint_of(project, spec->branch_id);
    if (endpoint)
        nl_state_set_current(endpoint, rc ? NL_ENDPOINT_IDLE : NL_ENDPOINT_ACTIVE);
    nl_operations_finish(project, spec->branch_id, rc ? err_last() : NULL);
    if (rc != 0 || !spec->port)
        return;
    /* A first branch's base backup was taken as it was made; any other
     * branch's is taken once its client has been told it is ready. */
    if (spec->parent_id)
        follow_with_history(next, spec->project_id, spec->branch_id, spec->port);
    else
        nl_state_set(branch, NL_HISTORY_FROM, cJSON_CreateNumber(timefmt_now()));
}

static void make_free(void *data)
{
    if (!data)
        return;
    nl_make_spec_dispose(data);
    free(data);
}

static const nl_job_kind make_kind = { "make branch", make_prepare, make_run, make_apply, make_free };

/* ---- the worker ------------------------------------------------------------------------ */

/* Runs a job and its follow-ups: the work with the lock released, each
 * result applied and saved with it held. Called with the lock held. */
static void run_job(nl_api *api, nl_job job)
{
    while (job.kind) {
        pthread_mutex_unlock(&api->lock);
        int rc = job.kind->run(api, job.data);
        pthread_mutex_lock(&api->lock);
        nl_job next = { NULL, NULL };
        job.kind->apply(&next, api, job.data, rc);
        nl_api_save(api);
        job.kind->free(job.data);
        job = next;
    }
}

/* Runs the first job of that kind waiting, if any; 1 when it ran one. */
static int run_waiting(nl_api *api, const nl_job_kind *kind)
{
    nl_job job = { kind, NULL };
    kind->prepare(&job.data, api);
    if (!job.data)
        return 0;
    run_job(api, job);
    return 1;
}

/* Deletions, restores and endpoint changes first: requests wait on them. */
static const nl_job_kind *const urgent_kinds[] = { &deletion_kind, &stop_kept_kind, &purge_kept_kind, &restore_kind,
                                                   &endpoint_kind };

static int run_urgent(nl_api *api)
{
    for (size_t i = 0; i < sizeof urgent_kinds / sizeof *urgent_kinds; i++)
        if (run_waiting(api, urgent_kinds[i]))
            return 1;
    return 0;
}

/* The clock's work: expiry and scheduled snapshots, state changes only
 * (what they start is a job like any other). */
static int run_clock(nl_api *api)
{
    return nl_snapshots_expire(api) || nl_branches_expire(api) || nl_recovery_expire(api) ||
           nl_schedules_take_due(api);
}

void *nl_worker_main(void *arg)
{
    nl_api *api = arg;
    pthread_mutex_lock(&api->lock);
    while (!api->stopping) {
        if (run_urgent(api) || run_clock(api) || run_waiting(api, &make_kind))
            continue;
        /* Woken by requests, or each second for schedules and expiry. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&api->wake, &api->lock, &until);
    }
    pthread_mutex_unlock(&api->lock);
    return NULL;
}

/* ---- what the jobs still need ---------------------------------------------------------- */

/* Whether item.key is the text want. */
static int text_is(const cJSON *item, const char *key, const char *want)
{
    const char *text = json_text(item, key, NULL);
    return text && !strcmp(text, want);
}

cJSON *nl_job_endpoint_changing(cJSON *project, const char *branch_id)
{
    cJSON *endpoint;
    cJSON_ArrayForEach(endpoint, nl_state_list(project, NL_ENDPOINTS))
        if (json_text(endpoint, NL_PENDING, NULL) &&
            (text_is(endpoint, "branch_id", branch_id) || text_is(endpoint, NL_FROM, branch_id)))
            return endpoint;
    return NULL;
}

/* What a branch still being made or restored needs of branch_id, or NULL. */
static char *branch_job_needing(const cJSON *other, const char *branch_id)
{
    const char *id = json_text(other, "id", NULL);
    const cJSON *restore = cJSON_GetObjectItemCaseSensitive(other, NL_RESTORE);
    if (!nl_state_is(other, NL_BRANCH_INIT) || !strcmp(id, branch_id))
        return NULL;
    if (restore && text_is(restore, "source_branch_id", branch_id))
        return xasprintf("branch %s is being restored from it", id);
    /* A preserved branch gets its files by a move, not by reading its parent. */
    if (restore || cJSON_GetObjectItemCaseSensitive(other, NL_PRESERVING) || !text_is(other, "parent_id", branch_id))
        return NULL;
    return nl_branch_is_snapshot(other) ? xasprintf("snapshot %s is being taken of it", id)
                                        : xasprintf("branch %s is being made from it", id);
}

char *nl_job_needing(cJSON *project, const char *branch_id)
{
    /* A deleted project is frozen until it is recovered or removed. */
    if (nl_state_flag(project, NL_DELETED))
        return xasprintf("project %s is deleted", json_text(project, "id", NULL));
    const cJSON *other;
    cJSON_ArrayForEach(other, nl_state_list(project, NL_BRANCHES)) {
        char *why = branch_job_needing(other, branch_id);
        if (why)
            return why;
    }
    const cJSON *endpoint = nl_job_endpoint_changing(project, branch_id);
    if (endpoint)
        return xasprintf("endpoint %s is being changed (%s)", json_text(endpoint, "id", NULL),
                         json_text(endpoint, NL_PENDING, NULL));
    return NULL;
}

int nl_job_is_needed(cJSON *project, const char *branch_id)
{
    char *why = nl_job_needing(project, branch_id);
    int needed = why != NULL;
    free(why);
    return needed;
}

int nl_job_refuse_if_needed(nl_response *error, cJSON *project, const cJSON *branch)
{
    char *why = nl_job_needing(project, json_text(branch, "id", NULL));
    if (!why)
        return 0;
    *error = nl_error(423, "", "%s %s has an operation in progress (%s); wait for it to finish",
                      nl_branch_is_snapshot(branch) ? "snapshot" : "branch", json_text(branch, "id", NULL), why);
    free(why);
    return -1;
}

int nl_job_readable_now(cJSON *project, const cJSON *branch)
{
    if (nl_branch_is_deleted(branch) || nl_state_flag(project, NL_DELETED))
        return 0;
    return nl_state_is(branch, NL_BRANCH_READY) && !nl_job_endpoint_changing(project, json_text(branch, "id", NULL));
}

int nl_job_failed_and_idle(cJSON *project, const cJSON *branch)
{
    const char *id = json_text(branch, "id", NULL);
    return nl_state_is(branch, NL_BRANCH_ERROR) && !nl_job_endpoint_changing(project, id) &&
           !nl_operations_running(project, id);
}
