#include "branches.h"

#include "branchtime.h"
#include "buf.h"
#include "endpoints.h"
#include "ids.h"
#include "jobs.h"
#include "jsonfield.h"
#include "operations.h"
#include "postgres.h"
#include "recovery.h"
#include "roles.h"
#include "state.h"
#include "timefmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

cJSON *nl_branch_add(cJSON *project, const char *name, int is_default)
{
    char *id = nl_new_id("br"), *now = nl_now_text();
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "id", id);
    cJSON_AddStringToObject(b, "project_id", json_text(project, "id", NULL));
    cJSON_AddStringToObject(b, "name", name);
    nl_state_set_current(b, NL_BRANCH_INIT);
    cJSON_AddStringToObject(b, "state_changed_at", now);
    cJSON_AddStringToObject(b, "creation_source", "neon-local");
    cJSON_AddBoolToObject(b, "primary", is_default);
    cJSON_AddBoolToObject(b, "default", is_default);
    cJSON_AddFalseToObject(b, "protected");
    cJSON_AddNumberToObject(b, "cpu_used_sec", 0);
    cJSON_AddNumberToObject(b, "compute_time_seconds", 0);
    cJSON_AddNumberToObject(b, "active_time_seconds", 0);
    cJSON_AddNumberToObject(b, "written_data_bytes", 0);
    cJSON_AddNumberToObject(b, "data_transfer_bytes", 0);
    cJSON_AddStringToObject(b, "created_at", now);
    cJSON_AddStringToObject(b, "updated_at", now);
    cJSON_AddItemToArray(nl_state_list(project, NL_BRANCHES), b);
    free(id);
    free(now);
    return b;
}

int nl_branch_lookup(cJSON **project, cJSON **branch, nl_response *error, nl_api *api, const char *project_id,
                     const char *branch_id)
{
    *project = nl_state_live_project(api->state, project_id);
    *branch = nl_state_item_in(*project, NL_BRANCHES, branch_id);
    if (!*project)
        *error = nl_api_no_project(project_id);
    else if (!*branch)
        *error = nl_api_no_branch(project_id, branch_id);
    else if (!nl_state_is(*branch, NL_BRANCH_READY) || json_text(nl_endpoint_of(*project, branch_id), NL_PENDING, NULL))
        *error = nl_api_busy("branch", branch_id);
    else
        return 0;
    return -1;
}

/* A branch the branch views show (a snapshot is not one), or NULL. */
static cJSON *shown_branch(cJSON *project, const char *branch_id)
{
    cJSON *branch = nl_state_item_in(project, NL_BRANCHES, branch_id);
    return branch && !nl_branch_is_snapshot(branch) ? branch : NULL;
}

static cJSON *branch_body(const cJSON *branch, cJSON *ops)
{
    return nl_api_body("branch", nl_state_public_copy(branch), ops);
}

/* ---- create ------------------------------------------------------------------- */

/* 1 when the request's endpoints ask for one (read_write), 0 when not, -1
 * with *bad set when they are not what neon-local makes. */
static int wants_endpoint(nl_response *bad, const cJSON *endpoints)
{
    if (!endpoints)
        return 0;
    if (!cJSON_IsArray(endpoints) || cJSON_GetArraySize(endpoints) > 1) {
        *bad = nl_error(400, "", "endpoints must be a list of at most one {\"type\": \"read_write\"}");
        return -1;
    }
    const cJSON *e = cJSON_GetArrayItem(endpoints, 0);
    if (!e)
        return 0;
    const char *type = json_text(e, "type", NULL);
    if (!type || strcmp(type, "read_write") != 0) {
        *bad = nl_error(400, "", "neon-local makes read_write endpoints only");
        return -1;
    }
    return 1;
}

