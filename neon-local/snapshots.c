#include "snapshots.h"

#include "branches.h"
#include "branchtime.h"
#include "buf.h"
#include "ids.h"
#include "jobs.h"
#include "jsonfield.h"
#include "operations.h"
#include "state.h"
#include "timefmt.h"

#include <stdlib.h>
#include <string.h>

cJSON *nl_snapshot_add(cJSON *project, const cJSON *source, const nl_snapshot_spec *spec)
{
    const char *source_id = json_text(source, "id", NULL);
    cJSON *snap = nl_branch_add(project, spec->name, 0);
    cJSON_AddTrueToObject(snap, NL_SNAPSHOT);
    if (spec->scheduled)
        cJSON_AddTrueToObject(snap, NL_SCHEDULED);
    cJSON_AddStringToObject(snap, "parent_id", source_id);
    cJSON_AddStringToObject(snap, "parent_timestamp", spec->timestamp ? spec->timestamp : json_text(snap, "created_at", ""));
    if (spec->lsn)
        cJSON_AddStringToObject(snap, "parent_lsn", spec->lsn);
    if (spec->target)
        cJSON_AddStringToObject(snap, NL_TARGET, spec->target);
    if (spec->expires_at)
        cJSON_AddStringToObject(snap, NL_EXPIRES_AT, spec->expires_at);
    nl_state_inherit_roles_and_databases(project, source_id, json_text(snap, "id", NULL));
    return snap;
}

/* A snapshot as the API shows it. */
static cJSON *snapshot_json(const cJSON *hidden)
{
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "id", json_text(hidden, "id", NULL));
    cJSON_AddStringToObject(s, "name", json_text(hidden, "name", NULL));
    cJSON_AddStringToObject(s, "source_branch_id", json_text(hidden, "parent_id", NULL));
    cJSON_AddStringToObject(s, "timestamp", json_text(hidden, "parent_timestamp", NULL));
    if (json_text(hidden, "parent_lsn", NULL))
        cJSON_AddStringToObject(s, "lsn", json_text(hidden, "parent_lsn", NULL));
    cJSON_AddStringToObject(s, "created_at", json_text(hidden, "created_at", NULL));
    if (json_text(hidden, NL_EXPIRES_AT, NULL))
        cJSON_AddStringToObject(s, "expires_at", json_text(hidden, NL_EXPIRES_AT, NULL));
    cJSON_AddBoolToObject(s, "manual", !nl_state_flag(hidden, NL_SCHEDULED));
    return s;
}

/* A snapshot the API shows: one being deleted is gone. */
static int is_shown_snapshot(const cJSON *branch)
{
    return nl_branch_is_snapshot(branch) && !nl_state_is(branch, NL_BRANCH_DELETING);
}

/* expires_at of a take request, normalised to UTC in *normal ("" for none);
 * -1 when it is not a time in the future. */
static int snapshot_expiry(char normal[48], const char *expires)
{
    double t;
    normal[0] = '\0';
    if (!expires)
        return 0;
    if (timefmt_parse_timestamp(&t, expires) != 0 || t <= timefmt_now())
        return -1;
    timefmt_format_utc(normal, 48, t);
    return 0;
}

/* POST .../branches/{id}/snapshot?name=&timestamp=&lsn=&expires_at= : a
 * data-only copy of the branch, now or at an instant of its history. */
