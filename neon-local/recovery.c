#include "recovery.h"

#include "ids.h"
#include "jsonfield.h"
#include "operations.h"
#include "branchtime.h"
#include "state.h"
#include "timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- keeping what is deleted ---------------------------------------------------------- */

/* {deleted_at, recoverable_until} on the schedule clock, with the
 * deletion_method when given (a branch's recovery info; a project shows the
 * first two among its own fields). */
static cJSON *recovery_times(const nl_api *api, const char *method)
{
    double now = nl_api_schedule_now(api);
    char deleted_at[48], until[48];
    timefmt_format_utc(deleted_at, sizeof deleted_at, now);
    timefmt_format_utc(until, sizeof until, now + NL_RECOVERY_SECONDS);
    cJSON *info = cJSON_CreateObject();
    cJSON_AddStringToObject(info, "deleted_at", deleted_at);
    cJSON_AddStringToObject(info, "recoverable_until", until);
    if (method)
        cJSON_AddStringToObject(info, "deletion_method", method);
    return info;
}

cJSON *nl_recovery_keep_branch(nl_api *api, cJSON *project, cJSON *branch, const char *method)
{
    const char *branch_id = json_text(branch, "id", NULL);
    cJSON *ops = cJSON_CreateArray();
    cJSON *endpoint = nl_endpoint_of(project, branch_id);
    if (endpoint)
        nl_operation_add(ops, project, "suspend_compute", branch_id, json_text(endpoint, "id", NULL));
    nl_operation_add(ops, project, "delete_timeline", branch_id, NULL);
    nl_state_keep_branch(project, branch, recovery_times(api, method));
    return ops;
}

void nl_recovery_keep_project(nl_api *api, cJSON *project, cJSON *ops)
{
    cJSON *times = recovery_times(api, NULL);
    nl_state_set_text(project, "deleted_at", json_text(times, "deleted_at", NULL));
    nl_state_set_text(project, "recoverable_until", json_text(times, "recoverable_until", NULL));
    cJSON_Delete(times);
    nl_state_set(project, NL_DELETED, cJSON_CreateTrue());
    cJSON *endpoint;
    cJSON_ArrayForEach(endpoint, nl_state_list(project, NL_ENDPOINTS)) {
        if (nl_state_is(endpoint, NL_ENDPOINT_IDLE))
            continue;
        nl_state_set_text(endpoint, NL_PENDING, "suspend");
        nl_operation_add(ops, project, "suspend_compute", json_text(endpoint, "branch_id", NULL),
                         json_text(endpoint, "id", NULL));
    }
}

/* A deleted branch, not yet being removed, whose parent is branch_id, or NULL. */
static cJSON *kept_child_of(cJSON *project, const char *branch_id)
{
    cJSON *kept;
    cJSON_ArrayForEach(kept, nl_state_list(project, NL_KEPT_BRANCHES)) {
        const char *parent = json_text(kept, "parent_id", NULL);
        if (!nl_state_flag(kept, NL_PURGING) && parent && !strcmp(parent, branch_id))
            return kept;
    }
    return NULL;
}

void nl_recovery_purge_descendants(cJSON *project, const char *branch_id)
{
    cJSON *child;
    /* Each one found is marked, so the next search finds the next. */
    while ((child = kept_child_of(project, branch_id)) != NULL) {
        nl_state_set(child, NL_PURGING, cJSON_CreateTrue());
        nl_recovery_purge_descendants(project, json_text(child, "id", NULL));
    }
}

cJSON *nl_recovery_shown_branch(const cJSON *kept)
{
    cJSON *shown = nl_state_public_copy(kept);
    cJSON_AddItemToObject(shown, "recovery", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(kept, NL_RECOVERY), 1));
    return shown;
}

/* ---- the end of the period -------------------------------------------------------------- */

/* Whether a recoverable_until has passed on the schedule clock. */
static int period_over(const char *until, double now)
{
    double due;
    return until && timefmt_parse_timestamp(&due, until) == 0 && due <= now;
}

/* The project's deleted branches whose period is over go to the worker. */
static int expire_kept_branches(cJSON *project, double now)
{
    int any = 0;
    cJSON *kept;
    cJSON_ArrayForEach(kept, nl_state_list(project, NL_KEPT_BRANCHES)) {
        const cJSON *info = cJSON_GetObjectItemCaseSensitive(kept, NL_RECOVERY);
        if (nl_state_flag(kept, NL_PURGING) || !period_over(json_text(info, "recoverable_until", NULL), now))
            continue;
        fprintf(stderr, "neon-local: deleted branch %s was recoverable until %s: removing its data\n",
                json_text(kept, "id", NULL), json_text(info, "recoverable_until", NULL));
        nl_state_set(kept, NL_PURGING, cJSON_CreateTrue());
        nl_recovery_purge_descendants(project, json_text(kept, "id", NULL));
        any = 1;
    }
    return any;
}

