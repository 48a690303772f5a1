/* recovery: deleted projects and branches kept for Neon's recovery period
 * on neon-local's clock, listed on request and brought back with the same
 * ids and connection strings. */
#ifndef DRCTL_NL_RECOVERY_H
#define DRCTL_NL_RECOVERY_H

#include "api_internal.h"
#include "routes.h"

nl_response nl_project_recover(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_branch_recover(nl_api *api, const nl_request *req, const nl_path_ids *ids);

#endif
