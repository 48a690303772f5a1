/* operations: what each change did, as Neon's operations show it: running
 * while the worker does it, then finished or failed. */
#ifndef DRCTL_NL_OPERATIONS_H
#define DRCTL_NL_OPERATIONS_H

#include "api_internal.h"
#include "routes.h"

/* A new running operation in the project's list (endpoint_id may be NULL). */
cJSON *nl_operation_new(cJSON *project, const char *action, const char *branch_id, const char *endpoint_id);

/* nl_operation_new, and a copy of it added to ops: what the answer shows. */
void nl_operation_add(cJSON *ops, cJSON *project, const char *action, const char *branch_id, const char *endpoint_id);

/* Ends the running operations of a branch: failed with error, or finished
 * (error NULL), with their durations. */
void nl_operations_finish(cJSON *project, const char *branch_id, const char *error);

/* Whether an operation of the branch is still running. */
int nl_operations_running(cJSON *project, const char *branch_id);

/* GET /projects/{project_id}/operations and .../operations/{operation_id} */
nl_response nl_operations_list(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_operation_get(nl_api *api, const nl_request *req, const nl_path_ids *ids);

#endif
