#include "projects.h"

#include "branches.h"
#include "buf.h"
#include "endpoints.h"
#include "err.h"
#include "ids.h"
#include "jsonfield.h"
#include "operations.h"
#include "postgres.h"
#include "roles.h"
#include "state.h"

#include <stdlib.h>
#include <string.h>

/* The history a new project keeps for points in time: 7 days, as on Neon. */
#define DEFAULT_HISTORY_RETENTION_SECONDS 604800
#define MAX_HISTORY_RETENTION_SECONDS 2592000

static cJSON *project_body(const cJSON *project)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "project", nl_state_public_copy(project));
    return body;
}

nl_response nl_projects_list(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req, (void)ids;
    cJSON *list = cJSON_CreateArray();
    cJSON *project;
    cJSON_ArrayForEach(project, nl_state_projects(api->state))
        if (!nl_state_flag(project, NL_DELETED))
            cJSON_AddItemToArray(list, nl_state_public_copy(project));
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "projects", list);
    return nl_json(200, body);
}

/* Nobody shares projects with a local key. */
nl_response nl_projects_shared(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)api, (void)req, (void)ids;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddArrayToObject(body, "projects");
    return nl_json(200, body);
}

static cJSON *make_project(const char *name, double retention)
{
    char *id = nl_new_id(""), *now = nl_now_text();
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "id", id);
    cJSON_AddStringToObject(p, "platform_id", "neon-local");
    cJSON_AddStringToObject(p, "region_id", "local");
    cJSON_AddStringToObject(p, "name", name ? name : id);
    cJSON_AddNumberToObject(p, "pg_version", 15);
    cJSON_AddStringToObject(p, "proxy_host", "127.0.0.1");
    cJSON_AddNumberToObject(p, "branch_logical_size_limit", 0);
    cJSON_AddNumberToObject(p, "branch_logical_size_limit_bytes", 0);
    cJSON_AddTrueToObject(p, "store_passwords");
    cJSON_AddNumberToObject(p, "cpu_used_sec", 0);
    cJSON_AddStringToObject(p, "provisioner", "k8s-neonvm");
    cJSON_AddStringToObject(p, "creation_source", "neon-local");
    cJSON_AddNumberToObject(p, "history_retention_seconds", retention);
    cJSON_AddStringToObject(p, "created_at", now);
    cJSON_AddStringToObject(p, "updated_at", now);
    cJSON_AddStringToObject(p, "owner_id", "neon-local");
    cJSON_AddStringToObject(p, "consumption_period_start", now);
    cJSON_AddStringToObject(p, "consumption_period_end", now);
    cJSON_AddNumberToObject(p, "active_time_seconds", 0);
    cJSON_AddNumberToObject(p, "compute_time_seconds", 0);
    cJSON_AddNumberToObject(p, "written_data_bytes", 0);
    cJSON_AddNumberToObject(p, "data_transfer_bytes", 0);
    cJSON_AddNumberToObject(p, "data_storage_bytes_hour", 0);
    cJSON_AddObjectToObject(p, "settings");
    cJSON_AddObjectToObject(p, "default_endpoint_settings");
    static const char *const lists[] = { NL_BRANCHES, NL_ENDPOINTS, NL_ROLES, NL_DATABASES, NL_OPERATIONS };
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++)
        cJSON_AddArrayToObject(p, lists[i]);
    free(id);
    free(now);
    return p;
}

/* Checks a project's name and history_retention_seconds (create, update). */
static int valid_project_fields(nl_response *bad, const cJSON *spec)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(spec, "name");
    const cJSON *retention = cJSON_GetObjectItemCaseSensitive(spec, "history_retention_seconds");
    if (!cJSON_IsObject(spec)) {
        *bad = nl_error(400, "", "the body must be {\"project\": {...}}");
        return -1;
    }
    if (name && (!cJSON_IsString(name) || !name->valuestring[0])) {
        *bad = nl_error(400, "", "project.name must be a non-empty string");
        return -1;
    }
    if (retention && (!cJSON_IsNumber(retention) || retention->valuedouble < 0 ||
                      retention->valuedouble > MAX_HISTORY_RETENTION_SECONDS)) {
        *bad = nl_error(400, "", "history_retention_seconds must be between 0 and 2592000 (30 days)");
        return -1;
    }
    return 0;
}

/* A new project with its main branch, endpoint, owner role and database,
 * waiting for the worker; the operations that shows go to ops. */