/* The checks of a create request's own fields, before its parent is read. */
static int valid_create_spec(nl_response *bad, double *due, const cJSON *spec)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(spec, "name");
    const cJSON *parent_id = cJSON_GetObjectItemCaseSensitive(spec, "parent_id");
    const cJSON *protect = cJSON_GetObjectItemCaseSensitive(spec, "protected");
    const cJSON *expires = cJSON_GetObjectItemCaseSensitive(spec, "expires_at");
    *due = 0;
    if (spec && !cJSON_IsObject(spec))
        *bad = nl_error(400, "", "branch must be an object");
    else if ((name && !cJSON_IsString(name)) || (parent_id && !cJSON_IsString(parent_id)))
        *bad = nl_error(400, "", "branch.name and branch.parent_id must be strings");
    else if (protect && !cJSON_IsBool(protect))
        *bad = nl_error(400, "", "branch.protected must be true or false");
    else if (expires && nl_parse_expires_at(due, bad, expires) != 0)
        return -1;
    else if (expires && cJSON_IsTrue(protect))
        *bad = nl_error(400, "", "a protected branch cannot expire: give expires_at or protected, not both");
    else
        return 0;
    return -1;
}

/* The parent a create request names (the default branch when none), ready
 * to be read and allowed to have children; -1 with *bad set when not. */
static int usable_parent(cJSON **parent, nl_response *bad, cJSON *project, const char *project_id,
                         const cJSON *spec)
{
    const char *parent_id = json_text(spec, "parent_id", NULL);
    *parent = parent_id ? nl_state_item_in(project, NL_BRANCHES, parent_id) : nl_branch_default(project);
    if (!*parent)
        *bad = nl_api_no_branch(project_id, parent_id ? parent_id : "(default)");
    else if (!nl_job_readable_now(project, *parent))
        *bad = nl_api_busy("branch", json_text(*parent, "id", NULL));
    else if (json_text(*parent, "expires_at", NULL))
        *bad = nl_error(400, "", "branch %s expires at %s, and an expiring branch cannot have child branches; remove "
                        "its expires_at first", json_text(*parent, "id", NULL), json_text(*parent, "expires_at", NULL));
    else
        return 0;
    return -1;
}

/* The new branch in the state, as the checked request asks. */
static cJSON *add_child(cJSON *project, const cJSON *parent, const cJSON *spec, const char *target, double due)
{
    const char *name = json_text(spec, "name", NULL);
    char *generated = name ? NULL : nl_new_id("br");
    cJSON *branch = nl_branch_add(project, name ? name : generated, 0);
    free(generated);
    char *now = nl_now_text();
    cJSON_AddStringToObject(branch, "parent_id", json_text(parent, "id", NULL));
    cJSON_AddStringToObject(branch, "parent_timestamp", json_text(spec, "parent_timestamp", now));
    if (json_text(spec, "parent_lsn", NULL))
        cJSON_AddStringToObject(branch, "parent_lsn", json_text(spec, "parent_lsn", NULL));
    if (target)
        cJSON_AddStringToObject(branch, NL_TARGET, target);
    const cJSON *protect = cJSON_GetObjectItemCaseSensitive(spec, "protected");
    if (protect)
        nl_state_set(branch, "protected", cJSON_CreateBool(cJSON_IsTrue(protect)));
    if (due > 0)
        nl_branch_set_expiry(branch, due);
    free(now);
    nl_state_inherit_roles_and_databases(project, json_text(parent, "id", NULL), json_text(branch, "id", NULL));
    return branch;
}

nl_response nl_branch_create(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    if (!project)
        return nl_api_no_project(ids->project_id);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(req->body, "branch");
    const char *name = json_text(spec, "name", NULL);
    nl_response bad;
    double due;
    cJSON *parent;
    char *target = NULL;
    if (valid_create_spec(&bad, &due, spec) != 0)
        return bad;
    int endpoint_wanted = wants_endpoint(&bad, cJSON_GetObjectItemCaseSensitive(req->body, "endpoints"));
    if (endpoint_wanted < 0 || usable_parent(&parent, &bad, project, ids->project_id, spec) != 0)
        return bad;
    if (name && nl_branch_named(project, name))
        return nl_error(409, "", "a branch named %s already exists in project %s", name, ids->project_id);
    if (nl_point_in_time(&target, &bad, project, parent, spec) != 0)
        return bad;
    int port = endpoint_wanted ? nl_free_port() : 0;
    cJSON *branch = add_child(project, parent, spec, target, due);
    free(target);
    const char *branch_id = json_text(branch, "id", NULL);
    cJSON *endpoint = endpoint_wanted ? nl_endpoint_add(project, branch, port) : NULL;
    cJSON *ops = cJSON_CreateArray();
    nl_operation_add(ops, project, "create_branch", branch_id, NULL);
    if (endpoint)
        nl_operation_add(ops, project, "start_compute", branch_id, json_text(endpoint, "id", NULL));
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "branch", nl_state_public_copy(branch));
    cJSON *endpoints = cJSON_AddArrayToObject(body, "endpoints");
    if (endpoint)
        cJSON_AddItemToArray(endpoints, nl_state_public_copy(endpoint));
    cJSON_AddItemToObject(body, "operations", ops);
    nl_access_add(body, project, branch_id, endpoint);
    return nl_api_queued(api, 201, body);
}

