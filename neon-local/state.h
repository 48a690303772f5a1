/* state: the document that holds all of neon-local's state, and the one
 * place its keys and values are named.
 *
 * The whole state is one JSON document, DIR/state.json, written durably
 * after every change (it holds the roles' passwords, so mode 0600):
 *
 *     {"projects": [ {public project fields...,
 *                     "_branches": [...], "_endpoints": [...], "_roles": [...],
 *                     "_databases": [...], "_operations": [...],
 *                     "_deleted_branches": [...]} ]}
 *
 * Fields whose names start with '_' are hidden: the API never shows them
 * (nl_state_public_copy drops them). Each is named here once, with what it
 * means; every other file uses these names. */
#ifndef DRCTL_NL_STATE_H
#define DRCTL_NL_STATE_H

#include <cjson/cJSON.h>

#define NL_PROJECTS "projects" /* the document's one public key: the list of projects */

/* ---- hidden keys of a project ---- */
#define NL_BRANCHES "_branches"     /* its branches, snapshots included (see NL_SNAPSHOT) */
#define NL_ENDPOINTS "_endpoints"   /* its endpoints, each with its branch_id */
#define NL_ROLES "_roles"           /* the roles of every branch, each with its branch_id */
#define NL_DATABASES "_databases"   /* the databases of every branch, each with its branch_id */
#define NL_OPERATIONS "_operations" /* every operation it ran, in order */
#define NL_DELETED "_deleted"       /* true: deleted, 404 for the API; recoverable until its recoverable_until */
#define NL_PURGING "_purging"       /* true: its recovery period ended, the worker removes its data for good */
#define NL_KEPT_BRANCHES "_deleted_branches" /* its deleted branches, each recoverable until its NL_RECOVERY's end */

/* ---- hidden keys of a branch ---- */
#define NL_SNAPSHOT "_snapshot"             /* true: a snapshot, kept as a data-only branch the branch views never show */
#define NL_SCHEDULED "_scheduled"           /* true: a snapshot the backup schedule took (not manual) */
#define NL_EXPIRES_AT "_expires_at"         /* a snapshot's expiry time (a branch's is the public expires_at) */
#define NL_TARGET "_target"                 /* a recovery_target_* setting: made at that point of its parent's past */
#define NL_HISTORY_FROM "_history_from"     /* when its own base backup was taken: points in time start there */
#define NL_RESTORE "_restore"               /* a restore waiting for the worker: {source_branch_id, target?, preserved_id?} */
#define NL_PRESERVING "_preserving"         /* id of the branch whose previous state a restore keeps in this one */
#define NL_RESTORE_OF "_restore_of"         /* id of the branch a snapshot restore was made for (finalize_restore) */
#define NL_BACKUP_SCHEDULE "_backup_schedule" /* the schedule PUT .../backup_schedule set, as given */
#define NL_SCHEDULE_LAST "_schedule_last"   /* per schedule item, the last slot taken (seconds): slots are never taken twice */

/* ---- hidden keys of a deleted branch (in NL_KEPT_BRANCHES) ---- */
#define NL_RECOVERY "_recovery"   /* {deleted_at, recoverable_until, deletion_method}: shown as "recovery" */
#define NL_KEPT "_kept"           /* what was its: {"endpoints": [...], "roles": [...], "databases": [...]} */
#define NL_STOPPING "_stopping"   /* true: its server is still to be stopped by the worker */

/* ---- hidden keys of an endpoint ---- */
#define NL_PORT "_port"       /* its server's TCP port on 127.0.0.1 */
#define NL_PENDING "_pending" /* a change waiting for the worker: create, start, suspend, delete or move */
#define NL_FROM "_from"       /* for a move: the branch the endpoint leaves (its server is stopped first) */

/* ---- hidden key of a role ---- */
#define NL_PASSWORD "_password" /* its password, shown only by reveal_password and create answers */

/* ---- current_state of a branch ---- */
#define NL_BRANCH_INIT "init"         /* being made or restored by the worker */
#define NL_BRANCH_READY "ready"
#define NL_BRANCH_ERROR "error"       /* making or restoring it failed: deleting it is the clean-up */
#define NL_BRANCH_DELETING "deleting" /* waiting for the worker to remove it */

/* ---- current_state of an endpoint ---- */
#define NL_ENDPOINT_INIT "init"     /* its server is not started yet */
#define NL_ENDPOINT_ACTIVE "active" /* its server runs */
#define NL_ENDPOINT_IDLE "idle"     /* suspended, or starting it failed */

/* ---- status of an operation ---- */
#define NL_OPERATION_RUNNING "running"
#define NL_OPERATION_FINISHED "finished"
#define NL_OPERATION_FAILED "failed"

/* An empty state: {"projects": []}. */
cJSON *nl_state_new(void);

/* Called on one branch of a project; returns 1 when it changed it. */
typedef int (*nl_branch_visitor)(cJSON *project, cJSON *branch, void *context);

