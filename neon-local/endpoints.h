/* endpoints: the computes of branches (one read_write endpoint a branch,
 * its server on 127.0.0.1:PORT, reached by Neon's clients at the
 * endpoint's own address, its host, on port 5432: proxy.h): list, get,
 * create, delete, start and suspend. A change is written into the state
 * and done by the worker (jobs.h). */
#ifndef DRCTL_NL_ENDPOINTS_H
#define DRCTL_NL_ENDPOINTS_H

#include "api_internal.h"
#include "routes.h"

/* A new endpoint of branch, its server on port, at the end of the
 * project's list; its host is a loopback address of its own (proxy.h). */
cJSON *nl_endpoint_add(cJSON *project, const cJSON *branch, int port);

nl_response nl_endpoints_list(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_branch_endpoints_list(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_endpoint_get(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_endpoint_create(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_endpoint_delete(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_endpoint_start(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_endpoint_suspend(nl_api *api, const nl_request *req, const nl_path_ids *ids);

#endif