/* ---- read, update, delete ----------------------------------------------------------- */

/* The annotation the spec requires beside a branch read on its own:
 * neon-local keeps none, so it is the branch's, with no values. */
static cJSON *branch_annotation(const cJSON *branch)
{
    cJSON *annotation = cJSON_CreateObject();
    cJSON *object = cJSON_AddObjectToObject(annotation, "object");
    cJSON_AddStringToObject(object, "type", "console/branch");
    cJSON_AddStringToObject(object, "id", json_text(branch, "id", ""));
    cJSON_AddObjectToObject(annotation, "value");
    return annotation;
}

nl_response nl_branch_get(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    if (!project)
        return nl_api_no_project(ids->project_id);
    cJSON *branch = shown_branch(project, ids->branch_id);
    if (!branch)
        return nl_api_no_branch(ids->project_id, ids->branch_id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "branch", nl_state_public_copy(branch));
    cJSON_AddItemToObject(body, "annotation", branch_annotation(branch));
    return nl_json(200, body);
}

/* Neon's rules, on the branch as an update would leave it: an expiring
 * branch is never the default, protected or a parent. */
static int may_expire(nl_response *bad, cJSON *project, const cJSON *branch, const cJSON *protect,
                      const cJSON *expires)
{
    const char *branch_id = json_text(branch, "id", NULL);
    int will_expire = expires ? !cJSON_IsNull(expires) : json_text(branch, "expires_at", NULL) != NULL;
    int will_protect = protect ? cJSON_IsTrue(protect) : nl_state_flag(branch, "protected");
    const char *why = NULL;
    if (!will_expire)
        return 0;
    if (!expires && will_protect) {
        *bad = nl_error(400, "", "branch %s expires at %s, and an expiring branch cannot be protected; remove its "
                        "expires_at first", branch_id, json_text(branch, "expires_at", NULL));
        return -1;
    }
    if (nl_state_flag(branch, "default"))
        why = "it is the project's default branch";
    else if (will_protect)
        why = "it is protected";
    else if (nl_branch_has_children(project, branch_id))
        why = "it has child branches";
    if (!why)
        return 0;
    *bad = nl_error(400, "", "branch %s cannot expire: %s", branch_id, why);
    return -1;
}

/* A branch no operation is changing: ready, or failed with nothing left
 * running, and its endpoint not being changed. A job that only reads it
 * (a child being made from it) does not stop a rename or a protection. */
static int is_settled(cJSON *project, const cJSON *branch)
{
    const char *branch_id = json_text(branch, "id", NULL);
    if (!nl_state_is(branch, NL_BRANCH_READY) && !nl_job_failed_and_idle(project, branch))
        return 0;
    return !nl_operations_running(project, branch_id) && !json_text(nl_endpoint_of(project, branch_id), NL_PENDING, NULL);
}

/* PATCH .../branches/{id}: name, protected and expires_at (a time sets or
 * moves the expiration, null removes it, as the spec says). Everything is
 * checked before anything changes. */
