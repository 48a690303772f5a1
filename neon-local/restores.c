/* Restoring a branch in place (POST .../branches/{id}/restore), and a
 * snapshot restore taking its branch's place (finalize_restore): the
 * handlers branches.h declares for them. The work itself is the worker's
 * (jobs.c, provision.c). */
#include "branches.h"

#include "branchtime.h"
#include "buf.h"
#include "jobs.h"
#include "jsonfield.h"
#include "operations.h"
#include "state.h"
#include "timefmt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The checks of a restore request against the branch and its source
 * (preserve: its preserve_under_name, NULL when absent or empty). */
static int valid_restore(nl_response *error, cJSON *project, cJSON *branch, const cJSON *source,
                         const cJSON *preserve, const nl_request *req, const nl_path_ids *ids)
{
    int from_itself = source == branch;
    int in_the_past = cJSON_GetObjectItemCaseSensitive(req->body, "source_timestamp") ||
                      cJSON_GetObjectItemCaseSensitive(req->body, "source_lsn");
    if (from_itself && !in_the_past)
        *error = nl_error(400, "", "restoring a branch from itself needs source_timestamp or source_lsn");
    else if ((from_itself || nl_branch_has_children(project, ids->branch_id)) && !preserve)
        *error = nl_error(400, "", "preserve_under_name is required when a branch is restored from itself or has "
                          "child branches");
    else if (!nl_endpoint_port(nl_endpoint_of(project, ids->branch_id)))
        *error = nl_error(400, "", "neon-local restores branches that have an endpoint");
    else if (!from_itself && !nl_job_readable_now(project, source))
        *error = nl_api_busy("branch", json_text(source, "id", NULL));
    /* Its files are swapped for the source's: nothing may be reading them. */
    else if (nl_job_refuse_if_needed(error, project, branch) != 0)
        return -1;
    else if (preserve && nl_branch_named(project, preserve->valuestring))
        *error = nl_error(409, "", "a branch named %s already exists in project %s", preserve->valuestring,
                          ids->project_id);
    else
        return 0;
    return -1;
}

/* The same checks as a branch in the past, with the restore's names:
 * *target is the recovery target of source_timestamp / source_lsn. */
static int restore_target(char **target, nl_response *error, cJSON *project, const cJSON *source,
                          const cJSON *body)
{
    cJSON *as_branch = cJSON_CreateObject();
    const cJSON *when = cJSON_GetObjectItemCaseSensitive(body, "source_timestamp");
    const cJSON *lsn = cJSON_GetObjectItemCaseSensitive(body, "source_lsn");
    if (when)
        cJSON_AddItemToObject(as_branch, "parent_timestamp", cJSON_Duplicate(when, 1));
    if (lsn)
        cJSON_AddItemToObject(as_branch, "parent_lsn", cJSON_Duplicate(lsn, 1));
    int rc = nl_point_in_time(target, error, project, source, as_branch);
    cJSON_Delete(as_branch);
    if (rc) {
        nl_error_rename(error, "parent_timestamp", "source_timestamp");
        nl_error_rename(error, "parent_lsn", "source_lsn");
    }
    return rc;
}

/* The previous state becomes a branch of its own, data only, waiting for
 * the restore to move the files into it; the children follow it. */
static cJSON *add_preserved(cJSON *project, const cJSON *branch, const char *name)
{
    const char *branch_id = json_text(branch, "id", NULL);
    cJSON *kept = nl_branch_add(project, name, 0);
    const char *kept_id = json_text(kept, "id", NULL);
    cJSON_AddStringToObject(kept, NL_PRESERVING, branch_id);
    if (json_text(branch, "parent_id", NULL))
        cJSON_AddStringToObject(kept, "parent_id", json_text(branch, "parent_id", NULL));
    nl_state_inherit_roles_and_databases(project, branch_id, kept_id);
    cJSON *child;
    cJSON_ArrayForEach(child, nl_state_list(project, NL_BRANCHES)) {
        const char *parent = json_text(child, "parent_id", NULL);
        if (child != kept && parent && !strcmp(parent, branch_id))
            nl_state_set_text(child, "parent_id", kept_id);
    }
    return kept;
}