static cJSON *new_project(cJSON *ops, const cJSON *spec, int port)
{
    const char *name = json_text(spec, "name", NULL);
    double retention = json_number(spec, "history_retention_seconds", DEFAULT_HISTORY_RETENTION_SECONDS);
    cJSON *project = make_project(name, retention);
    cJSON *branch = nl_branch_add(project, "main", 1);
    const char *branch_id = json_text(branch, "id", NULL);
    cJSON *endpoint = nl_endpoint_add(project, branch, port);
    char *password = nl_new_password();
    nl_role_add(project, branch_id, "neondb_owner", password);
    nl_database_add(project, branch_id, "neondb", "neondb_owner");
    free(password);
    nl_operation_add(ops, project, "create_timeline", branch_id, NULL);
    nl_operation_add(ops, project, "start_compute", branch_id, json_text(endpoint, "id", NULL));
    return project;
}

nl_response nl_project_create(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)ids;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(req->body, "project");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(spec, "pg_version");
    nl_response bad;
    if (valid_project_fields(&bad, spec) != 0)
        return bad;
    if (version && (!cJSON_IsNumber(version) || version->valueint != 15))
        return nl_error(400, "", "neon-local runs PostgreSQL 15 only: pg_version must be 15");
    int port = nl_free_port();
    if (port < 0)
        return nl_error(500, "", "no free port for the project's endpoint");
    cJSON *ops = cJSON_CreateArray();
    cJSON *project = new_project(ops, spec, port);
    cJSON_AddItemToArray(nl_state_projects(api->state), project);
    if (nl_api_save(api) != 0) {
        /* Not saved, so not made: the state stays as it was. */
        cJSON_DetachItemViaPointer(nl_state_projects(api->state), project);
        cJSON_Delete(project);
        cJSON_Delete(ops);
        return nl_error(500, "", "cannot save neon-local's state: %s", err_last());
    }
    cJSON *branch = cJSON_GetArrayItem(nl_state_list(project, NL_BRANCHES), 0);
    cJSON *endpoint = cJSON_GetArrayItem(nl_state_list(project, NL_ENDPOINTS), 0);
    cJSON *body = project_body(project);
    nl_access_add(body, project, json_text(branch, "id", NULL), endpoint);
    cJSON_AddItemToObject(body, "operations", ops);
    cJSON_AddItemToObject(body, "branch", nl_state_public_copy(branch));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(body, "endpoints"), nl_state_public_copy(endpoint));
    nl_api_wake_worker(api);
    return nl_json(201, body);
}

nl_response nl_project_get(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    if (!project)
        return nl_api_no_project(ids->project_id);
    return nl_json(200, project_body(project));
}

nl_response nl_project_update(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    if (!project)
        return nl_api_no_project(ids->project_id);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(req->body, "project");
    nl_response bad;
    if (valid_project_fields(&bad, spec) != 0)
        return bad;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(spec, "name");
    const cJSON *retention = cJSON_GetObjectItemCaseSensitive(spec, "history_retention_seconds");
    if (name)
        nl_state_set_text(project, "name", name->valuestring);
    if (retention)
        nl_state_set(project, "history_retention_seconds", cJSON_CreateNumber(retention->valuedouble));
    char *now = nl_now_text();
    nl_state_set_text(project, "updated_at", now);
    free(now);
    return nl_api_saved(api, 200, nl_api_body("project", nl_state_public_copy(project), NULL));
}

/* 423 while a branch or endpoint of the project is still being changed. */
static int refuse_if_busy(nl_response *error, cJSON *project)
{
    cJSON *branch, *endpoint;
    cJSON_ArrayForEach(branch, nl_state_list(project, NL_BRANCHES)) {
        if (!nl_state_is(branch, NL_BRANCH_READY) && !nl_state_is(branch, NL_BRANCH_ERROR)) {
            *error = nl_api_busy("branch", json_text(branch, "id", NULL));
            return -1;
        }
    }
    cJSON_ArrayForEach(endpoint, nl_state_list(project, NL_ENDPOINTS)) {
        if (json_text(endpoint, NL_PENDING, NULL)) {
            *error = nl_api_busy("endpoint", json_text(endpoint, "id", NULL));
            return -1;
        }
    }
    return 0;
}

/* DELETE /projects/{id}: gone for the API at once; its servers are stopped
 * and its data removed in the background. */
nl_response nl_project_delete(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    nl_response error;
    if (!project)
        return nl_api_no_project(ids->project_id);
    if (refuse_if_busy(&error, project) != 0)
        return error;
    cJSON *branch;
    cJSON_ArrayForEach(branch, nl_state_list(project, NL_BRANCHES))
        nl_state_set_current(branch, NL_BRANCH_DELETING);
    cJSON_AddTrueToObject(project, NL_DELETED);
    if (cJSON_GetArraySize(nl_state_list(project, NL_BRANCHES)) > 0)
        return nl_api_queued(api, 200, project_body(project));
    /* Nothing for the worker to clean up: it goes now. */
    cJSON_DetachItemViaPointer(nl_state_projects(api->state), project);
    cJSON *body = project_body(project);
    cJSON_Delete(project);
    nl_api_save(api);
    return nl_json(200, body);
}