nl_response nl_branch_update(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    cJSON *branch = shown_branch(project, ids->branch_id);
    if (!branch)
        return nl_api_no_branch(ids->project_id, ids->branch_id);
    if (!is_settled(project, branch))
        return nl_api_busy("branch", ids->branch_id);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(req->body, "branch");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(spec, "name");
    const cJSON *protect = cJSON_GetObjectItemCaseSensitive(spec, "protected");
    const cJSON *expires = cJSON_GetObjectItemCaseSensitive(spec, "expires_at");
    if (!cJSON_IsObject(spec) || (name && (!cJSON_IsString(name) || !name->valuestring[0])) ||
        (protect && !cJSON_IsBool(protect)))
        return nl_error(400, "", "the body must be {\"branch\": {\"name\": \"...\", \"protected\": true|false, "
                        "\"expires_at\": \"...\"|null}}");
    cJSON *other = name ? nl_branch_named(project, name->valuestring) : NULL;
    if (other && other != branch)
        return nl_error(409, "", "a branch named %s already exists in project %s", name->valuestring, ids->project_id);
    nl_response bad;
    double due = 0;
    if (expires && !cJSON_IsNull(expires) && nl_parse_expires_at(&due, &bad, expires) != 0)
        return bad;
    if (may_expire(&bad, project, branch, protect, expires) != 0)
        return bad;
    if (name)
        nl_state_set_text(branch, "name", name->valuestring);
    if (protect)
        nl_state_set(branch, "protected", cJSON_CreateBool(cJSON_IsTrue(protect)));
    if (expires && cJSON_IsNull(expires))
        nl_branch_clear_expiry(branch);
    else if (expires)
        nl_branch_set_expiry(branch, due);
    char *now = nl_now_text();
    nl_state_set_text(branch, "updated_at", now);
    free(now);
    return nl_api_saved(api, 200, branch_body(branch, NULL));
}

cJSON *nl_branch_start_deletion(cJSON *project, cJSON *branch)
{
    const char *branch_id = json_text(branch, "id", NULL);
    nl_state_set_current(branch, NL_BRANCH_DELETING);
    cJSON *ops = cJSON_CreateArray();
    cJSON *endpoint = nl_endpoint_of(project, branch_id);
    if (endpoint)
        nl_operation_add(ops, project, "suspend_compute", branch_id, json_text(endpoint, "id", NULL));
    nl_operation_add(ops, project, "delete_timeline", branch_id, NULL);
    return ops;
}

/* Why a branch may not be deleted (*error set, -1), or 0. */
static int refuse_deletion(nl_response *error, cJSON *project, const cJSON *branch)
{
    const char *branch_id = json_text(branch, "id", NULL);
    if (nl_state_flag(branch, "default"))
        *error = nl_error(400, "", "branch %s is the project's default branch and cannot be deleted; make another "
                          "branch the default first", branch_id);
    else if (nl_state_flag(branch, "protected"))
        *error = nl_error(400, "", "branch %s is protected and cannot be deleted", branch_id);
    /* Before the children: a child still being made is a job reading it. */
    else if (nl_job_refuse_if_needed(error, project, branch) != 0)
        return -1;
    else if (nl_branch_has_children(project, branch_id))
        *error = nl_error(400, "", "branch %s has child branches; delete them first", branch_id);
    else
        return 0;
    return -1;
}

/* hard_delete=true|false (false when absent); -1 with *bad set when it is neither. */
static int wants_hard_delete(int *hard, nl_response *bad, const cJSON *query)
{
    const char *text = json_text(query, "hard_delete", "false");
    *hard = !strcmp(text, "true");
    if (*hard || !strcmp(text, "false"))
        return 0;
    *bad = nl_error(400, "", "hard_delete %s: give true (deleted for good at once) or false (recoverable for 7 "
                    "days, the default)", text);
    return -1;
}

/* DELETE .../branches/{id}[?hard_delete=true]: the branch is kept,
 * recoverable for Neon's period (recovery.h), unless hard_delete asks it
 * gone at once with what is kept of its deleted descendants. A snapshot
 * (which the branch views never show) always goes at once. */