/* A reset from the parent starts the TTL again with the interval the
 * branch was given (ttl_interval_seconds, which does not change). */
static void restart_ttl(cJSON *branch, const char *source_id)
{
    const cJSON *ttl = cJSON_GetObjectItemCaseSensitive(branch, "ttl_interval_seconds");
    const char *parent = json_text(branch, "parent_id", NULL);
    if (!json_text(branch, "expires_at", NULL) || !cJSON_IsNumber(ttl) || !parent || strcmp(parent, source_id))
        return;
    char due[48];
    timefmt_format_utc(due, sizeof due, floor(timefmt_now()) + ttl->valuedouble);
    nl_state_set_text(branch, "expires_at", due);
}

/* POST .../branches/{id}/restore: the branch gets the state of
 * source_branch_id (at its head, or at source_timestamp / source_lsn),
 * keeping its id and its endpoint; its previous state is kept as a new
 * branch named preserve_under_name when asked (required when the branch
 * restores from itself or has children), which becomes the parent of the
 * branch and of its children. Deleting that backup is then refused, as on
 * Neon, while the restored branch is its child. */
nl_response nl_branch_restore(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    cJSON *project, *branch;
    nl_response error;
    if (nl_branch_lookup(&project, &branch, &error, api, ids->project_id, ids->branch_id) != 0)
        return error;
    const char *source_id = json_text(req->body, "source_branch_id", NULL);
    const cJSON *preserve = cJSON_GetObjectItemCaseSensitive(req->body, "preserve_under_name");
    if (!source_id)
        return nl_error(400, "", "source_branch_id is required");
    if (preserve && !cJSON_IsString(preserve))
        return nl_error(400, "", "preserve_under_name must be a string");
    if (preserve && !preserve->valuestring[0])
        preserve = NULL; /* the spec: the previous state is kept "if not empty" */
    cJSON *source = nl_state_item_in(project, NL_BRANCHES, source_id);
    char *target = NULL;
    if (!source)
        return nl_api_no_branch(ids->project_id, source_id);
    if (valid_restore(&error, project, branch, source, preserve, req, ids) != 0 ||
        restore_target(&target, &error, project, source, req->body) != 0)
        return error;
    cJSON *spec = cJSON_CreateObject();
    cJSON_AddStringToObject(spec, "source_branch_id", source_id);
    if (target)
        cJSON_AddStringToObject(spec, "target", target);
    free(target);
    const cJSON *kept = preserve ? add_preserved(project, branch, preserve->valuestring) : NULL;
    if (kept)
        cJSON_AddStringToObject(spec, "preserved_id", json_text(kept, "id", NULL));
    restart_ttl(branch, source_id);
    /* As on Neon, the backup becomes the parent of the restored branch
     * (undoing the restore is a reset from the parent), after the TTL has
     * been checked against the parent the reset is from. */
    if (kept)
        nl_state_set_text(branch, "parent_id", json_text(kept, "id", NULL));
    cJSON_AddItemToObject(branch, NL_RESTORE, spec);
    nl_state_set_current(branch, NL_BRANCH_INIT);
    cJSON *ops = cJSON_CreateArray();
    nl_operation_add(ops, project, "create_timeline", ids->branch_id, NULL);
    nl_operation_add(ops, project, "start_compute", ids->branch_id,
                     json_text(nl_endpoint_of(project, ids->branch_id), "id", NULL));
    return nl_api_queued(api, 200, nl_api_body("branch", nl_state_public_copy(branch), ops));
}

/* The name the original keeps: the one asked, or "<name>-old-<UTC stamp>". */
static char *name_for_original(const cJSON *original, const cJSON *name)
{
    if (name)
        return xstrdup(name->valuestring);
    char stamp[32];
    time_t now = (time_t)timefmt_now();
    struct tm tm;
    strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", gmtime_r(&now, &tm));
    return xasprintf("%s-old-%s", json_text(original, "name", NULL), stamp);
}

