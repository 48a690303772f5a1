#include "projects.h"

#include "branches.h"
#include "buf.h"
#include "cursor.h"
#include "endpoints.h"
#include "err.h"
#include "ids.h"
#include "jsonfield.h"
#include "operations.h"
#include "postgres.h"
#include "recovery.h"
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

/* Pages of GET /projects: 10 projects by default, 400 at most, as on Neon. */
#define DEFAULT_PROJECT_PAGE 10
#define MAX_PROJECT_PAGE 400

/* Listed oldest first, by created_at then id: a total order a cursor can
 * name a place in. */
static int compare_project_keys(const char *key_a, const char *id_a, const char *key_b, const char *id_b)
{
    int c = strcmp(key_a, key_b);
    return c ? c : strcmp(id_a, id_b);
}

static int compare_projects(const void *x, const void *y)
{
    const cJSON *a = *(const cJSON *const *)x, *b = *(const cJSON *const *)y;
    return compare_project_keys(json_text(a, "created_at", ""), json_text(a, "id", ""), json_text(b, "created_at", ""),
                                json_text(b, "id", ""));
}

/* Neon's search: part of the name or of the id, any case. */
static int project_matches(const cJSON *project, const char *search)
{
    return !search || !*search || strcasestr(json_text(project, "name", ""), search) ||
           strcasestr(json_text(project, "id", ""), search);
}

/* A project GET /projects shows: a live one, or with recoverable=true a
 * deleted one still in its recovery period (only those). */
static int listed(const cJSON *project, int recoverable)
{
    if (!nl_state_flag(project, NL_DELETED))
        return !recoverable;
    return recoverable && !nl_state_flag(project, NL_PURGING);
}

/* The projects search selects, sorted (caller frees the array, not the
 * items). */
static cJSON **select_projects(size_t *count, nl_api *api, const char *search, int recoverable)
{
    cJSON *all = nl_state_projects(api->state);
    cJSON **list = xcalloc((size_t)cJSON_GetArraySize(all) + 1, sizeof *list);
    size_t n = 0;
    cJSON *project;
    cJSON_ArrayForEach(project, all)
        if (listed(project, recoverable) && project_matches(project, search))
            list[n++] = project;
    qsort(list, n, sizeof *list, compare_projects);
    *count = n;
    return list;
}

/* A project as the list shows it (ProjectListItem): active_time is the
 * wall-clock time its endpoints were active, which getProject calls
 * active_time_seconds. */
static cJSON *project_list_item(const cJSON *project)
{
    cJSON *item = nl_state_public_copy(project);
    cJSON_AddNumberToObject(item, "active_time", json_number(project, "active_time_seconds", 0));
    return item;
}

/* {projects: the page, pagination: {cursor: its last project}, applications,
 * integrations}; pagination only when the page has a project, as a cursor
 * is never empty. neon-local installs no applications or integrations. */
static cJSON *project_page(cJSON **list, size_t start, size_t end)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *projects = cJSON_AddArrayToObject(body, "projects");
    for (size_t i = start; i < end; i++)
        cJSON_AddItemToArray(projects, project_list_item(list[i]));
    if (end > start) {
        char *cursor = nl_cursor_encode(json_text(list[end - 1], "created_at", ""), json_text(list[end - 1], "id", ""));
        cJSON_AddStringToObject(cJSON_AddObjectToObject(body, "pagination"), "cursor", cursor);
        free(cursor);
    }
    cJSON_AddObjectToObject(body, "applications");
    cJSON_AddObjectToObject(body, "integrations");
    return body;
}

/* Where the page after a cursor starts: past every project up to and
 * including the cursor's, by key. -1 when the cursor is not one this
 * server gave. */
static int project_page_start(size_t *start, cJSON **list, size_t n, const char *cursor)
{
    char *key, *id;
    *start = 0;
    if (!cursor || !*cursor)
        return 0;
    if (nl_cursor_decode(&key, &id, cursor) != 0)
        return -1;
    while (*start < n && compare_project_keys(json_text(list[*start], "created_at", ""),
                                              json_text(list[*start], "id", ""), key, id) <= 0)
        (*start)++;
    free(key);
    free(id);
    return 0;
}

/* GET /projects?search=&limit=&cursor=&recoverable= */
nl_response nl_projects_list(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)ids;
    const char *limit_text = json_text(req->query, "limit", NULL), *cursor = json_text(req->query, "cursor", NULL);
    const char *recoverable = json_text(req->query, "recoverable", "false");
    long limit;
    size_t n, start;
    if (nl_cursor_limit(&limit, limit_text, DEFAULT_PROJECT_PAGE, MAX_PROJECT_PAGE) != 0)
        return nl_error(400, "", "limit %s: give a whole number from 1 to %d", limit_text, MAX_PROJECT_PAGE);
    if (strcmp(recoverable, "true") && strcmp(recoverable, "false"))
        return nl_error(400, "", "recoverable %s: give true (only deleted projects still recoverable) or false",
                        recoverable);
    cJSON **list = select_projects(&n, api, json_text(req->query, "search", NULL), !strcmp(recoverable, "true"));
    nl_response answer;
    if (project_page_start(&start, list, n, cursor) != 0)
        answer = nl_error(400, "", "cursor %s is not one this server gave; pass pagination.cursor from the "
                          "previous page as it is", cursor);
    else
        answer = nl_json(200, project_page(list, start, start + (size_t)limit < n ? start + (size_t)limit : n));
    free(list);
    return answer;
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

/* DELETE /projects/{id}: gone for the API at once, kept recoverable for
 * Neon's period (recovery.h): its endpoints are suspended, its data stays. */
nl_response nl_project_delete(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    nl_response error;
    if (!project)
        return nl_api_no_project(ids->project_id);
    if (refuse_if_busy(&error, project) != 0)
        return error;
    /* The spec's answer is the project alone: the suspends show in its
     * operations list. */
    cJSON *ops = cJSON_CreateArray();
    nl_recovery_keep_project(api, project, ops);
    cJSON_Delete(ops);
    return nl_api_queued(api, 200, project_body(project));
}