/* A deleted project whose period is over goes for good: every branch of
 * it, deleted ones too, is handed to the worker, which forgets the project
 * once the last is removed. */
static int expire_project(cJSON *project, double now)
{
    if (!nl_state_flag(project, NL_DELETED) || nl_state_flag(project, NL_PURGING) ||
        !period_over(json_text(project, "recoverable_until", NULL), now))
        return 0;
    fprintf(stderr, "neon-local: deleted project %s was recoverable until %s: removing its data\n",
            json_text(project, "id", NULL), json_text(project, "recoverable_until", NULL));
    nl_state_set(project, NL_PURGING, cJSON_CreateTrue());
    cJSON *branch;
    cJSON_ArrayForEach(branch, nl_state_list(project, NL_BRANCHES))
        nl_state_set_current(branch, NL_BRANCH_DELETING);
    cJSON_ArrayForEach(branch, nl_state_list(project, NL_KEPT_BRANCHES))
        nl_state_set(branch, NL_PURGING, cJSON_CreateTrue());
    return 1;
}

int nl_recovery_expire(nl_api *api)
{
    double now = nl_api_schedule_now(api);
    int any = 0;
    cJSON *project;
    cJSON_ArrayForEach(project, nl_state_projects(api->state)) {
        any |= expire_kept_branches(project, now);
        any |= expire_project(project, now);
    }
    if (any)
        nl_api_save(api);
    return any;
}

/* ---- bringing back ------------------------------------------------------------------------ */

typedef struct address_use {
    const cJSON *endpoint;  /* the one coming back */
    const cJSON *taken_by;  /* another endpoint on its host or its server's port, or NULL */
} address_use;

static void note_same_address(cJSON *other, void *context)
{
    address_use *use = context;
    const char *host = json_text(use->endpoint, "host", "");
    int port = nl_endpoint_port(use->endpoint);
    if (other == use->endpoint || use->taken_by)
        return;
    if ((port && nl_endpoint_port(other) == port) || (*host && !strcmp(json_text(other, "host", ""), host)))
        use->taken_by = other;
}

/* 409 when another endpoint took the host or the server port of an
 * endpoint coming back while it was deleted: its old connection strings
 * would reach that one. */
static int refuse_taken_address(nl_response *error, nl_api *api, const cJSON *endpoints)
{
    const cJSON *endpoint;
    cJSON_ArrayForEach(endpoint, endpoints) {
        address_use use = { endpoint, NULL };
        nl_state_each_endpoint(api->state, note_same_address, &use);
        if (use.taken_by) {
            *error = nl_error(409, "", "endpoint %s cannot come back: endpoint %s took its host %s or its port %d "
                              "meanwhile; delete that endpoint first", json_text(endpoint, "id", NULL),
                              json_text(use.taken_by, "id", NULL), json_text(endpoint, "host", ""),
                              nl_endpoint_port(endpoint));
            return -1;
        }
    }
    return 0;
}

/* Why a deleted project cannot come back (*error, -1), or 0. */
static int refuse_project_recovery(nl_response *error, nl_api *api, cJSON *project, const char *project_id)
{
    const cJSON *endpoint;
    if (!project)
        *error = nl_error(404, "", "project %s is not recoverable: no project has that id (deleted projects are "
                          "listed by GET /projects?recoverable=true)", project_id);
    else if (!nl_state_flag(project, NL_DELETED))
        *error = nl_error(404, "", "project %s is not recoverable: it is not deleted", project_id);
    else if (nl_state_flag(project, NL_PURGING))
        *error = nl_error(404, "", "project %s is not recoverable: its recovery period ended at %s", project_id,
                          json_text(project, "recoverable_until", ""));
    else {
        cJSON_ArrayForEach(endpoint, nl_state_list(project, NL_ENDPOINTS)) {
            if (json_text(endpoint, NL_PENDING, NULL)) {
                *error = nl_api_busy("endpoint", json_text(endpoint, "id", NULL));
                return -1;
            }
        }
        return refuse_taken_address(error, api, nl_state_list(project, NL_ENDPOINTS));
    }
    return -1;
}

/* POST /projects/{id}/recover: the project comes back as it was, ids,
 * endpoints (idle) and connection strings; its branches deleted before it
 * stay deleted, each with its own period. Answers {project, branches}. */