/* The restored branch takes the original's name and default flag; the
 * original is renamed old_name. */
static void swap_names(cJSON *restored, cJSON *original, const char *old_name)
{
    nl_state_set_text(restored, "name", json_text(original, "name", NULL));
    nl_state_set_text(original, "name", old_name);
    if (nl_state_flag(original, "default")) {
        nl_state_set(restored, "default", cJSON_CreateTrue());
        nl_state_set(restored, "primary", cJSON_CreateTrue());
        nl_state_set(original, "default", cJSON_CreateFalse());
        nl_state_set(original, "primary", cJSON_CreateFalse());
    }
}

/* One read_write endpoint a branch: the restored branch's own goes, and
 * the original's moves to it (the worker starts its server on the
 * original's port). */
static void move_endpoint(cJSON *ops, cJSON *project, const char *branch_id, const char *original_id)
{
    cJSON *moving = nl_endpoint_of(project, original_id);
    if (!moving)
        return;
    cJSON *own = nl_endpoint_of(project, branch_id);
    if (own) {
        cJSON_DetachItemViaPointer(nl_state_list(project, NL_ENDPOINTS), own);
        cJSON_Delete(own);
    }
    nl_state_set_text(moving, "branch_id", branch_id);
    nl_state_set_text(moving, NL_FROM, original_id);
    nl_state_set_text(moving, NL_PENDING, "move");
    nl_operation_add(ops, project, "start_compute", branch_id, json_text(moving, "id", NULL));
}

/* The original a restored branch was made for, and the checks before it
 * takes its place. */
static int finalizable(cJSON **original, nl_response *error, nl_api *api, cJSON *project, cJSON *restored,
                       const nl_request *req, const nl_path_ids *ids)
{
    const char *original_id = json_text(restored, NL_RESTORE_OF, NULL);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(req->body, "name");
    if (!original_id) {
        *error = nl_error(400, "", "branch %s was not made by a snapshot restore with finalize_restore false; there "
                          "is nothing to finalize", ids->branch_id);
        return -1;
    }
    if (nl_branch_lookup(&project, original, error, api, ids->project_id, original_id) != 0)
        return -1;
    /* The original's server stops and the restored one's moves to its port. */
    if (nl_job_refuse_if_needed(error, project, restored) != 0 || nl_job_refuse_if_needed(error, project, *original) != 0)
        return -1;
    if (nl_state_flag(*original, "default") && json_text(restored, "expires_at", NULL))
        *error = nl_error(400, "", "branch %s expires at %s and would become the default branch, which cannot "
                          "expire; remove its expires_at first", ids->branch_id, json_text(restored, "expires_at", NULL));
    else if (name && (!cJSON_IsString(name) || !name->valuestring[0]))
        *error = nl_error(400, "", "name must be a non-empty string");
    else
        return 0;
    return -1;
}

/* POST .../branches/{id}/finalize_restore {name}: a branch restored from a
 * snapshot takes the place of the branch it was restored for: that
 * branch's name, default flag and endpoint (host and port, so its
 * connection string) move to it; the original stays, renamed. */
nl_response nl_branch_finalize_restore(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    cJSON *project, *restored, *original;
    nl_response error;
    if (nl_branch_lookup(&project, &restored, &error, api, ids->project_id, ids->branch_id) != 0 ||
        finalizable(&original, &error, api, project, restored, req, ids) != 0)
        return error;
    char *old_name = name_for_original(original, cJSON_GetObjectItemCaseSensitive(req->body, "name"));
    if (nl_branch_named(project, old_name)) {
        nl_response r = nl_error(409, "", "a branch named %s already exists in project %s", old_name,
                                 ids->project_id);
        free(old_name);
        return r;
    }
    swap_names(restored, original, old_name);
    free(old_name);
    cJSON_DeleteItemFromObjectCaseSensitive(restored, NL_RESTORE_OF);
    cJSON *ops = cJSON_CreateArray();
    move_endpoint(ops, project, ids->branch_id, json_text(original, "id", NULL));
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "operations", ops);
    return nl_api_queued(api, 200, body);
}
