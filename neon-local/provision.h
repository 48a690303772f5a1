/* provision: the files and servers behind branches, as the worker's jobs
 * change them. Everything here runs without the lock and reads nothing of
 * the state: what it needs comes in its arguments, copied out by the job's
 * prepare step (jobs.h). */
#ifndef DRCTL_NL_PROVISION_H
#define DRCTL_NL_PROVISION_H

#include "api_internal.h"

/* What making a branch needs. */
typedef struct nl_make_spec {
    char *project_id, *branch_id;
    char *parent_id;          /* NULL: a project's first branch, made with initdb */
    int parent_port;          /* 0: the parent has no server, its files are at rest */
    int port;                 /* 0: no endpoint, the data only */
    char *role, *password, *database; /* a first branch's owner and database */
    char *target;             /* a recovery_target_* setting, for a branch in the past */
} nl_make_spec;

void nl_make_spec_dispose(nl_make_spec *spec);

/* Makes a branch's data (initdb, a base backup of its parent, or a point in
 * its parent's past) and starts its server when it has an endpoint; a
 * project's first branch also gets its base backup, its role and database. */
int nl_provision_branch(nl_api *api, const nl_make_spec *spec);

/* What restoring a branch in place needs. */
typedef struct nl_restore_spec {
    char *project_id, *branch_id, *source_id;
    char *target;             /* a recovery_target_* setting, or NULL: the source's head */
    char *preserved_id;       /* the branch that keeps the previous state, or NULL */
    int port, source_port;
} nl_restore_spec;

void nl_restore_spec_dispose(nl_restore_spec *spec);

/* Builds the new state beside the branch, then swaps it in: the branch
 * keeps its id and its port, so its connection string does not change. */
int nl_provision_restore(nl_api *api, const nl_restore_spec *spec);

/* What an endpoint change (create, start, suspend, delete, move) does to
 * the branch's server; a move first stops the server of from_id. */
int nl_provision_endpoint_change(nl_api *api, const char *change, const char *branch_id, const char *from_id,
                                 int port);

/* Stops a branch's server and removes its folder, with what a failed
 * restore may have left beside it. */
int nl_provision_remove_branch(nl_api *api, const char *branch_id);

/* Takes the base backup a branch's own history starts from, replacing
 * one left from an earlier life of the data. */
int nl_provision_history_base(nl_api *api, const char *branch_id, int port);

/* At start-up: closes data folders an older neon-local left trusting the
 * superuser (force: the password file is new, so none knows it yet). */
void nl_provision_secure_all(nl_api *api, int force);

/* At start-up: every ready branch with an active endpoint gets its server back. */
void nl_provision_restart_all(nl_api *api);

/* At shutdown: every branch's server stops. */
void nl_provision_stop_all(nl_api *api);

#endif
