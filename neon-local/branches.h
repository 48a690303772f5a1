/* branches: POST and GET .../branches/{branch_id}, PATCH, DELETE,
 * set_as_default, restore (in place, from a branch or a snapshot) and
 * finalize_restore (a snapshot restore taking its branch's place); branch
 * expiry (expires_at) on the schedule clock. What DELETE keeps, and its
 * recovery, are recovery.h's. Listing and counting are in
 * branchlist.c. */
#ifndef DRCTL_NL_BRANCHES_H
#define DRCTL_NL_BRANCHES_H

#include "api_internal.h"
#include "routes.h"

/* A new branch (waiting for the worker) at the end of the project's list. */
cJSON *nl_branch_add(cJSON *project, const char *name, int is_default);

/* The project and ready branch a request names (no job changing its
 * server), or -1 with the 404 or 423 answer in *error. */
int nl_branch_lookup(cJSON **project, cJSON **branch, nl_response *error, nl_api *api, const char *project_id,
                     const char *branch_id);

/* Hands a branch to the worker for deletion for good (DELETE with
 * hard_delete, a snapshot); returns copies of the operations that shows.
 * A DELETE without hard_delete keeps the branch instead (recovery.h). */
cJSON *nl_branch_start_deletion(cJSON *project, cJSON *branch);

/* Branches whose expires_at has passed go as DELETE takes them, kept and
 * recoverable (deletion_method ttl); 1 when any did (the state saved). */
int nl_branches_expire(nl_api *api);

nl_response nl_branch_create(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_branch_get(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_branch_update(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_branch_delete(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_branch_set_as_default(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_branch_restore(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_branch_finalize_restore(nl_api *api, const nl_request *req, const nl_path_ids *ids);

/* GET .../branches and .../branches/count (branchlist.c). */
nl_response nl_branches_list(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_branches_count(nl_api *api, const nl_request *req, const nl_path_ids *ids);

#endif