nl_response nl_branch_delete(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    cJSON *branch = nl_state_item_in(project, NL_BRANCHES, ids->branch_id);
    nl_response error;
    int hard;
    if (wants_hard_delete(&hard, &error, req->query) != 0)
        return error;
    /* A branch whose making failed is deleted as it is; any other must be ready. */
    if (!(branch && nl_job_failed_and_idle(project, branch)) &&
        nl_branch_lookup(&project, &branch, &error, api, ids->project_id, ids->branch_id) != 0)
        return error;
    if (refuse_deletion(&error, project, branch) != 0)
        return error;
    if (!hard && !nl_branch_is_snapshot(branch)) {
        cJSON *ops = nl_recovery_keep_branch(api, project, branch, NL_DELETED_BY_USER);
        return nl_api_queued(api, 200, nl_api_body("branch", nl_recovery_shown_branch(branch), ops));
    }
    nl_recovery_purge_descendants(project, ids->branch_id);
    cJSON *ops = nl_branch_start_deletion(project, branch);
    return nl_api_queued(api, 200, branch_body(branch, ops));
}

nl_response nl_branch_set_as_default(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    cJSON *project, *branch;
    nl_response error;
    if (nl_branch_lookup(&project, &branch, &error, api, ids->project_id, ids->branch_id) != 0)
        return error;
    if (json_text(branch, "expires_at", NULL))
        return nl_error(400, "", "branch %s expires at %s, and an expiring branch cannot be the default; remove its "
                        "expires_at first", ids->branch_id, json_text(branch, "expires_at", NULL));
    cJSON *b;
    cJSON_ArrayForEach(b, nl_state_list(project, NL_BRANCHES)) {
        nl_state_set(b, "default", cJSON_CreateBool(b == branch));
        nl_state_set(b, "primary", cJSON_CreateBool(b == branch));
    }
    return nl_api_saved(api, 200, branch_body(branch, NULL));
}

/* ---- expiry --------------------------------------------------------------------------- */

/* Whether a branch's expires_at has passed on the schedule clock and
 * nothing keeps it: it is settled (ready or failed), no job needs it, and
 * it is none of what the API never lets expire (the default, protected, a
 * parent), which only a state written some other way can hold: it is kept,
 * as DELETE would refuse it, and its children would lose their parent. */
static int is_due(cJSON *project, cJSON *branch, double now)
{
    const char *id = json_text(branch, "id", NULL), *expires = json_text(branch, "expires_at", NULL);
    double due;
    if (nl_branch_is_snapshot(branch) || !expires ||
        !(nl_state_is(branch, NL_BRANCH_READY) || nl_job_failed_and_idle(project, branch)) ||
        nl_job_is_needed(project, id) || timefmt_parse_timestamp(&due, expires) != 0 || due > now)
        return 0;
    return !nl_state_flag(branch, "default") && !nl_state_flag(branch, "protected") &&
           !nl_branch_has_children(project, id);
}

/* Expired branches are deleted as DELETE deletes them: kept, recoverable
 * for Neon's period (deletion_method ttl), their servers stopped. The
 * schedule clock makes --clock-speed rehearse TTLs as it does snapshot
 * retention. Returns 1 when it deleted one. */
static int expire_branches_of(nl_api *api, cJSON *project, double now)
{
    int any = 0;
    cJSON *branch = cJSON_GetObjectItemCaseSensitive(project, NL_BRANCHES)->child, *next;
    /* A deleted branch leaves the list: the next one is taken first. */
    for (; branch; branch = next) {
        next = branch->next;
        if (!is_due(project, branch, now))
            continue;
        fprintf(stderr, "neon-local: branch %s expired at %s: deleting it (recoverable)\n",
                json_text(branch, "id", NULL), json_text(branch, "expires_at", NULL));
        cJSON_Delete(nl_recovery_keep_branch(api, project, branch, NL_DELETED_BY_TTL));
        any = 1;
    }
    return any;
}

int nl_branches_expire(nl_api *api)
{
    double now = nl_api_schedule_now(api);
    int any = 0;
    cJSON *project;
    cJSON_ArrayForEach(project, nl_state_projects(api->state))
        if (!nl_state_flag(project, NL_DELETED) && nl_state_list(project, NL_BRANCHES))
            any |= expire_branches_of(api, project, now);
    if (any)
        nl_api_save(api);
    return any;
}
