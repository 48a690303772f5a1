/* schema: a branch database's schema (pg_dump --schema-only) and its
 * comparison with another branch's. */
#ifndef DRCTL_NL_SCHEMA_H
#define DRCTL_NL_SCHEMA_H

#include "api_internal.h"
#include "routes.h"

nl_response nl_branch_schema_get(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_branch_schema_compare(nl_api *api, const nl_request *req, const nl_path_ids *ids);

#endif
