/* projects: GET/POST /projects (recoverable=true: the deleted ones still
 * recoverable), GET /projects/shared, and GET, PATCH and DELETE
 * /projects/{project_id} (a deleted project is kept: recovery.h). */
#ifndef DRCTL_NL_PROJECTS_H
#define DRCTL_NL_PROJECTS_H

#include "api_internal.h"
#include "routes.h"

nl_response nl_projects_list(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_projects_shared(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_project_create(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_project_get(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_project_update(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_project_delete(nl_api *api, const nl_request *req, const nl_path_ids *ids);

#endif