nl_response nl_project_recover(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    cJSON *project = nl_state_any_project(api->state, ids->project_id);
    nl_response error;
    if (refuse_project_recovery(&error, api, project, ids->project_id) != 0)
        return error;
    cJSON_DeleteItemFromObjectCaseSensitive(project, NL_DELETED);
    cJSON_DeleteItemFromObjectCaseSensitive(project, "deleted_at");
    cJSON_DeleteItemFromObjectCaseSensitive(project, "recoverable_until");
    fprintf(stderr, "neon-local: project %s recovered\n", ids->project_id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "project", nl_state_public_copy(project));
    cJSON *branches = cJSON_AddArrayToObject(body, "branches");
    const cJSON *branch;
    cJSON_ArrayForEach(branch, nl_state_list(project, NL_BRANCHES))
        if (!nl_branch_is_snapshot(branch))
            cJSON_AddItemToArray(branches, nl_state_public_copy(branch));
    return nl_api_saved(api, 200, body);
}

/* Why a deleted branch cannot come back (*error, -1), or 0. */
static int refuse_branch_recovery(nl_response *error, nl_api *api, cJSON *project, const cJSON *kept,
                                  const nl_path_ids *ids)
{
    const char *parent_id = json_text(kept, "parent_id", NULL), *name = json_text(kept, "name", "");
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(kept, NL_RECOVERY);
    const cJSON *held = cJSON_GetObjectItemCaseSensitive(kept, NL_KEPT);
    if (nl_state_item_in(project, NL_BRANCHES, ids->branch_id))
        *error = nl_error(404, "", "branch %s is not recoverable: it is not deleted", ids->branch_id);
    else if (!kept)
        *error = nl_error(404, "", "branch %s is not recoverable: project %s has no deleted branch with that id "
                          "(GET .../branches?include_deleted=true lists them)", ids->branch_id, ids->project_id);
    else if (nl_state_flag(kept, NL_PURGING))
        *error = nl_error(404, "", "branch %s is not recoverable: its recovery period ended at %s", ids->branch_id,
                          json_text(info, "recoverable_until", ""));
    else if (nl_state_flag(kept, NL_STOPPING))
        *error = nl_error(423, "", "branch %s is still being deleted (its server is being stopped); wait for its "
                          "operations to finish", ids->branch_id);
    else if (parent_id && nl_state_kept_branch(project, parent_id))
        *error = nl_error(409, "", "branch %s cannot be recovered while its parent branch %s is deleted; recover "
                          "%s first", ids->branch_id, parent_id, parent_id);
    else if (parent_id && !nl_state_item_in(project, NL_BRANCHES, parent_id))
        *error = nl_error(409, "", "branch %s cannot be recovered: its parent branch %s is gone for good",
                          ids->branch_id, parent_id);
    else if (nl_branch_named(project, name))
        *error = nl_error(409, "", "branch %s cannot be recovered: a branch named %s was made in project %s since "
                          "it was deleted; rename or delete that one first", ids->branch_id, name, ids->project_id);
    else
        return refuse_taken_address(error, api, cJSON_GetObjectItemCaseSensitive(held, "endpoints"));
    return -1;
}

/* POST /projects/{id}/branches/{id}/recover: the branch comes back with its
 * id, roles, databases and endpoints (idle, on their host and port, so the
 * old connection strings serve once started), without its expires_at.
 * Answers {branch, endpoints}. */
nl_response nl_branch_recover(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    cJSON *project = nl_state_any_project(api->state, ids->project_id);
    if (!project)
        return nl_api_no_project(ids->project_id);
    if (nl_state_flag(project, NL_DELETED))
        return nl_error(409, "", "branch %s cannot be recovered while project %s is deleted; recover the project "
                        "first (POST /projects/%s/recover)", ids->branch_id, ids->project_id, ids->project_id);
    cJSON *kept = nl_state_kept_branch(project, ids->branch_id);
    nl_response error;
    if (refuse_branch_recovery(&error, api, project, kept, ids) != 0)
        return error;
    cJSON *branch = nl_state_bring_back_branch(project, kept);
    nl_branch_clear_expiry(branch);
    char *now = nl_now_text();
    nl_state_set_text(branch, "updated_at", now);
    free(now);
    fprintf(stderr, "neon-local: branch %s recovered\n", ids->branch_id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "branch", nl_state_public_copy(branch));
    cJSON *endpoints = cJSON_AddArrayToObject(body, "endpoints");
    const cJSON *endpoint;
    cJSON_ArrayForEach(endpoint, nl_state_list(project, NL_ENDPOINTS))
        if (!strcmp(json_text(endpoint, "branch_id", ""), ids->branch_id))
            cJSON_AddItemToArray(endpoints, nl_state_public_copy(endpoint));
    return nl_api_saved(api, 200, body);
}
