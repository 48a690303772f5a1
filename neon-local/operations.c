#include "operations.h"

#include "cursor.h"
#include "ids.h"
#include "jsonfield.h"
#include "server.h"
#include "state.h"
#include "timefmt.h"

#include <stdlib.h>
#include <string.h>

cJSON *nl_operation_new(cJSON *project, const char *action, const char *branch_id, const char *endpoint_id)
{
    char *id = nl_new_uuid(), *now = nl_now_text();
    cJSON *op = cJSON_CreateObject();
    cJSON_AddStringToObject(op, "id", id);
    cJSON_AddStringToObject(op, "project_id", json_text(project, "id", NULL));
    if (branch_id)
        cJSON_AddStringToObject(op, "branch_id", branch_id);
    if (endpoint_id)
        cJSON_AddStringToObject(op, "endpoint_id", endpoint_id);
    cJSON_AddStringToObject(op, "action", action);
    cJSON_AddStringToObject(op, "status", NL_OPERATION_RUNNING);
    cJSON_AddNumberToObject(op, "failures_count", 0);
    cJSON_AddStringToObject(op, "created_at", now);
    cJSON_AddStringToObject(op, "updated_at", now);
    cJSON_AddNumberToObject(op, "total_duration_ms", 0);
    cJSON_AddItemToArray(nl_state_list(project, NL_OPERATIONS), op);
    free(id);
    free(now);
    return op;
}

void nl_operation_add(cJSON *ops, cJSON *project, const char *action, const char *branch_id, const char *endpoint_id)
{
    cJSON_AddItemToArray(ops, cJSON_Duplicate(nl_operation_new(project, action, branch_id, endpoint_id), 1));
}

/* A running operation of that branch. */
static int runs_on(const cJSON *op, const char *branch_id)
{
    const char *status = json_text(op, "status", NULL), *on = json_text(op, "branch_id", NULL);
    return status && on && !strcmp(status, NL_OPERATION_RUNNING) && !strcmp(on, branch_id);
}

void nl_operations_finish(cJSON *project, const char *branch_id, const char *error)
{
    cJSON *op;
    char *now = nl_now_text();
    cJSON_ArrayForEach(op, nl_state_list(project, NL_OPERATIONS)) {
        if (!runs_on(op, branch_id))
            continue;
        double started = 0, ended = 0;
        timefmt_parse_timestamp(&started, json_text(op, "created_at", NULL));
        timefmt_parse_timestamp(&ended, now);
        nl_state_set_text(op, "status", error ? NL_OPERATION_FAILED : NL_OPERATION_FINISHED);
        nl_state_set_text(op, "updated_at", now);
        nl_state_set(op, "total_duration_ms", cJSON_CreateNumber((ended - started) * 1000));
        if (error)
            cJSON_AddStringToObject(op, "error", error);
    }
    free(now);
}

int nl_operations_running(cJSON *project, const char *branch_id)
{
    const cJSON *op;
    cJSON_ArrayForEach(op, nl_state_list(project, NL_OPERATIONS))
        if (runs_on(op, branch_id))
            return 1;
    return 0;
}

nl_response nl_operation_get(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    if (!project)
        return nl_api_no_project(ids->project_id);
    cJSON *op = nl_state_item_in(project, NL_OPERATIONS, ids->operation_id);
    if (!op)
        return nl_error(404, "", "operation %s not found in project %s", ids->operation_id, ids->project_id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "operation", cJSON_Duplicate(op, 1));
    return nl_json(200, body);
}

/* Pages of GET .../operations: every operation unless a limit is given;
 * 1000 at most, as on Neon. */
#define MAX_OPERATION_PAGE 1000

/* Where the page after a cursor starts: right after the cursor's operation
 * (a project's operations are only ever added to, so its place stays).
 * -1 when the cursor is not one this server gave for this project. */
static int operation_page_start(size_t *start, const cJSON *ops, const char *cursor)
{
    char *key, *id;
    *start = 0;
    if (!cursor || !*cursor)
        return 0;
    if (nl_cursor_decode(&key, &id, cursor) != 0)
        return -1;
    size_t i = 0;
    int found = 0;
    const cJSON *op;
    cJSON_ArrayForEach(op, ops) {
        i++;
        if (!strcmp(json_text(op, "id", ""), id) && !strcmp(json_text(op, "created_at", ""), key)) {
            found = 1;
            break;
        }
    }
    free(key);
    free(id);
    *start = i;
    return found ? 0 : -1;
}

/* {operations: the page, pagination: {cursor: its last operation}};
 * pagination only when the page has one, as a cursor is never empty. */
static cJSON *operation_page(const cJSON *ops, size_t start, long limit)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *page = cJSON_AddArrayToObject(body, "operations");
    const cJSON *op, *last = NULL;
    size_t i = 0;
    cJSON_ArrayForEach(op, ops) {
        if (i++ < start)
            continue;
        if (limit > 0 && cJSON_GetArraySize(page) >= limit)
            break;
        cJSON_AddItemToArray(page, cJSON_Duplicate(op, 1));
        last = op;
    }
    if (last) {
        char *cursor = nl_cursor_encode(json_text(last, "created_at", ""), json_text(last, "id", ""));
        cJSON_AddStringToObject(cJSON_AddObjectToObject(body, "pagination"), "cursor", cursor);
        free(cursor);
    }
    return body;
}

/* GET /projects/{id}/operations?limit=&cursor= */
nl_response nl_operations_list(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    if (!project)
        return nl_api_no_project(ids->project_id);
    const char *limit_text = json_text(req->query, "limit", NULL), *cursor = json_text(req->query, "cursor", NULL);
    const cJSON *ops = nl_state_list(project, NL_OPERATIONS);
    long limit;
    size_t start;
    if (nl_cursor_limit(&limit, limit_text, 0, MAX_OPERATION_PAGE) != 0)
        return nl_error(400, "", "limit %s: give a whole number from 1 to %d", limit_text, MAX_OPERATION_PAGE);
    if (operation_page_start(&start, ops, cursor) != 0)
        return nl_error(400, "", "cursor %s is not one this server gave for project %s; pass pagination.cursor from "
                        "the previous page as it is", cursor, ids->project_id);
    return nl_json(200, operation_page(ops, start, limit));
}
