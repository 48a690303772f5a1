#include "provision.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "jsonfield.h"
#include "postgres.h"
#include "state.h"
#include "timefmt.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct secure_context {
    nl_api *api;
    int force;
} secure_context;

void nl_make_spec_dispose(nl_make_spec *spec)
{
    free(spec->project_id);
    free(spec->branch_id);
    free(spec->parent_id);
    free(spec->role);
    free(spec->password);
    free(spec->database);
    free(spec->target);
}

void nl_restore_spec_dispose(nl_restore_spec *spec)
{
    free(spec->project_id);
    free(spec->branch_id);
    free(spec->source_id);
    free(spec->target);
    free(spec->preserved_id);
}

/* Whether the server a postmaster.pid names still runs. A server that died
 * (killed, or the machine stopped under it) leaves the file behind, and
 * pg_ctl stop then fails for good; branches in error are not restarted, so
 * their servers are the ones found dead. */
static int postmaster_alive(const char *pid_file)
{
    char *text = NULL;
    if (fsio_read_file(&text, NULL, pid_file) != 0)
        return 0;
    long pid = strtol(text, NULL, 10);
    free(text);
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static int stop_if_running(const char *datadir)
{
    char *pid = xasprintf("%s/postmaster.pid", datadir);
    int rc = fsio_exists(pid) ? nl_pg_stop(datadir) : 0;
    if (rc != 0 && !postmaster_alive(pid))
        rc = 0; /* nothing left to stop */
    free(pid);
    return rc;
}

/* Stops the servers in a branch's folder (or a restore's staging folder)
 * and removes it. */
static int remove_folder(const char *folder)
{
    char *datadir = xasprintf("%s/data", folder);
    int rc = stop_if_running(datadir);
    if (rc == 0)
        rc = fsio_remove_tree(folder);
    free(datadir);
    return rc;
}

static int move_path(const char *from, const char *to)
{
    if (rename(from, to) != 0)
        return err_set(DR_EFAIL, "cannot move %s to %s: %s", from, to, strerror(errno));
    return 0;
}

/* A copy of source's files at an instant of its past into datadir: its
 * base backup, replayed from its WAL archive to target on port, promoted.
 * The WAL up to now is archived first, so the instant can be reached. The
 * time each part took is logged for a new branch (branch_id; NULL: none). */
static int replay_to_target(nl_api *api, const char *datadir, int port, const char *archive, const char *source_id,
                            int source_port, const char *target, const char *branch_id)
{
    char *base = nl_api_branch_path(api, source_id, "base");
    char *source_archive = nl_api_branch_path(api, source_id, "wal");
    double t0 = timefmt_monotonic(), t1 = 0, t2 = 0;
    int rc = nl_pg_archive_now(source_port);
    if (rc == 0) {
        t1 = timefmt_monotonic();
        rc = nl_pg_copy_backup(base, datadir);
    }
    if (rc == 0) {
        t2 = timefmt_monotonic();
        rc = nl_pg_recover_to(datadir, port, archive, source_archive, target);
    }
    if (rc == 0 && branch_id)
        fprintf(stderr, "neon-local: branch %s: WAL archived in %.2fs, base copied in %.2fs, replayed and promoted "
                "in %.2fs\n", branch_id, t1 - t0, t2 - t1, timefmt_monotonic() - t2);
    free(base);
    free(source_archive);
    return rc;
}

/* A copy of source's files at its head into datadir: a base backup of its
 * running server, or its files themselves when it has none (at rest). */
static int copy_head(nl_api *api, const char *datadir, const char *source_id, int source_port)
{
    if (source_port)
        return nl_pg_basebackup(source_port, datadir);
    char *source_data = nl_api_branch_path(api, source_id, "data");
    int rc = nl_pg_copy_backup(source_data, datadir);
    free(source_data);
    return rc;
}

/* A branch's server configured for port (its WAL archived into its own
 * archive) and started. */
static int start_on_port(nl_api *api, const char *branch_id, int port)
{
    char *datadir = nl_api_branch_path(api, branch_id, "data");
    char *archive = nl_api_branch_path(api, branch_id, "wal");
    int rc = nl_pg_configure(datadir, port, archive, NULL);
    if (rc == 0)
        rc = nl_pg_start(datadir);
    free(datadir);
    free(archive);
    return rc;
}

/* A branch in the past, replayed on its own port or a scratch one; without
 * an endpoint the server is stopped once the data is there. */
static int make_in_the_past(nl_api *api, const nl_make_spec *spec, const char *datadir, const char *archive)
{
    int port = spec->port ? spec->port : nl_free_port();
    int rc = replay_to_target(api, datadir, port, archive, spec->parent_id, spec->parent_port, spec->target,
                              spec->branch_id);
    if (rc == 0 && !spec->port)
        rc = nl_pg_stop(datadir);
    return rc;
}

/* A branch at its parent's head (or a first branch, from initdb), its
 * server started when it has an endpoint. */
static int make_at_head(nl_api *api, const nl_make_spec *spec, const char *datadir)
{
    int rc = spec->parent_id ? copy_head(api, datadir, spec->parent_id, spec->parent_port) : nl_pg_initdb(datadir);
    return rc == 0 && spec->port ? start_on_port(api, spec->branch_id, spec->port) : rc;
}

/* A project's first branch: its history is there when it is ready, so a
 * point in time on it works at once; then its owner and database. */
static int finish_first_branch(nl_api *api, const nl_make_spec *spec)
{
    char *base = nl_api_branch_path(api, spec->branch_id, "base");
    char *role = xasprintf("CREATE ROLE \"%s\" LOGIN PASSWORD '%s' CREATEDB CREATEROLE", spec->role, spec->password);
    char *db = xasprintf("CREATE DATABASE \"%s\" OWNER \"%s\"", spec->database, spec->role);
    int rc = nl_pg_basebackup(spec->port, base);
    if (rc == 0)
        rc = nl_pg_sql(spec->port, "postgres", role);
    if (rc == 0)
        rc = nl_pg_sql(spec->port, "postgres", db);
    free(base);
    free(role);
    free(db);
    return rc;
}

int nl_provision_branch(nl_api *api, const nl_make_spec *spec)
{
    char *datadir = nl_api_branch_path(api, spec->branch_id, "data");
    char *archive = nl_api_branch_path(api, spec->branch_id, "wal");
    int rc = spec->target ? make_in_the_past(api, spec, datadir, archive) : make_at_head(api, spec, datadir);
    if (rc == 0 && !spec->parent_id)
        rc = finish_first_branch(api, spec);
    free(datadir);
    free(archive);
    return rc;
}

/* The restored data, built in the staging folder (what an earlier failed
 * restore left there would spoil it, so it goes first). */
static int stage_restore(nl_api *api, const nl_restore_spec *spec, const char *staging)
{
    char *staged_data = xasprintf("%s/data", staging), *staged_wal = xasprintf("%s/wal", staging);
    int rc = remove_folder(staging);
    if (rc == 0)
        rc = fsio_mkdirs(staging, 0755);
    if (rc == 0)
        rc = nl_pg_own(staging);
    if (rc == 0 && spec->target) {
        rc = replay_to_target(api, staged_data, nl_free_port(), staged_wal, spec->source_id, spec->source_port,
                              spec->target, NULL);
        if (rc == 0)
            rc = nl_pg_stop(staged_data);
    } else if (rc == 0) {
        rc = copy_head(api, staged_data, spec->source_id, spec->source_port);
    }
    free(staged_data);
    free(staged_wal);
    return rc;
}

/* The branch's server stopped, its folder moved to the preserved branch
 * (or removed), the staging folder put in its place. */
static int swap_in(nl_api *api, const nl_restore_spec *spec, const char *staging)
{
    char *folder = nl_api_branch_path(api, spec->branch_id, NULL);
    char *datadir = nl_api_branch_path(api, spec->branch_id, "data");
    char *kept = spec->preserved_id ? nl_api_branch_path(api, spec->preserved_id, NULL) : NULL;
    int rc = nl_pg_stop(datadir);
    if (rc == 0)
        rc = kept ? move_path(folder, kept) : remove_folder(folder);
    if (rc == 0)
        rc = move_path(staging, folder);
    free(folder);
    free(datadir);
    free(kept);
    return rc;
}

/* The swapped-in data served again on the branch's own port, its WAL
 * archived into a new archive. */
static int serve_again(nl_api *api, const char *branch_id, int port)
{
    char *archive = nl_api_branch_path(api, branch_id, "wal");
    int rc = fsio_mkdirs(archive, 0755);
    if (rc == 0)
        rc = nl_pg_own(archive);
    free(archive);
    return rc == 0 ? start_on_port(api, branch_id, port) : rc;
}

int nl_provision_restore(nl_api *api, const nl_restore_spec *spec)
{
    char *staging = nl_api_staging_path(api, spec->branch_id, NULL);
    int rc = stage_restore(api, spec, staging);
    if (rc == 0)
        rc = swap_in(api, spec, staging);
    if (rc == 0)
        rc = serve_again(api, spec->branch_id, spec->port);
    /* A failed restore leaves no copy behind, nor the scratch server of a
     * point in time still replaying: the branch in error keeps its own
     * files, and deleting it is the clean-up. The error reported stays the
     * one that stopped the restore. */
    if (rc != 0 && fsio_exists(staging)) {
        char *first = xstrdup(err_last());
        if (remove_folder(staging) != 0)
            fprintf(stderr, "neon-local: cannot clean up %s after a failed restore: %s\n", staging, err_last());
        err_set(rc, "%s", first);
        free(first);
    }
    free(staging);
    return rc;
}

/* "create" and "move": the branch's data gets the endpoint's port and its
 * server starts, after the server of the branch a move comes from stops. */
static int serve_on_port(nl_api *api, const char *branch_id, const char *from_id, int port)
{
    char *datadir = nl_api_branch_path(api, branch_id, "data");
    char *from = from_id ? nl_api_branch_path(api, from_id, "data") : NULL;
    int rc = from ? stop_if_running(from) : 0;
    if (rc == 0)
        rc = stop_if_running(datadir);
    free(datadir);
    free(from);
    return rc == 0 ? start_on_port(api, branch_id, port) : rc;
}

int nl_provision_endpoint_change(nl_api *api, const char *change, const char *branch_id, const char *from_id,
                                 int port)
{
    if (strcmp(change, "start") && strcmp(change, "suspend") && strcmp(change, "delete"))
        return serve_on_port(api, branch_id, from_id, port);
    char *datadir = nl_api_branch_path(api, branch_id, "data");
    int rc = !strcmp(change, "start") ? nl_pg_start(datadir) : stop_if_running(datadir);
    free(datadir);
    return rc;
}

int nl_provision_remove_branch(nl_api *api, const char *branch_id)
{
    char *folder = nl_api_branch_path(api, branch_id, NULL);
    char *staging = nl_api_staging_path(api, branch_id, NULL);
    int rc = remove_folder(folder);
    if (rc == 0)
        rc = remove_folder(staging);
    free(folder);
    free(staging);
    return rc;
}

int nl_provision_history_base(nl_api *api, const char *branch_id, int port)
{
    char *base = nl_api_branch_path(api, branch_id, "base");
    /* A base left from an earlier life of the data (a preserved branch) is stale. */
    int rc = fsio_remove_tree(base);
    if (rc == 0)
        rc = nl_pg_basebackup(port, base);
    free(base);
    return rc;
}

/* Closes one branch's data folders (its own and a restore's staging one). */
static int secure_branch(cJSON *project, cJSON *branch, void *context)
{
    (void)project;
    const secure_context *c = context;
    const char *id = json_text(branch, "id", NULL);
    char *datadir = nl_api_branch_path(c->api, id, "data");
    char *staged = nl_api_staging_path(c->api, id, "data");
    if (nl_pg_secure(datadir, c->force) != 0 || nl_pg_secure(staged, c->force) != 0)
        fprintf(stderr, "neon-local: branch %s: %s\n", id, err_last());
    free(datadir);
    free(staged);
    return 0;
}

void nl_provision_secure_all(nl_api *api, int force)
{
    secure_context c = { api, force };
    nl_state_each_branch(api->state, secure_branch, &c);
}

/* Starts a ready branch's server when its endpoint is active: data-only
 * branches and suspended endpoints stay down. */
static int restart_branch(cJSON *project, cJSON *branch, void *context)
{
    nl_api *api = context;
    const char *id = json_text(branch, "id", NULL);
    if (!nl_state_is(branch, NL_BRANCH_READY) || !nl_state_is(nl_endpoint_of(project, id), NL_ENDPOINT_ACTIVE))
        return 0;
    char *datadir = nl_api_branch_path(api, id, "data");
    if (nl_pg_start(datadir) != 0)
        fprintf(stderr, "neon-local: cannot restart branch %s: %s\n", id, err_last());
    free(datadir);
    return 0;
}

void nl_provision_restart_all(nl_api *api)
{
    nl_state_each_branch(api->state, restart_branch, api);
}

static int stop_branch(cJSON *project, cJSON *branch, void *context)
{
    (void)project;
    nl_api *api = context;
    char *datadir = nl_api_branch_path(api, json_text(branch, "id", NULL), "data");
    stop_if_running(datadir);
    free(datadir);
    return 0;
}

void nl_provision_stop_all(nl_api *api)
{
    nl_state_each_branch(api->state, stop_branch, api);
}