nl_response nl_snapshot_create(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    cJSON *source = nl_state_item_in(project, NL_BRANCHES, ids->branch_id);
    const char *timestamp = json_text(req->query, "timestamp", NULL), *lsn = json_text(req->query, "lsn", NULL);
    char expires[48];
    if (!source || nl_branch_is_snapshot(source))
        return nl_api_no_branch(ids->project_id, ids->branch_id);
    if (!nl_job_readable_now(project, source))
        return nl_api_busy("branch", ids->branch_id);
    if (snapshot_expiry(expires, json_text(req->query, "expires_at", NULL)) != 0)
        return nl_error(400, "", "expires_at must be a time in the future, like 2026-02-01T00:00:00Z");
    cJSON *when = cJSON_CreateObject();
    if (timestamp)
        cJSON_AddStringToObject(when, "parent_timestamp", timestamp);
    if (lsn)
        cJSON_AddStringToObject(when, "parent_lsn", lsn);
    char *target = NULL;
    nl_response bad;
    int checked = nl_point_in_time(&target, &bad, project, source, when);
    cJSON_Delete(when);
    if (checked != 0)
        return bad;
    char *generated = nl_new_id("snap"), *now = nl_now_text();
    nl_snapshot_spec spec = { json_text(req->query, "name", generated), timestamp ? timestamp : now, lsn, target,
                              expires[0] ? expires : NULL, 0 };
    cJSON *snap = nl_snapshot_add(project, source, &spec);
    free(generated);
    free(now);
    free(target);
    cJSON *ops = cJSON_CreateArray();
    nl_operation_add(ops, project, "create_branch", json_text(snap, "id", NULL), NULL);
    return nl_api_queued(api, 200, nl_api_body("snapshot", snapshot_json(snap), ops));
}

nl_response nl_snapshots_list(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    if (!project)
        return nl_api_no_project(ids->project_id);
    cJSON *body = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(body, "snapshots");
    cJSON *b;
    cJSON_ArrayForEach(b, nl_state_list(project, NL_BRANCHES))
        if (is_shown_snapshot(b))
            cJSON_AddItemToArray(list, snapshot_json(b));
    return nl_json(200, body);
}

/* The snapshot a request names, or -1 with the 404 answer in *error. */
static int find_snapshot(cJSON **project, cJSON **snap, nl_response *error, nl_api *api, const nl_path_ids *ids)
{
    *project = nl_state_live_project(api->state, ids->project_id);
    *snap = nl_state_item_in(*project, NL_BRANCHES, ids->snapshot_id);
    if (*snap && is_shown_snapshot(*snap))
        return 0;
    *error = nl_error(404, "", "snapshot %s not found in project %s", ids->snapshot_id, ids->project_id);
    return -1;
}

nl_response nl_snapshot_rename(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    cJSON *project, *snap;
    nl_response error;
    if (find_snapshot(&project, &snap, &error, api, ids) != 0)
        return error;
    const char *name = json_text(cJSON_GetObjectItemCaseSensitive(req->body, "snapshot"), "name", NULL);
    if (!name || !*name)
        return nl_error(400, "", "the body must be {\"snapshot\": {\"name\": \"...\"}}");
    nl_state_set_text(snap, "name", name);
    return nl_api_saved(api, 200, nl_api_body("snapshot", snapshot_json(snap), NULL));
}

nl_response nl_snapshot_delete(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    cJSON *project, *snap;
    nl_response error;
    if (find_snapshot(&project, &snap, &error, api, ids) != 0)
        return error;
    if (!nl_state_is(snap, NL_BRANCH_READY) && !nl_job_failed_and_idle(project, snap))
        return nl_error(423, "", "snapshot %s is still being taken", ids->snapshot_id);
    if (nl_job_refuse_if_needed(&error, project, snap) != 0)
        return error;
    nl_state_set_current(snap, NL_BRANCH_DELETING);
    cJSON *ops = cJSON_CreateArray();
    nl_operation_add(ops, project, "delete_timeline", ids->snapshot_id, NULL);
    return nl_api_queued(api, 202, nl_api_body("snapshot", snapshot_json(snap), ops));
}

/* finalize_restore true: the target branch restored in place from the
 * snapshot, its previous state kept under name or "<target>-old". */
