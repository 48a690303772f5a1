#include "schema.h"

/* Placeholder until the schema is served. */
nl_response nl_branch_schema_get(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)api, (void)req, (void)ids;
    return nl_error(404, "", "the schema is not served yet");
}

nl_response nl_branch_schema_compare(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)api, (void)req, (void)ids;
    return nl_error(404, "", "the schema comparison is not served yet");
}
