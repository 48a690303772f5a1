#include "endpoints.h"

#include "branches.h"
#include "err.h"
#include "ids.h"
#include "jobs.h"
#include "jsonfield.h"
#include "operations.h"
#include "postgres.h"
#include "proxy.h"
#include "state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The endpoint's own address (proxy.h), where neonctl's connection
 * strings go; one that resolves nowhere when none is free. */
static void claim_host(char host[NL_ADDRESS_MAX], const char *id)
{
    if (nl_proxy_claim(host) != 0) {
        fprintf(stderr, "neon-local: endpoint %s has no address of its own: %s\n", id, err_last());
        snprintf(host, NL_ADDRESS_MAX, "%s", "");
    }
}

cJSON *nl_endpoint_add(cJSON *project, const cJSON *branch, int port)
{
    char *id = nl_new_id("ep"), *now = nl_now_text();
    char host[NL_ADDRESS_MAX];
    claim_host(host, id);
    const char *shown = *host ? host : NL_PROXY_NO_ADDRESS;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "id", id);
    cJSON_AddStringToObject(e, "host", shown);
    cJSON_AddStringToObject(e, "project_id", json_text(project, "id", NULL));
    cJSON_AddStringToObject(e, "branch_id", json_text(branch, "id", NULL));
    cJSON_AddNumberToObject(e, "autoscaling_limit_min_cu", 0.25);
    cJSON_AddNumberToObject(e, "autoscaling_limit_max_cu", 0.25);
    cJSON_AddStringToObject(e, "region_id", "local");
    cJSON_AddStringToObject(e, "type", "read_write");
    nl_state_set_current(e, NL_ENDPOINT_INIT);
    cJSON_AddObjectToObject(e, "settings");
    cJSON_AddFalseToObject(e, "pooler_enabled");
    cJSON_AddStringToObject(e, "pooler_mode", "transaction");
    cJSON_AddFalseToObject(e, "disabled");
    cJSON_AddFalseToObject(e, "passwordless_access");
    cJSON_AddStringToObject(e, "creation_source", "neon-local");
    cJSON_AddStringToObject(e, "created_at", now);
    cJSON_AddStringToObject(e, "updated_at", now);
    cJSON_AddStringToObject(e, "proxy_host", shown);
    cJSON_AddNumberToObject(e, "suspend_timeout_seconds", 0);
    cJSON_AddStringToObject(e, "provisioner", "k8s-neonvm");
    cJSON_AddNumberToObject(e, NL_PORT, port);
    cJSON_AddItemToArray(nl_state_list(project, NL_ENDPOINTS), e);
    free(id);
    free(now);
    return e;
}

nl_response nl_endpoints_list(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    return nl_api_list_items(api, ids->project_id, NULL, NL_ENDPOINTS, "endpoints");
}

nl_response nl_branch_endpoints_list(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    return nl_api_list_items(api, ids->project_id, ids->branch_id, NL_ENDPOINTS, "endpoints");
}

nl_response nl_endpoint_get(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    cJSON *endpoint = nl_state_item_in(project, NL_ENDPOINTS, ids->endpoint_id);
    if (!endpoint)
        return nl_error(404, "", "endpoint %s not found", ids->endpoint_id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "endpoint", nl_state_public_copy(endpoint));
    return nl_json(200, body);
}

/* The endpoint a request names and its branch, when no job changes either
 * (a server started or stopped on files being copied would spoil the
 * copy); -1 with the 404 or 423 answer in *error. */
static int idle_endpoint(cJSON **project, cJSON **endpoint, nl_response *error, nl_api *api,
                         const nl_path_ids *ids)
{
    *project = nl_state_live_project(api->state, ids->project_id);
    *endpoint = nl_state_item_in(*project, NL_ENDPOINTS, ids->endpoint_id);
    if (!*endpoint) {
        *error = nl_error(404, "", "endpoint %s not found in project %s", ids->endpoint_id, ids->project_id);
        return -1;
    }
    cJSON *branch = nl_state_item_in(*project, NL_BRANCHES, json_text(*endpoint, "branch_id", NULL));
    if (json_text(*endpoint, NL_PENDING, NULL) || (branch && !nl_state_is(branch, NL_BRANCH_READY))) {
        *error = nl_api_busy("endpoint", ids->endpoint_id);
        return -1;
    }
    return branch ? nl_job_refuse_if_needed(error, *project, branch) : 0;
}