static nl_response restore_in_place(nl_api *api, const nl_request *req, const nl_path_ids *ids, cJSON *project,
                                    const char *name, const char *target_id)
{
    cJSON *target = nl_state_item_in(project, NL_BRANCHES, target_id);
    if (!target || nl_branch_is_snapshot(target))
        return nl_api_no_branch(ids->project_id, target_id);
    char *kept = name ? xstrdup(name) : xasprintf("%s-old", json_text(target, "name", NULL));
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "source_branch_id", ids->snapshot_id);
    cJSON_AddStringToObject(body, "preserve_under_name", kept);
    free(kept);
    nl_request as_restore = *req;
    as_restore.body = body;
    nl_path_ids on_target = *ids;
    on_target.branch_id = target_id;
    nl_response r = nl_branch_restore(api, &as_restore, &on_target);
    cJSON_Delete(body);
    return r;
}

/* finalize_restore false: a new branch made from the snapshot, with an
 * endpoint; finalize_restore on it later takes target_id's place. */
static nl_response restore_as_branch(nl_api *api, const nl_request *req, const nl_path_ids *ids, cJSON *project,
                                     const char *name, const char *target_id)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *branch = cJSON_AddObjectToObject(body, "branch");
    cJSON_AddStringToObject(branch, "parent_id", ids->snapshot_id);
    if (name)
        cJSON_AddStringToObject(branch, "name", name);
    cJSON *rw = cJSON_CreateObject();
    cJSON_AddStringToObject(rw, "type", "read_write");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(body, "endpoints"), rw);
    nl_request as_branch = *req;
    as_branch.body = body;
    char *restored_for = xstrdup(target_id);
    nl_response r = nl_branch_create(api, &as_branch, ids);
    cJSON_Delete(body);
    if (r.status == 201) { /* the new branch is the last one */
        cJSON *branches = nl_state_list(project, NL_BRANCHES);
        cJSON_AddStringToObject(cJSON_GetArrayItem(branches, cJSON_GetArraySize(branches) - 1), NL_RESTORE_OF,
                                restored_for);
        nl_api_save(api);
        r.status = 200; /* a restore answers 200, though it makes the branch as a create does */
    }
    free(restored_for);
    return r;
}

/* POST .../snapshots/{id}/restore {name, target_branch_id, finalize_restore}:
 * a new branch made from the snapshot, or, finalized into a target branch,
 * that branch restored in place from it (its id and connection string
 * kept). The target is, as on Neon, the branch the snapshot was taken of
 * unless another is named. */
nl_response nl_snapshot_restore(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    cJSON *project, *snap;
    nl_response error;
    if (find_snapshot(&project, &snap, &error, api, ids) != 0)
        return error;
    if (!nl_state_is(snap, NL_BRANCH_READY))
        return nl_error(423, "", "snapshot %s is still being taken", ids->snapshot_id);
    const char *name = json_text(req->body, "name", json_text(req->query, "name", NULL));
    const char *target_id = json_text(req->body, "target_branch_id", json_text(snap, "parent_id", NULL));
    if (nl_state_flag(req->body, "finalize_restore"))
        return restore_in_place(api, req, ids, project, name, target_id);
    return restore_as_branch(api, req, ids, project, name, target_id);
}

/* A snapshot whose expiry has passed on the schedule clock goes, unless
 * it is not settled yet (ready or failed) or a branch being restored from
 * it still needs it. */
static int expire_snapshot(cJSON *project, cJSON *snap, void *context)
{
    const double *now = context;
    double due;
    const char *expires = json_text(snap, NL_EXPIRES_AT, NULL);
    if (!nl_branch_is_snapshot(snap) || !expires ||
        !(nl_state_is(snap, NL_BRANCH_READY) || nl_job_failed_and_idle(project, snap)) ||
        timefmt_parse_timestamp(&due, expires) != 0 || due > *now || nl_job_is_needed(project, json_text(snap, "id", NULL)))
        return 0;
    nl_state_set_current(snap, NL_BRANCH_DELETING);
    nl_operation_new(project, "delete_timeline", json_text(snap, "id", NULL), NULL);
    return 1;
}

int nl_snapshots_expire(nl_api *api)
{
    return nl_api_sweep_branches(api, expire_snapshot);
}