/* Calls visit on every branch (snapshots included) of every project
 * (deleted ones too), in order, then on the project's deleted branches
 * (NL_KEPT_BRANCHES: their data is still there, recoverable; a visit that
 * must not touch one checks nl_branch_is_deleted). visit may add branches
 * (they are visited too) but must not remove any. Returns 1 when any visit
 * did change its branch. */
int nl_state_each_branch(cJSON *state, nl_branch_visitor visit, void *context);

/* The list of projects. */
cJSON *nl_state_projects(cJSON *state);

/* One of a project's lists (NL_BRANCHES, NL_ENDPOINTS, ...); project may be NULL. */
cJSON *nl_state_list(cJSON *project, const char *list);

/* The item of a list whose "id" is id, or NULL. */
cJSON *nl_state_find_by_id(cJSON *list, const char *id);

/* Any project, a deleted one too (the worker finishes its clean-up). */
cJSON *nl_state_any_project(cJSON *state, const char *project_id);

/* A project the API still shows: a deleted one is 404 from the moment it
 * is deleted, though its clean-up runs in the background. */
cJSON *nl_state_live_project(cJSON *state, const char *project_id);

/* The item with that id in one of a project's lists, or NULL; project may be NULL. */
cJSON *nl_state_item_in(cJSON *project, const char *list, const char *id);

/* The item of a list (NL_ROLES, NL_DATABASES) on a branch, by name, or NULL. */
cJSON *nl_state_item_named(cJSON *project, const char *list, const char *branch_id, const char *name);

/* Sets object.key to value (taken), whether or not the key is there yet:
 * cJSON's replace leaks the value when the key is missing. */
void nl_state_set(cJSON *object, const char *key, cJSON *value);

/* Sets object.key to a copy of text. */
void nl_state_set_text(cJSON *object, const char *key, const char *text);

/* A copy of an item without its hidden fields: what the API shows. */
cJSON *nl_state_public_copy(const cJSON *item);

/* 1 when an item's current_state is state (NL_BRANCH_..., NL_ENDPOINT_...). */
int nl_state_is(const cJSON *item, const char *state);

/* Sets an item's current_state (NL_BRANCH_..., NL_ENDPOINT_...). */
void nl_state_set_current(cJSON *item, const char *state);

/* Whether object.key is true (NL_SNAPSHOT, NL_DELETED, "default", ...). */
int nl_state_flag(const cJSON *object, const char *key);

/* Whether a branch is a snapshot (NL_SNAPSHOT). */
int nl_branch_is_snapshot(const cJSON *branch);

/* The project's default branch, or NULL. */
cJSON *nl_branch_default(cJSON *project);

/* The branch (never a snapshot) with that name, or NULL. */
cJSON *nl_branch_named(cJSON *project, const char *name);

/* Whether a branch is the parent of a branch (snapshots do not count). */
int nl_branch_has_children(cJSON *project, const char *branch_id);

/* The endpoint of a branch (one read_write endpoint a branch), or NULL. */
cJSON *nl_endpoint_of(cJSON *project, const char *branch_id);

/* An endpoint's port (NL_PORT); 0 for none, or for a NULL endpoint. */
int nl_endpoint_port(const cJSON *endpoint);

/* Copies the roles and databases of parent_id to branch_id, which a branch
 * inherits with its parent's data. */
void nl_state_inherit_roles_and_databases(cJSON *project, const char *parent_id, const char *branch_id);

/* Takes a deleted branch out of the state with everything that was its:
 * the branch, its endpoint, roles and databases. */
void nl_state_forget_branch(cJSON *project, const char *branch_id);

/* ---- deleted, still recoverable ---- */

/* The project's deleted branches (NL_KEPT_BRANCHES), made when missing. */
cJSON *nl_state_kept_branches(cJSON *project);

/* A deleted branch of the project by id, or NULL; project may be NULL. */
cJSON *nl_state_kept_branch(cJSON *project, const char *branch_id);

/* Whether a branch is a deleted one (it has NL_RECOVERY). */
int nl_branch_is_deleted(const cJSON *branch);

/* Moves a branch, with its endpoint, roles and databases (into NL_KEPT),
 * out of the live lists into NL_KEPT_BRANCHES, with its NL_RECOVERY
 * (recovery taken) and NL_STOPPING set: the API no longer sees it. */
cJSON *nl_state_keep_branch(cJSON *project, cJSON *branch, cJSON *recovery);

/* The reverse: a deleted branch, with what NL_KEPT holds, back in the live
 * lists (at their ends), its recovery keys gone. Returns the branch. */
cJSON *nl_state_bring_back_branch(cJSON *project, cJSON *kept);

/* Calls visit on every endpoint the state holds: live ones, a deleted
 * project's, and a deleted branch's (in its NL_KEPT). Each keeps its
 * address while it can be recovered, so nothing new may take it. */
void nl_state_each_endpoint(cJSON *state, void (*visit)(cJSON *endpoint, void *context), void *context);

#endif
