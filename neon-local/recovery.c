#include "recovery.h"

/* Placeholder until deleted items are kept: nothing is recoverable yet. */
nl_response nl_project_recover(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)api, (void)req;
    return nl_error(404, "", "project %s is not recoverable", ids->project_id);
}

nl_response nl_branch_recover(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)api, (void)req;
    return nl_error(404, "", "branch %s is not recoverable", ids->branch_id);
}
