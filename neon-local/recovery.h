/* recovery: deleted projects and branches kept for Neon's recovery period
 * on neon-local's clock, listed on request and brought back with the same
 * ids and connection strings.
 *
 * A DELETE (without hard_delete) keeps the item: its servers stop, its
 * data stays, and the API answers 404 for it, except in
 * GET /projects?recoverable=true and GET .../branches?include_deleted=true.
 * Its deleted_at and recoverable_until are on the schedule clock (so
 * --clock-speed shortens the period as it does TTLs); when the period
 * ends the worker removes its data for good.
 *
 * Rules:
 *   - a deleted branch is no child: its parent may be deleted (kept or for
 *     good); a branch deleted for good takes its deleted descendants with it
 *     (their data is no use without their parent's, as on Neon);
 *   - a branch comes back only into a live project, under a live parent, and
 *     only while no live branch has taken its name (409 otherwise);
 *   - a recovered branch loses its expires_at; its endpoints come back idle
 *     (POST .../endpoints/{id}/start serves its old connection string). */
#ifndef DRCTL_NL_RECOVERY_H
#define DRCTL_NL_RECOVERY_H

#include "api_internal.h"
#include "routes.h"

/* Neon's recovery period: 7 days. */
#define NL_RECOVERY_SECONDS (7 * 86400.0)

/* deletion_method of a branch's recovery info. */
#define NL_DELETED_BY_USER "user"
#define NL_DELETED_BY_TTL "ttl"

/* Keeps a branch as deleted (method: NL_DELETED_BY_...): out of the live
 * lists, its server to be stopped by the worker. Returns copies of the
 * operations that shows (suspend_compute when it has an endpoint,
 * delete_timeline), which end once its server is stopped. */
cJSON *nl_recovery_keep_branch(nl_api *api, cJSON *project, cJSON *branch, const char *method);

/* Keeps a project as deleted: 404 for the API, its endpoints suspended by
 * the worker (their operations appended to ops). */
void nl_recovery_keep_project(nl_api *api, cJSON *project, cJSON *ops);

/* A branch deleted for good takes its deleted descendants with it: they
 * are handed to the worker for removal. */
void nl_recovery_purge_descendants(cJSON *project, const char *branch_id);

/* A deleted branch as the include_deleted list shows it: its public
 * fields and its recovery info. */
cJSON *nl_recovery_shown_branch(const cJSON *kept);

/* The clock's sweep: deleted branches and projects whose period has ended
 * are handed to the worker for removal; 1 when any was (state saved). */
int nl_recovery_expire(nl_api *api);

nl_response nl_project_recover(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_branch_recover(nl_api *api, const nl_request *req, const nl_path_ids *ids);

#endif