/* Leaves the change (NL_PENDING) to the worker; answers {endpoint, operations: [action]}. */
static nl_response queue_change(nl_api *api, cJSON *project, cJSON *endpoint, const char *change,
                                const char *action, unsigned status)
{
    nl_state_set_text(endpoint, NL_PENDING, change);
    cJSON *ops = cJSON_CreateArray();
    nl_operation_add(ops, project, action, json_text(endpoint, "branch_id", NULL), json_text(endpoint, "id", NULL));
    return nl_api_queued(api, status, nl_api_body("endpoint", nl_state_public_copy(endpoint), ops));
}

/* POST .../endpoints/{id}/start | suspend: an endpoint already there is
 * answered as it is, with no operation. */
static nl_response start_or_suspend(nl_api *api, const nl_path_ids *ids, int starting)
{
    cJSON *project, *endpoint;
    nl_response error;
    /* A branch that is gone or not ready counts as busy here, not as missing. */
    if (idle_endpoint(&project, &endpoint, &error, api, ids) != 0)
        return error;
    if (!nl_state_item_in(project, NL_BRANCHES, json_text(endpoint, "branch_id", NULL)))
        return nl_api_busy("endpoint", ids->endpoint_id);
    if (nl_state_is(endpoint, starting ? NL_ENDPOINT_ACTIVE : NL_ENDPOINT_IDLE)) {
        cJSON *body = nl_api_body("endpoint", nl_state_public_copy(endpoint), NULL);
        return nl_json(200, body);
    }
    return queue_change(api, project, endpoint, starting ? "start" : "suspend",
                        starting ? "start_compute" : "suspend_compute", 200);
}

nl_response nl_endpoint_start(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    return start_or_suspend(api, ids, 1);
}

nl_response nl_endpoint_suspend(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    return start_or_suspend(api, ids, 0);
}

/* POST /projects/{id}/endpoints {endpoint: {branch_id, type}}: a compute for
 * a branch that has none (a data-only branch gets a server of its own). */
nl_response nl_endpoint_create(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(req->body, "endpoint");
    const char *branch_id = json_text(spec, "branch_id", NULL), *type = json_text(spec, "type", NULL);
    if (!cJSON_IsObject(spec) || !branch_id || !type)
        return nl_error(400, "", "the body must be {\"endpoint\": {\"branch_id\": \"...\", \"type\": \"read_write\"}}");
    if (strcmp(type, "read_write") != 0)
        return nl_error(400, "", "endpoint type %s: neon-local serves read_write endpoints only", type);
    cJSON *project, *branch;
    nl_response error;
    if (nl_branch_lookup(&project, &branch, &error, api, ids->project_id, branch_id) != 0)
        return error;
    if (nl_branch_is_snapshot(branch))
        return nl_api_no_branch(ids->project_id, branch_id);
    if (nl_endpoint_of(project, branch_id))
        return nl_error(409, "", "branch %s already has a read_write endpoint", branch_id);
    /* A server started on files being copied would spoil the copy. */
    if (nl_job_refuse_if_needed(&error, project, branch) != 0)
        return error;
    cJSON *endpoint = nl_endpoint_add(project, branch, nl_free_port());
    return queue_change(api, project, endpoint, "create", "start_compute", 201);
}

/* DELETE /projects/{id}/endpoints/{endpoint}: the server stops, the branch
 * keeps its data. */
nl_response nl_endpoint_delete(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    cJSON *project, *endpoint;
    nl_response error;
    if (idle_endpoint(&project, &endpoint, &error, api, ids) != 0)
        return error;
    return queue_change(api, project, endpoint, "delete", "suspend_compute", 200);
}
