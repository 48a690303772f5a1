/* snapshots: data-only copies of a branch, now or at an instant of its
 * history, kept as hidden branches (NL_SNAPSHOT) the branch views never
 * show: take, list, rename, delete, restore; their expiry on the schedule
 * clock. */
#ifndef DRCTL_NL_SNAPSHOTS_H
#define DRCTL_NL_SNAPSHOTS_H

#include "api_internal.h"
#include "routes.h"

/* What a new snapshot is. */
typedef struct nl_snapshot_spec {
    const char *name;
    const char *timestamp;    /* the instant it holds (its parent_timestamp); NULL: when it is made */
    const char *lsn;          /* or the LSN it was asked at; NULL for none */
    const char *target;       /* the recovery target setting, NULL: the source's head */
    const char *expires_at;   /* NULL: kept until deleted */
    int scheduled;            /* taken by the backup schedule, not by hand */
} nl_snapshot_spec;

/* A new snapshot of source (waiting for the worker), with its create_branch
 * operation. */
cJSON *nl_snapshot_add(cJSON *project, const cJSON *source, const nl_snapshot_spec *spec);

/* Snapshots whose expiry has passed go; 1 when any did (the state saved). */
int nl_snapshots_expire(nl_api *api);

nl_response nl_snapshot_create(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_snapshots_list(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_snapshot_rename(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_snapshot_delete(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_snapshot_restore(nl_api *api, const nl_request *req, const nl_path_ids *ids);

#endif
