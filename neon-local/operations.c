#include "operations.h"

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

nl_response nl_operations_list(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    if (!project)
        return nl_api_no_project(ids->project_id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "operations", cJSON_Duplicate(nl_state_list(project, NL_OPERATIONS), 1));
    return nl_json(200, body);
}
