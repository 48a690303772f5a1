#include "api.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "jsontext.h"
#include "postgres.h"
#include "timefmt.h"
#include "jsonfield.h"
#include "state.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

/* The whole state is one JSON document, DIR/state.json, written durably
 * after every change: {"projects": [ {project fields..., NL_BRANCHES: [...],
 * NL_ENDPOINTS: [...], NL_ROLES: [...], NL_DATABASES: [...],
 * NL_OPERATIONS: [...]} ]}. Fields starting with '_' are never shown. */
struct nl_api {
    char *data_dir;
    char *state_path;
    cJSON *state;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t worker;
    int stopping;
    double clock_speed;       /* schedules and expiry run this much faster */
    double clock_origin;      /* real time when the schedule clock started */
};

/* The schedule clock: real time, or faster for rehearsals (--clock-speed). */
static double schedule_now(const nl_api *api)
{
    double real = timefmt_now();
    return api->clock_origin + (real - api->clock_origin) * api->clock_speed;
}

/* ---- small helpers ---------------------------------------------------------- */

static char *now_text(void)
{
    char t[48];
    timefmt_format_utc(t, sizeof t, floor(timefmt_now()));
    return xstrdup(t);
}

static void random_bytes(unsigned char *out, size_t n)
{
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(out, 1, n, f) != n)
        for (size_t i = 0; i < n; i++)
            out[i] = (unsigned char)rand();
    if (f)
        fclose(f);
}

/* Neon-style ids: "spring-example-302709", "br-wispy-meadow-a1b2c3d4". */
static char *new_id(const char *prefix)
{
    static const char *const adjectives[] = { "spring", "wispy", "silent", "autumn", "bold", "calm",
                                              "dry", "lucky", "misty", "quiet", "rapid", "young" };
    static const char *const nouns[] = { "meadow", "smoke", "river", "forest", "field", "cloud",
                                         "frost", "leaf", "moon", "rain", "sea", "sun" };
    unsigned char r[6];
    random_bytes(r, sizeof r);
    unsigned number = (unsigned)(r[2] << 16 | r[3] << 8 | r[4]) % 900000u + 100000u;
    return xasprintf("%s%s%s-%s-%u", prefix, *prefix ? "-" : "", adjectives[r[0] % 12], nouns[r[1] % 12], number);
}

static char *new_uuid(void)
{
    unsigned char r[16];
    random_bytes(r, sizeof r);
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    return xasprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
                     r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

static char *new_password(void)
{
    unsigned char r[12];
    random_bytes(r, sizeof r);
    buf b = BUF_INIT;
    buf_puts(&b, "npg_");
    for (size_t i = 0; i < sizeof r; i++)
        buf_printf(&b, "%02x", r[i]);
    return buf_detach(&b);
}







static int save_state(nl_api *api)
{
    char *text = json_print_exact(api->state, 1);
    /* It holds the roles' passwords: readable by its owner only. */
    int rc = fsio_write_durable_mode(api->state_path, text, strlen(text), 0600);
    free(text);
    return rc;
}

static char *branch_datadir(nl_api *api, const char *branch_id)
{
    return xasprintf("%s/pg/%s/data", api->data_dir, branch_id);
}

static char *branch_archive(nl_api *api, const char *branch_id)
{
    return xasprintf("%s/pg/%s/wal", api->data_dir, branch_id);
}

static char *connection_uri(const cJSON *role, const cJSON *endpoint, const char *database)
{
    const cJSON *port = cJSON_GetObjectItemCaseSensitive(endpoint, NL_PORT);
    return xasprintf("postgresql://%s:%s@127.0.0.1:%d/%s?sslmode=disable", json_text(role, "name", NULL),
                     json_text(role, NL_PASSWORD, NULL), cJSON_IsNumber(port) ? port->valueint : 0, database);
}

/* ---- operations ------------------------------------------------------------- */

static cJSON *new_operation(cJSON *project, const char *action, const char *branch_id, const char *endpoint_id)
{
    char *id = new_uuid(), *now = now_text();
    cJSON *op = cJSON_CreateObject();
    cJSON_AddStringToObject(op, "id", id);
    cJSON_AddStringToObject(op, "project_id", json_text(project, "id", NULL));
    if (branch_id)
        cJSON_AddStringToObject(op, "branch_id", branch_id);
    if (endpoint_id)
        cJSON_AddStringToObject(op, "endpoint_id", endpoint_id);
    cJSON_AddStringToObject(op, "action", action);
    cJSON_AddStringToObject(op, "status", NL_OPERATION_RUNNING);
    cJSON_AddNumberToObject(op, "failures_count", 0);
    cJSON_AddStringToObject(op, "created_at", now);
    cJSON_AddStringToObject(op, "updated_at", now);
    cJSON_AddNumberToObject(op, "total_duration_ms", 0);
    cJSON_AddItemToArray(nl_state_list(project, NL_OPERATIONS), op);
    free(id);
    free(now);
    return op;
}

static void finish_operations(cJSON *project, const char *branch_id, const char *error)
{
    cJSON *op;
    char *now = now_text();
    cJSON_ArrayForEach(op, nl_state_list(project, NL_OPERATIONS)) {
        if (strcmp(json_text(op, "status", NULL), NL_OPERATION_RUNNING) != 0 || !json_text(op, "branch_id", NULL) ||
            strcmp(json_text(op, "branch_id", NULL), branch_id) != 0)
            continue;
        double started = 0, ended = 0;
        timefmt_parse_timestamp(&started, json_text(op, "created_at", NULL));
        timefmt_parse_timestamp(&ended, now);
        nl_state_set(op, "status", cJSON_CreateString(error ? NL_OPERATION_FAILED : NL_OPERATION_FINISHED));
        nl_state_set(op, "updated_at", cJSON_CreateString(now));
        nl_state_set(op, "total_duration_ms", cJSON_CreateNumber((ended - started) * 1000));
        if (error)
            cJSON_AddStringToObject(op, "error", error);
    }
    free(now);
}

/* ---- the worker: real PostgreSQL work, off the request path ------------------ */

/* What the worker needs to make one branch, copied out of the state so the
 * work runs without the lock held. */
typedef struct branch_job {
    char *branch_id;
    int parent_port;          /* 0: a root branch, made with initdb */
    char *parent_id;
    int port;                 /* 0: no endpoint, the data only */
    char *role, *password, *database;  /* root branch only */
    char *target;             /* a recovery_target_* setting, for a branch in the past */
} branch_job;

static void branch_job_free(branch_job *job)
{
    free(job->branch_id);
    free(job->parent_id);
    free(job->target);
    free(job->role);
    free(job->password);
    free(job->database);
}



static char *branch_base(nl_api *api, const char *branch_id)
{
    return xasprintf("%s/pg/%s/base", api->data_dir, branch_id);
}

/* A branch in the past: the parent's base backup, replayed from the
 * parent's WAL archive to the target, promoted. Without an endpoint the
 * server is stopped once the data is there. */
static int provision_in_the_past(nl_api *api, const branch_job *job, const char *datadir, const char *archive)
{
    char *base = branch_base(api, job->parent_id), *source_archive = branch_archive(api, job->parent_id);
    int port = job->port ? job->port : nl_free_port();
    double t0 = timefmt_monotonic(), t1 = 0, t2 = 0;
    int rc = nl_pg_archive_now(job->parent_port);
    if (rc == 0) {
        t1 = timefmt_monotonic();
        rc = nl_pg_copy_backup(base, datadir);
    }
    if (rc == 0) {
        t2 = timefmt_monotonic();
        rc = nl_pg_recover_to(datadir, port, archive, source_archive, job->target);
    }
    if (rc == 0)
        fprintf(stderr, "neon-local: branch %s: WAL archived in %.2fs, base copied in %.2fs, replayed and promoted "
                "in %.2fs\n", job->branch_id, t1 - t0, t2 - t1, timefmt_monotonic() - t2);
    if (rc == 0 && !job->port)
        rc = nl_pg_stop(datadir);
    free(base);
    free(source_archive);
    return rc;
}

/* Makes a branch's data (initdb, a base backup of its parent, or a point in
 * its parent's past), starts its server when it has an endpoint, and keeps
 * a base backup of it: the start of its own history. */
static int provision_branch(nl_api *api, const branch_job *job)
{
    char *datadir = branch_datadir(api, job->branch_id), *archive = branch_archive(api, job->branch_id);
    int rc;
    if (job->target) {
        rc = provision_in_the_past(api, job, datadir, archive);
    } else {
        if (job->parent_port) {
            rc = nl_pg_basebackup(job->parent_port, datadir);
        } else if (job->parent_id) { /* a data-only parent: its files are at rest */
            char *parent_data = branch_datadir(api, job->parent_id);
            rc = nl_pg_copy_backup(parent_data, datadir);
            free(parent_data);
        } else {
            rc = nl_pg_initdb(datadir);
        }
        if (rc == 0 && job->port) {
            rc = nl_pg_configure(datadir, job->port, archive, NULL);
            if (rc == 0)
                rc = nl_pg_start(datadir);
        }
    }
    if (rc == 0 && !job->parent_id) {
        /* A project's first branch: its history is there when it is ready,
         * so a point in time on it works at once. */
        char *base = branch_base(api, job->branch_id);
        rc = nl_pg_basebackup(job->port, base);
        free(base);
    }
    if (rc == 0 && !job->parent_id) {
        char *role = xasprintf("CREATE ROLE \"%s\" LOGIN PASSWORD '%s' CREATEDB CREATEROLE", job->role, job->password);
        char *db = xasprintf("CREATE DATABASE \"%s\" OWNER \"%s\"", job->database, job->role);
        rc = nl_pg_sql(job->port, "postgres", role);
        if (rc == 0)
            rc = nl_pg_sql(job->port, "postgres", db);
        free(role);
        free(db);
    }
    free(datadir);
    free(archive);
    return rc;
}


/* After a branch is ready (and its client told so): the base backup its
 * own history starts from. Until it is there, a point in time on the
 * branch answers 423. Called with the lock held; releases it meanwhile. */
static void record_history_start(nl_api *api, const char *project_id, const char *branch_id, int port)
{
    char *base = branch_base(api, branch_id);
    pthread_mutex_unlock(&api->lock);
    /* A base left from an earlier life of the data (a preserved branch) is stale. */
    int rc = fsio_remove_tree(base);
    if (rc == 0)
        rc = nl_pg_basebackup(port, base);
    pthread_mutex_lock(&api->lock);
    cJSON *p = nl_state_any_project(api->state, project_id);
    cJSON *b = nl_state_item_in(p, NL_BRANCHES, branch_id);
    if (b && rc == 0) {
        nl_state_set(b, NL_HISTORY_FROM, cJSON_CreateNumber(timefmt_now()));
        save_state(api);
    } else if (!b) {
        /* Deleted while its base was being taken: the base must go with it. */
        char *folder = xasprintf("%s/pg/%s", api->data_dir, branch_id);
        fsio_remove_tree(folder);
        free(folder);
    } else {
        fprintf(stderr, "neon-local: branch %s: no base backup, so no point in time: %s\n", branch_id, err_last());
    }
    free(base);
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

/* Stops a branch's server and removes its data, with what a failed restore
 * may have left beside it. */
static int remove_branch_files(nl_api *api, const char *branch_id)
{
    char *folder = xasprintf("%s/pg/%s", api->data_dir, branch_id);
    char *staging = xasprintf("%s/pg/%s.restore", api->data_dir, branch_id);
    int rc = remove_folder(folder);
    if (rc == 0)
        rc = remove_folder(staging);
    free(folder);
    free(staging);
    return rc;
}


/* ---- the worker's jobs: each takes the first item waiting for it --------------- */

/* The first item of a list (`_branches`, `_endpoints`) of any project that
 * `waiting` says needs work, with its project; NULL when there is none. */
static cJSON *first_pending(nl_api *api, const char *list, int (*waiting)(const cJSON *item), cJSON **project_out)
{
    cJSON *project;
    cJSON_ArrayForEach(project, nl_state_projects(api->state)) {
        cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(project, list)) {
            if (waiting(item)) {
                *project_out = project;
                return item;
            }
        }
    }
    return NULL;
}


static int awaits_restore(const cJSON *branch)
{
    return nl_state_is(branch, NL_BRANCH_INIT) && cJSON_GetObjectItemCaseSensitive(branch, NL_RESTORE);
}

static int awaits_endpoint_change(const cJSON *endpoint)
{
    return json_text(endpoint, NL_PENDING, NULL) != NULL;
}

static int awaits_deletion(const cJSON *branch)
{
    return nl_state_is(branch, NL_BRANCH_DELETING);
}

/* Restores, and the branches they preserve, are run_next_restore's. */
static int awaits_making(const cJSON *branch)
{
    return nl_state_is(branch, NL_BRANCH_INIT) && !cJSON_GetObjectItemCaseSensitive(branch, NL_RESTORE) &&
           !cJSON_GetObjectItemCaseSensitive(branch, NL_PRESERVING);
}

/* ---- restore in place ----------------------------------------------------------- */

/* What a restore needs, copied out of the state. */
typedef struct restore_job {
    char *project_id, *branch_id, *source_id, *target, *preserved_id;
    int port, source_port;
} restore_job;

static void restore_job_free(restore_job *j)
{
    free(j->project_id);
    free(j->branch_id);
    free(j->source_id);
    free(j->target);
    free(j->preserved_id);
}

static int move_path(const char *from, const char *to)
{
    if (rename(from, to) != 0)
        return err_set(DR_EFAIL, "cannot move %s to %s: %s", from, to, strerror(errno));
    return 0;
}

/* Builds the new state beside the branch, then swaps it in: the branch keeps
 * its id and its port, so its connection string does not change. */
static int run_restore(nl_api *api, const restore_job *j)
{
    char *folder = xasprintf("%s/pg/%s", api->data_dir, j->branch_id);
    char *staging = xasprintf("%s/pg/%s.restore", api->data_dir, j->branch_id);
    char *staged_data = xasprintf("%s/data", staging), *staged_wal = xasprintf("%s/wal", staging);
    char *datadir = branch_datadir(api, j->branch_id);
    /* What an earlier failed restore left there would spoil this one. */
    int rc = remove_folder(staging);
    if (rc == 0)
        rc = fsio_mkdirs(staging, 0755);
    if (rc == 0)
        rc = nl_pg_own(staging);
    if (rc == 0 && j->target) {
        char *base = branch_base(api, j->source_id), *archive = branch_archive(api, j->source_id);
        int scratch_port = nl_free_port();
        rc = nl_pg_archive_now(j->source_port);
        if (rc == 0)
            rc = nl_pg_copy_backup(base, staged_data);
        if (rc == 0)
            rc = nl_pg_recover_to(staged_data, scratch_port, staged_wal, archive, j->target);
        if (rc == 0)
            rc = nl_pg_stop(staged_data);
        free(base);
        free(archive);
    } else if (rc == 0 && j->source_port) {
        rc = nl_pg_basebackup(j->source_port, staged_data);
    } else if (rc == 0) { /* a data-only source: its files are at rest */
        char *source_data = branch_datadir(api, j->source_id);
        rc = nl_pg_copy_backup(source_data, staged_data);
        free(source_data);
    }
    if (rc == 0)
        rc = nl_pg_stop(datadir);
    if (rc == 0 && j->preserved_id) {
        char *kept = xasprintf("%s/pg/%s", api->data_dir, j->preserved_id);
        rc = move_path(folder, kept);
        free(kept);
    } else if (rc == 0) {
        rc = remove_folder(folder); /* the staging folder beside it stays */
    }
    if (rc == 0)
        rc = move_path(staging, folder);
    if (rc == 0) {
        char *archive = branch_archive(api, j->branch_id);
        rc = fsio_mkdirs(archive, 0755);
        if (rc == 0)
            rc = nl_pg_own(archive);
        if (rc == 0)
            rc = nl_pg_configure(datadir, j->port, archive, NULL);
        if (rc == 0)
            rc = nl_pg_start(datadir);
        free(archive);
    }
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
    free(folder);
    free(staging);
    free(staged_data);
    free(staged_wal);
    free(datadir);
    return rc;
}

/* A branch waiting for its restore: done here, lock released meanwhile. */
static int run_next_restore(nl_api *api)
{
    cJSON *project;
    cJSON *branch = first_pending(api, NL_BRANCHES, awaits_restore, &project);
    if (!branch)
        return 0;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(branch, NL_RESTORE);
    restore_job j = { 0 };
    j.project_id = xstrdup(json_text(project, "id", NULL));
    j.branch_id = xstrdup(json_text(branch, "id", NULL));
    j.source_id = xstrdup(json_text(spec, "source_branch_id", NULL));
    j.target = json_text(spec, "target", NULL) ? xstrdup(json_text(spec, "target", NULL)) : NULL;
    j.preserved_id = json_text(spec, "preserved_id", NULL) ? xstrdup(json_text(spec, "preserved_id", NULL)) : NULL;
    j.port = nl_endpoint_port(nl_endpoint_of(project, j.branch_id));
    j.source_port = nl_endpoint_port(nl_endpoint_of(project, j.source_id));
    pthread_mutex_unlock(&api->lock);
    int rc = run_restore(api, &j);
    pthread_mutex_lock(&api->lock);
    cJSON *p = nl_state_any_project(api->state, j.project_id);
    cJSON *b = nl_state_item_in(p, NL_BRANCHES, j.branch_id);
    if (b) {
        char *now = now_text();
        cJSON_DeleteItemFromObjectCaseSensitive(b, NL_RESTORE);
        nl_state_set_current(b, rc ? NL_BRANCH_ERROR : NL_BRANCH_READY);
        nl_state_set(b, "state_changed_at", cJSON_CreateString(now));
        nl_state_set(b, "updated_at", cJSON_CreateString(now));
        /* Its old history went with the old state. */
        cJSON_DeleteItemFromObjectCaseSensitive(b, NL_HISTORY_FROM);
        cJSON *kept = j.preserved_id ? nl_state_item_in(p, NL_BRANCHES, j.preserved_id) : NULL;
        if (kept) {
            cJSON_DeleteItemFromObjectCaseSensitive(kept, NL_PRESERVING);
            nl_state_set_current(kept, rc ? NL_BRANCH_ERROR : NL_BRANCH_READY);
        }
        finish_operations(p, j.branch_id, rc ? err_last() : NULL);
        free(now);
    }
    if (rc)
        fprintf(stderr, "neon-local: restore of branch %s: %s\n", j.branch_id, err_last());
    save_state(api);
    if (rc == 0 && b)
        record_history_start(api, j.project_id, j.branch_id, j.port);
    restore_job_free(&j);
    return 1;
}

/* What an endpoint change does to the servers. "create" and "move" give a
 * branch's data the endpoint's port and start it; a move first stops the
 * branch the endpoint comes from (finalize_restore). */
static int apply_endpoint_change(nl_api *api, const char *change, const char *branch_id, const char *from_id,
                                 int port)
{
    char *datadir = branch_datadir(api, branch_id);
    int rc = 0;
    if (!strcmp(change, "start")) {
        rc = nl_pg_start(datadir);
    } else if (!strcmp(change, "suspend") || !strcmp(change, "delete")) {
        rc = stop_if_running(datadir);
    } else {
        if (from_id) {
            char *from = branch_datadir(api, from_id);
            rc = stop_if_running(from);
            free(from);
        }
        char *archive = branch_archive(api, branch_id);
        if (rc == 0)
            rc = stop_if_running(datadir);
        if (rc == 0)
            rc = nl_pg_configure(datadir, port, archive, NULL);
        if (rc == 0)
            rc = nl_pg_start(datadir);
        free(archive);
    }
    free(datadir);
    return rc;
}

/* An endpoint waiting to be created, deleted, moved, suspended or started:
 * its branch's server changed, lock released meanwhile. */
static int run_endpoint_change(nl_api *api)
{
    cJSON *project;
    cJSON *e = first_pending(api, NL_ENDPOINTS, awaits_endpoint_change, &project);
    if (!e)
        return 0;
    char *change = xstrdup(json_text(e, NL_PENDING, NULL));
    char *from_id = json_text(e, NL_FROM, NULL) ? xstrdup(json_text(e, NL_FROM, NULL)) : NULL;
    char *branch_id = xstrdup(json_text(e, "branch_id", NULL)), *endpoint_id = xstrdup(json_text(e, "id", NULL));
    char *project_id = xstrdup(json_text(project, "id", NULL));
    int port = nl_endpoint_port(e);
    pthread_mutex_unlock(&api->lock);
    int rc = apply_endpoint_change(api, change, branch_id, from_id, port);
    pthread_mutex_lock(&api->lock);
    cJSON *p = nl_state_any_project(api->state, project_id);
    cJSON *endpoint = nl_state_item_in(p, NL_ENDPOINTS, endpoint_id);
    cJSON *branch = nl_state_item_in(p, NL_BRANCHES, branch_id);
    int history_needed = 0;
    if (endpoint) {
        cJSON_DeleteItemFromObjectCaseSensitive(endpoint, NL_PENDING);
        cJSON_DeleteItemFromObjectCaseSensitive(endpoint, NL_FROM);
        int stopped = !strcmp(change, "suspend") || !strcmp(change, "delete");
        if (rc == 0 && !strcmp(change, "delete")) {
            cJSON_DetachItemViaPointer(nl_state_list(p, NL_ENDPOINTS), endpoint);
            cJSON_Delete(endpoint);
        } else if (rc == 0) {
            nl_state_set_current(endpoint, stopped ? NL_ENDPOINT_IDLE : NL_ENDPOINT_ACTIVE);
            history_needed = !stopped && branch && !cJSON_GetObjectItemCaseSensitive(branch, NL_HISTORY_FROM);
        }
        finish_operations(p, branch_id, rc ? err_last() : NULL);
    }
    if (rc)
        fprintf(stderr, "neon-local: endpoint %s (%s): %s\n", endpoint_id, change, err_last());
    save_state(api);
    /* A branch that was data only starts its own history with its endpoint. */
    if (history_needed)
        record_history_start(api, project_id, branch_id, port);
    free(change);
    free(from_id);
    free(branch_id);
    free(endpoint_id);
    free(project_id);
    return 1;
}

/* A branch waiting to be deleted: done here, lock released meanwhile. */
static int run_deletion(nl_api *api)
{
    cJSON *project;
    cJSON *branch = first_pending(api, NL_BRANCHES, awaits_deletion, &project);
    if (!branch)
        return 0;
    char *branch_id = xstrdup(json_text(branch, "id", NULL));
    char *project_id = xstrdup(json_text(project, "id", NULL));
    pthread_mutex_unlock(&api->lock);
    int rc = remove_branch_files(api, branch_id);
    pthread_mutex_lock(&api->lock);
    /* The raw lookup: a deleted project is exactly what this cleans up. */
    cJSON *p = nl_state_any_project(api->state, project_id);
    if (p) {
        finish_operations(p, branch_id, rc ? err_last() : NULL);
        if (rc != 0) {
            nl_state_set_current(nl_state_item_in(p, NL_BRANCHES, branch_id), NL_BRANCH_ERROR);
        } else {
            nl_state_forget_branch(p, branch_id);
            /* A deleted project goes once its last branch is gone. */
            if (cJSON_GetObjectItemCaseSensitive(p, NL_DELETED) &&
                cJSON_GetArraySize(nl_state_list(p, NL_BRANCHES)) == 0) {
                cJSON_DetachItemViaPointer(nl_state_projects(api->state), p);
                cJSON_Delete(p);
            }
        }
    }
    save_state(api);
    free(branch_id);
    free(project_id);
    return 1;
}

/* The next branch waiting to be made. */
static int next_job(nl_api *api, branch_job *job)
{
    cJSON *project;
    cJSON *branch = first_pending(api, NL_BRANCHES, awaits_making, &project);
    if (!branch)
        return 0;
    const char *parent_id = json_text(branch, "parent_id", NULL);
    memset(job, 0, sizeof *job);
    job->branch_id = xstrdup(json_text(branch, "id", NULL));
    job->port = nl_endpoint_port(nl_endpoint_of(project, job->branch_id));
    if (json_text(branch, NL_TARGET, NULL))
        job->target = xstrdup(json_text(branch, NL_TARGET, NULL));
    if (parent_id) {
        job->parent_id = xstrdup(parent_id);
        job->parent_port = nl_endpoint_port(nl_endpoint_of(project, parent_id));
    } else {
        cJSON *role = cJSON_GetArrayItem(nl_state_list(project, NL_ROLES), 0);
        cJSON *database = cJSON_GetArrayItem(nl_state_list(project, NL_DATABASES), 0);
        job->role = xstrdup(json_text(role, "name", NULL));
        job->password = xstrdup(json_text(role, NL_PASSWORD, NULL));
        job->database = xstrdup(json_text(database, "name", NULL));
    }
    return 1;
}

/* Defined with the resources below; the scheduler makes snapshots too, and
 * expiry deletes branches as DELETE does. */
static cJSON *add_branch(cJSON *project, const char *name, int is_default);
static cJSON *start_deletion(cJSON *project, cJSON *branch);

/* ---- what the worker's jobs still need ---------------------------------------- */

/* An endpoint whose change (create, start, suspend, delete, move) is
 * waiting or running, on the branch or moving off it (finalize_restore
 * stops the branch it leaves). */
static cJSON *endpoint_changing(cJSON *project, const char *branch_id)
{
    cJSON *e;
    cJSON_ArrayForEach(e, nl_state_list(project, NL_ENDPOINTS))
        if (json_text(e, NL_PENDING, NULL) && (!strcmp(json_text(e, "branch_id", NULL), branch_id) ||
                                       (json_text(e, NL_FROM, NULL) && !strcmp(json_text(e, NL_FROM, NULL), branch_id))))
            return e;
    return NULL;
}

/* The job that still needs a branch's files or its server: a branch being
 * made from it (at head or at a point in time, a snapshot of it, a branch
 * from a snapshot), a branch being restored from it, an endpoint change on
 * it. The worker reads a source when it gets to the job, not when the job is
 * asked for, and the job stays in the state until it is done, so this holds
 * from the request to the end. Deleting, expiring or restoring over such a
 * branch, or stopping or starting its server, would make the job fail
 * half-way. Returns what the job is (caller frees), or NULL. */
static char *job_needing(cJSON *project, const char *branch_id)
{
    const cJSON *b;
    cJSON_ArrayForEach(b, nl_state_list(project, NL_BRANCHES)) {
        const char *id = json_text(b, "id", NULL), *parent = json_text(b, "parent_id", NULL);
        const cJSON *restore = cJSON_GetObjectItemCaseSensitive(b, NL_RESTORE);
        if (!nl_state_is(b, NL_BRANCH_INIT) || !strcmp(id, branch_id))
            continue;
        if (restore && json_text(restore, "source_branch_id", NULL) && !strcmp(json_text(restore, "source_branch_id", NULL), branch_id))
            return xasprintf("branch %s is being restored from it", id);
        /* A preserved branch gets its files by a move, not by reading its parent. */
        if (!restore && !cJSON_GetObjectItemCaseSensitive(b, NL_PRESERVING) && parent && !strcmp(parent, branch_id))
            return nl_branch_is_snapshot(b) ? xasprintf("snapshot %s is being taken of it", id)
                                  : xasprintf("branch %s is being made from it", id);
    }
    const cJSON *e = endpoint_changing(project, branch_id);
    if (e)
        return xasprintf("endpoint %s is being changed (%s)", json_text(e, "id", NULL), json_text(e, NL_PENDING, NULL));
    return NULL;
}

static int is_needed(cJSON *project, const char *branch_id)
{
    char *why = job_needing(project, branch_id);
    int needed = why != NULL;
    free(why);
    return needed;
}

/* 423 in Neon's shape while a job still needs the branch (job_needing). */
static int refuse_if_needed(cJSON *project, const cJSON *branch, nl_response *error)
{
    char *why = job_needing(project, json_text(branch, "id", NULL));
    if (!why)
        return 0;
    *error = nl_error(423, "", "%s %s has an operation in progress (%s); wait for it to finish",
                      nl_branch_is_snapshot(branch) ? "snapshot" : "branch", json_text(branch, "id", NULL), why);
    free(why);
    return -1;
}

/* A branch a new job may read: ready, and no server being started, stopped
 * or moved on it (the worker could read it before that is done, or while). */
static int readable_now(cJSON *project, const cJSON *branch)
{
    return nl_state_is(branch, NL_BRANCH_READY) && !endpoint_changing(project, json_text(branch, "id", NULL));
}

/* A branch (or snapshot) whose creation or restore failed: in error, its
 * operations failed, nothing running on it any more. Deleting it is the only
 * way to clean it up, and Neon lets a failed branch be deleted too. */
static int failed_and_idle(cJSON *project, const cJSON *branch)
{
    const char *id = json_text(branch, "id", NULL);
    if (!nl_state_is(branch, NL_BRANCH_ERROR) || endpoint_changing(project, id))
        return 0;
    const cJSON *op;
    cJSON_ArrayForEach(op, nl_state_list(project, NL_OPERATIONS))
        if (!strcmp(json_text(op, "status", NULL), NL_OPERATION_RUNNING) && json_text(op, "branch_id", NULL) && !strcmp(json_text(op, "branch_id", NULL), id))
            return 0;
    return 1;
}

/* Snapshots whose expires_at has passed (on the schedule clock) go. */
static int expire_snapshots(nl_api *api)
{
    int any = 0;
    cJSON *project;
    cJSON_ArrayForEach(project, nl_state_projects(api->state)) {
        cJSON *b;
        cJSON_ArrayForEach(b, nl_state_list(project, NL_BRANCHES)) {
            double due;
            const char *expires = json_text(b, NL_EXPIRES_AT, NULL);
            if (!nl_branch_is_snapshot(b) || !expires || !(nl_state_is(b, NL_BRANCH_READY) || failed_and_idle(project, b)) ||
                timefmt_parse_timestamp(&due, expires) != 0 || due > schedule_now(api))
                continue;
            /* A branch being restored from it keeps it until that is done. */
            if (is_needed(project, json_text(b, "id", NULL)))
                continue;
            nl_state_set_current(b, NL_BRANCH_DELETING);
            new_operation(project, "delete_timeline", json_text(b, "id", NULL), NULL);
            any = 1;
        }
    }
    if (any)
        save_state(api);
    return any;
}

/* Branches whose expires_at has passed (on the schedule clock, so that
 * --clock-speed rehearses TTLs as it does snapshot retention) are deleted
 * as DELETE deletes them: server stopped, data removed, endpoints, roles and
 * databases gone. A branch waits until no operation runs on it or needs it.
 * The API never lets an expiring branch be the default, protected or a
 * parent (as Neon's branch expiration rules say), so one that is can only
 * come from a state written some other way: it is kept, as DELETE would
 * refuse it, and its children would lose their parent. */
static int expire_branches(nl_api *api)
{
    int any = 0;
    double now = schedule_now(api);
    cJSON *project;
    cJSON_ArrayForEach(project, nl_state_projects(api->state)) {
        if (cJSON_GetObjectItemCaseSensitive(project, NL_DELETED))
            continue;
        cJSON *b;
        cJSON_ArrayForEach(b, nl_state_list(project, NL_BRANCHES)) {
            double due;
            const char *expires = json_text(b, "expires_at", NULL);
            if (nl_branch_is_snapshot(b) || !expires || !(nl_state_is(b, NL_BRANCH_READY) || failed_and_idle(project, b)) ||
                is_needed(project, json_text(b, "id", NULL)) || timefmt_parse_timestamp(&due, expires) != 0 || due > now)
                continue;
            if (nl_state_flag(b, "default") ||
                nl_state_flag(b, "protected") || nl_branch_has_children(project, json_text(b, "id", NULL)))
                continue;
            fprintf(stderr, "neon-local: branch %s expired at %s: deleting it\n", json_text(b, "id", NULL), expires);
            cJSON_Delete(start_deletion(project, b));
            any = 1;
        }
    }
    if (any)
        save_state(api);
    return any;
}

/* The latest instant a schedule item fires at, at or before t (UTC). */
static double latest_slot(const cJSON *item, double t)
{
    const char *frequency = json_text(item, "frequency", NULL);
    const cJSON *hour = cJSON_GetObjectItemCaseSensitive(item, "hour");
    const cJSON *day = cJSON_GetObjectItemCaseSensitive(item, "day");
    const cJSON *month = cJSON_GetObjectItemCaseSensitive(item, "month");
    time_t now = (time_t)t;
    struct tm tm;
    gmtime_r(&now, &tm);
    tm.tm_min = tm.tm_sec = 0;
    if (strcmp(frequency, "hourly") != 0)
        tm.tm_hour = cJSON_IsNumber(hour) ? hour->valueint : 0;
    if (!strcmp(frequency, "monthly") || !strcmp(frequency, "yearly"))
        tm.tm_mday = cJSON_IsNumber(day) ? day->valueint : 1;
    if (!strcmp(frequency, "yearly"))
        tm.tm_mon = (cJSON_IsNumber(month) ? month->valueint : 1) - 1;
    double slot = (double)timegm(&tm);
    if (!strcmp(frequency, "weekly")) { /* day 1..7 = Monday..Sunday */
        int want = cJSON_IsNumber(day) ? day->valueint % 7 : 1, have = tm.tm_wday;
        slot -= ((have - want + 7) % 7) * 86400.0;
    }
    /* Not reached yet in this period: the previous period's instant. */
    if (slot > t) {
        if (!strcmp(frequency, "hourly"))
            slot -= 3600;
        else if (!strcmp(frequency, "daily"))
            slot -= 86400;
        else if (!strcmp(frequency, "weekly"))
            slot -= 7 * 86400;
        else if (!strcmp(frequency, "monthly")) {
            tm.tm_mon -= 1;
            slot = (double)timegm(&tm);
        } else {
            tm.tm_year -= 1;
            slot = (double)timegm(&tm);
        }
    }
    return slot;
}

/* Takes the scheduled snapshots that are due (one per item and slot, never
 * for slots before the schedule was set). */
static int take_scheduled_snapshots(nl_api *api)
{
    int any = 0;
    double now = schedule_now(api);
    cJSON *project;
    cJSON_ArrayForEach(project, nl_state_projects(api->state)) {
        cJSON *b;
        cJSON_ArrayForEach(b, nl_state_list(project, NL_BRANCHES)) {
            cJSON *schedule = cJSON_GetObjectItemCaseSensitive(b, NL_BACKUP_SCHEDULE);
            cJSON *last = cJSON_GetObjectItemCaseSensitive(b, NL_SCHEDULE_LAST);
            /* While its server is being changed, the next check takes the slot. */
            if (!schedule || !last || !readable_now(project, b) || nl_branch_is_snapshot(b))
                continue;
            for (int i = 0; i < cJSON_GetArraySize(schedule); i++) {
                cJSON *item = cJSON_GetArrayItem(schedule, i);
                cJSON *done = cJSON_GetArrayItem(last, i);
                double slot = latest_slot(item, now);
                if (!done || slot <= done->valuedouble)
                    continue;
                cJSON_SetNumberValue(done, slot);
                char when[48];
                timefmt_format_utc(when, sizeof when, slot);
                char *name = xasprintf("%s-%s-%.10s-%.2s%.2s", json_text(b, "name", NULL), json_text(item, "frequency", NULL), when,
                                       when + 11, when + 14);
                cJSON *snap = add_branch(project, name, 0);
                free(name);
                cJSON_AddTrueToObject(snap, NL_SNAPSHOT);
                cJSON_AddTrueToObject(snap, NL_SCHEDULED);
                cJSON_AddStringToObject(snap, "parent_id", json_text(b, "id", NULL));
                cJSON_AddStringToObject(snap, "parent_timestamp", json_text(snap, "created_at", NULL));
                nl_state_inherit_roles_and_databases(project, json_text(b, "id", NULL), json_text(snap, "id", NULL));
                const cJSON *keep = cJSON_GetObjectItemCaseSensitive(item, "retention_seconds");
                if (cJSON_IsNumber(keep)) {
                    char expires[48];
                    timefmt_format_utc(expires, sizeof expires, now + keep->valuedouble);
                    cJSON_AddStringToObject(snap, NL_EXPIRES_AT, expires);
                }
                new_operation(project, "create_branch", json_text(snap, "id", NULL), NULL);
                any = 1;
            }
        }
    }
    if (any)
        save_state(api);
    return any;
}

static void *worker_main(void *arg)
{
    nl_api *api = arg;
    pthread_mutex_lock(&api->lock);
    while (!api->stopping) {
        if (run_deletion(api) || run_next_restore(api) || run_endpoint_change(api))
            continue;
        if (expire_snapshots(api) || expire_branches(api) || take_scheduled_snapshots(api))
            continue;
        branch_job job;
        if (!next_job(api, &job)) {
            /* Woken by requests, or each second for schedules and expiry. */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&api->wake, &api->lock, &until);
            continue;
        }
        pthread_mutex_unlock(&api->lock);
        int rc = provision_branch(api, &job);
        pthread_mutex_lock(&api->lock);
        /* The project may have been deleted meanwhile: look it up again. */
        cJSON *p;
        cJSON_ArrayForEach(p, nl_state_projects(api->state)) {
            cJSON *b = nl_state_item_in(p, NL_BRANCHES, job.branch_id);
            if (!b)
                continue;
            char *now = now_text();
            nl_state_set_current(b, rc ? NL_BRANCH_ERROR : NL_BRANCH_READY);
            nl_state_set(b, "state_changed_at", cJSON_CreateString(now));
            cJSON *e = nl_endpoint_of(p, job.branch_id);
            if (e)
                nl_state_set_current(e, rc ? NL_ENDPOINT_IDLE : NL_ENDPOINT_ACTIVE);
            finish_operations(p, job.branch_id, rc ? err_last() : NULL);
            free(now);
        }
        if (rc)
            fprintf(stderr, "neon-local: branch %s: %s\n", job.branch_id, err_last());
        save_state(api);
        char *project_id = NULL;
        cJSON_ArrayForEach(p, nl_state_projects(api->state))
            if (nl_state_item_in(p, NL_BRANCHES, job.branch_id))
                project_id = xstrdup(json_text(p, "id", NULL));
        if (rc == 0 && job.port && job.parent_id && project_id)
            record_history_start(api, project_id, job.branch_id, job.port);
        else if (rc == 0 && job.port && project_id) {
            cJSON *pr = nl_state_any_project(api->state, project_id);
            cJSON *b = nl_state_item_in(pr, NL_BRANCHES, job.branch_id);
            if (b) {
                nl_state_set(b, NL_HISTORY_FROM, cJSON_CreateNumber(timefmt_now()));
                save_state(api);
            }
        }
        free(project_id);
        branch_job_free(&job);
    }
    pthread_mutex_unlock(&api->lock);
    return NULL;
}

/* ---- projects -------------------------------------------------------------- */

static void add_access(cJSON *body, cJSON *project, const char *branch_id, const cJSON *endpoint);

/* A synchronous change: the state saved, then {key: item, operations: []}
 * (or 500 when the state cannot be saved). */
static nl_response saved_answer(nl_api *api, const char *key, cJSON *item)
{
    if (save_state(api) != 0) {
        cJSON_Delete(item);
        return nl_error(500, "", "cannot save neon-local's state: %s", err_last());
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, key, item);
    cJSON_AddArrayToObject(body, "operations");
    return nl_json(200, body);
}

static cJSON *project_json(const cJSON *project)
{
    return nl_state_public_copy(project);
}

static nl_response list_projects(nl_api *api, const nl_request *req)
{
    (void)req;
    cJSON *list = cJSON_CreateArray();
    const cJSON *p;
    cJSON_ArrayForEach(p, nl_state_projects(api->state))
        if (!cJSON_GetObjectItemCaseSensitive(p, NL_DELETED))
            cJSON_AddItemToArray(list, project_json(p));
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "projects", list);
    return nl_json(200, body);
}

static cJSON *make_project(const char *name, double retention)
{
    char *id = new_id(""), *now = now_text();
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "id", id);
    cJSON_AddStringToObject(p, "platform_id", "neon-local");
    cJSON_AddStringToObject(p, "region_id", "local");
    cJSON_AddStringToObject(p, "name", name ? name : id);
    cJSON_AddNumberToObject(p, "pg_version", 15);
    cJSON_AddStringToObject(p, "proxy_host", "127.0.0.1");
    cJSON_AddNumberToObject(p, "branch_logical_size_limit", 0);
    cJSON_AddNumberToObject(p, "branch_logical_size_limit_bytes", 0);
    cJSON_AddTrueToObject(p, "store_passwords");
    cJSON_AddNumberToObject(p, "cpu_used_sec", 0);
    cJSON_AddStringToObject(p, "provisioner", "k8s-neonvm");
    cJSON_AddStringToObject(p, "creation_source", "neon-local");
    cJSON_AddNumberToObject(p, "history_retention_seconds", retention);
    cJSON_AddStringToObject(p, "created_at", now);
    cJSON_AddStringToObject(p, "updated_at", now);
    cJSON_AddStringToObject(p, "owner_id", "neon-local");
    cJSON_AddStringToObject(p, "consumption_period_start", now);
    cJSON_AddStringToObject(p, "consumption_period_end", now);
    cJSON_AddNumberToObject(p, "active_time_seconds", 0);
    cJSON_AddNumberToObject(p, "compute_time_seconds", 0);
    cJSON_AddNumberToObject(p, "written_data_bytes", 0);
    cJSON_AddNumberToObject(p, "data_transfer_bytes", 0);
    cJSON_AddNumberToObject(p, "data_storage_bytes_hour", 0);
    cJSON_AddObjectToObject(p, "settings");
    cJSON_AddObjectToObject(p, "default_endpoint_settings");
    cJSON_AddArrayToObject(p, NL_BRANCHES);
    cJSON_AddArrayToObject(p, NL_ENDPOINTS);
    cJSON_AddArrayToObject(p, NL_ROLES);
    cJSON_AddArrayToObject(p, NL_DATABASES);
    cJSON_AddArrayToObject(p, NL_OPERATIONS);
    free(id);
    free(now);
    return p;
}

static cJSON *add_branch(cJSON *project, const char *name, int is_default)
{
    char *id = new_id("br"), *now = now_text();
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "id", id);
    cJSON_AddStringToObject(b, "project_id", json_text(project, "id", NULL));
    cJSON_AddStringToObject(b, "name", name);
    cJSON_AddStringToObject(b, "current_state", NL_BRANCH_INIT);
    cJSON_AddStringToObject(b, "state_changed_at", now);
    cJSON_AddStringToObject(b, "creation_source", "neon-local");
    cJSON_AddBoolToObject(b, "primary", is_default);
    cJSON_AddBoolToObject(b, "default", is_default);
    cJSON_AddFalseToObject(b, "protected");
    cJSON_AddNumberToObject(b, "cpu_used_sec", 0);
    cJSON_AddNumberToObject(b, "compute_time_seconds", 0);
    cJSON_AddNumberToObject(b, "active_time_seconds", 0);
    cJSON_AddNumberToObject(b, "written_data_bytes", 0);
    cJSON_AddNumberToObject(b, "data_transfer_bytes", 0);
    cJSON_AddStringToObject(b, "created_at", now);
    cJSON_AddStringToObject(b, "updated_at", now);
    cJSON_AddItemToArray(nl_state_list(project, NL_BRANCHES), b);
    free(id);
    free(now);
    return b;
}

static cJSON *add_endpoint(cJSON *project, const cJSON *branch, int port)
{
    char *id = new_id("ep"), *now = now_text();
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "id", id);
    cJSON_AddStringToObject(e, "host", "127.0.0.1");
    cJSON_AddStringToObject(e, "project_id", json_text(project, "id", NULL));
    cJSON_AddStringToObject(e, "branch_id", json_text(branch, "id", NULL));
    cJSON_AddNumberToObject(e, "autoscaling_limit_min_cu", 0.25);
    cJSON_AddNumberToObject(e, "autoscaling_limit_max_cu", 0.25);
    cJSON_AddStringToObject(e, "region_id", "local");
    cJSON_AddStringToObject(e, "type", "read_write");
    cJSON_AddStringToObject(e, "current_state", NL_ENDPOINT_INIT);
    cJSON_AddObjectToObject(e, "settings");
    cJSON_AddFalseToObject(e, "pooler_enabled");
    cJSON_AddStringToObject(e, "pooler_mode", "transaction");
    cJSON_AddFalseToObject(e, "disabled");
    cJSON_AddFalseToObject(e, "passwordless_access");
    cJSON_AddStringToObject(e, "creation_source", "neon-local");
    cJSON_AddStringToObject(e, "created_at", now);
    cJSON_AddStringToObject(e, "updated_at", now);
    cJSON_AddStringToObject(e, "proxy_host", "127.0.0.1");
    cJSON_AddNumberToObject(e, "suspend_timeout_seconds", 0);
    cJSON_AddStringToObject(e, "provisioner", "k8s-neonvm");
    cJSON_AddNumberToObject(e, NL_PORT, port);
    cJSON_AddItemToArray(nl_state_list(project, NL_ENDPOINTS), e);
    free(id);
    free(now);
    return e;
}

/* Checks a project's name and history_retention_seconds (create, update). */
static int valid_project_fields(const cJSON *spec, nl_response *bad)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(spec, "name");
    const cJSON *retention = cJSON_GetObjectItemCaseSensitive(spec, "history_retention_seconds");
    if (name && (!cJSON_IsString(name) || !name->valuestring[0])) {
        *bad = nl_error(400, "", "project.name must be a non-empty string");
        return -1;
    }
    if (retention && (!cJSON_IsNumber(retention) || retention->valuedouble < 0 || retention->valuedouble > 2592000)) {
        *bad = nl_error(400, "", "history_retention_seconds must be between 0 and 2592000 (30 days)");
        return -1;
    }
    return 0;
}

static nl_response create_project(nl_api *api, const nl_request *req)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(req->body, "project");
    if (!cJSON_IsObject(spec))
        return nl_error(400, "", "the body must be {\"project\": {...}}");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(spec, "name");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(spec, "pg_version");
    const cJSON *retention = cJSON_GetObjectItemCaseSensitive(spec, "history_retention_seconds");
    nl_response bad;
    if (valid_project_fields(spec, &bad) != 0)
        return bad;
    if (version && (!cJSON_IsNumber(version) || version->valueint != 15))
        return nl_error(400, "", "neon-local runs PostgreSQL 15 only: pg_version must be 15");
    int port = nl_free_port();
    if (port < 0)
        return nl_error(500, "", "no free port for the project's endpoint");
    cJSON *project = make_project(name ? name->valuestring : NULL, retention ? retention->valuedouble : 604800);
    cJSON *branch = add_branch(project, "main", 1);
    cJSON *endpoint = add_endpoint(project, branch, port);
    char *password = new_password(), *now = now_text();
    cJSON *role = cJSON_CreateObject();
    cJSON_AddStringToObject(role, "branch_id", json_text(branch, "id", NULL));
    cJSON_AddStringToObject(role, "name", "neondb_owner");
    cJSON_AddFalseToObject(role, "protected");
    cJSON_AddStringToObject(role, NL_PASSWORD, password);
    cJSON_AddStringToObject(role, "created_at", now);
    cJSON_AddStringToObject(role, "updated_at", now);
    cJSON_AddItemToArray(nl_state_list(project, NL_ROLES), role);
    cJSON *database = cJSON_CreateObject();
    cJSON_AddNumberToObject(database, "id", 1);
    cJSON_AddStringToObject(database, "branch_id", json_text(branch, "id", NULL));
    cJSON_AddStringToObject(database, "name", "neondb");
    cJSON_AddStringToObject(database, "owner_name", "neondb_owner");
    cJSON_AddStringToObject(database, "created_at", now);
    cJSON_AddStringToObject(database, "updated_at", now);
    cJSON_AddItemToArray(nl_state_list(project, NL_DATABASES), database);
    cJSON *ops = cJSON_CreateArray();
    cJSON_AddItemToArray(ops, cJSON_Duplicate(new_operation(project, "create_timeline", json_text(branch, "id", NULL), NULL), 1));
    cJSON_AddItemToArray(ops, cJSON_Duplicate(new_operation(project, "start_compute", json_text(branch, "id", NULL),
                                                            json_text(endpoint, "id", NULL)), 1));
    cJSON_AddItemToArray(nl_state_projects(api->state), project);
    if (save_state(api) != 0) {
        cJSON_DetachItemViaPointer(nl_state_projects(api->state), project);
        cJSON_Delete(project);
        cJSON_Delete(ops);
        free(password);
        free(now);
        return nl_error(500, "", "cannot save neon-local's state: %s", err_last());
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "project", project_json(project));
    add_access(body, project, json_text(branch, "id", NULL), endpoint);
    cJSON_AddItemToObject(body, "operations", ops);
    cJSON_AddItemToObject(body, "branch", nl_state_public_copy(branch));
    cJSON *endpoints = cJSON_AddArrayToObject(body, "endpoints");
    cJSON_AddItemToArray(endpoints, nl_state_public_copy(endpoint));
    free(password);
    free(now);
    pthread_cond_signal(&api->wake);
    return nl_json(201, body);
}

static nl_response get_project(nl_api *api, const char *project_id)
{
    cJSON *p = nl_state_live_project(api->state, project_id);
    if (!p)
        return nl_error(404, "", "project %s not found", project_id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "project", project_json(p));
    return nl_json(200, body);
}

static nl_response update_project(nl_api *api, const char *project_id, const nl_request *req)
{
    cJSON *p = nl_state_live_project(api->state, project_id);
    if (!p)
        return nl_error(404, "", "project %s not found", project_id);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(req->body, "project");
    nl_response bad;
    if (!cJSON_IsObject(spec))
        return nl_error(400, "", "the body must be {\"project\": {...}}");
    if (valid_project_fields(spec, &bad) != 0)
        return bad;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(spec, "name");
    const cJSON *retention = cJSON_GetObjectItemCaseSensitive(spec, "history_retention_seconds");
    if (name)
        nl_state_set(p, "name", cJSON_CreateString(name->valuestring));
    if (retention)
        nl_state_set(p, "history_retention_seconds", cJSON_CreateNumber(retention->valuedouble));
    char *now = now_text();
    nl_state_set(p, "updated_at", cJSON_CreateString(now));
    free(now);
    return saved_answer(api, "project", project_json(p));
}

/* DELETE /projects/{id}: gone for the API at once; its servers are stopped
 * and its data removed in the background. */
static nl_response delete_project(nl_api *api, const char *project_id)
{
    cJSON *p = nl_state_live_project(api->state, project_id);
    if (!p)
        return nl_error(404, "", "project %s not found", project_id);
    cJSON *b;
    cJSON_ArrayForEach(b, nl_state_list(p, NL_BRANCHES))
        if (!nl_state_is(b, NL_BRANCH_READY) && !nl_state_is(b, NL_BRANCH_ERROR))
            return nl_error(423, "", "branch %s has an operation in progress; wait for it to finish", json_text(b, "id", NULL));
    cJSON *e;
    cJSON_ArrayForEach(e, nl_state_list(p, NL_ENDPOINTS))
        if (json_text(e, NL_PENDING, NULL))
            return nl_error(423, "", "endpoint %s has an operation in progress; wait for it to finish", json_text(e, "id", NULL));
    cJSON_ArrayForEach(b, nl_state_list(p, NL_BRANCHES))
        nl_state_set_current(b, NL_BRANCH_DELETING);
    cJSON_AddTrueToObject(p, NL_DELETED);
    if (cJSON_GetArraySize(nl_state_list(p, NL_BRANCHES)) == 0) {
        cJSON_DetachItemViaPointer(nl_state_projects(api->state), p);
        cJSON *body = cJSON_CreateObject();
        cJSON_AddItemToObject(body, "project", project_json(p));
        cJSON_Delete(p);
        save_state(api);
        return nl_json(200, body);
    }
    if (save_state(api) != 0)
        return nl_error(500, "", "cannot save neon-local's state: %s", err_last());
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "project", project_json(p));
    pthread_cond_signal(&api->wake);
    return nl_json(200, body);
}

static nl_response get_operation(nl_api *api, const char *project_id, const char *operation_id)
{
    cJSON *p = nl_state_live_project(api->state, project_id);
    if (!p)
        return nl_error(404, "", "project %s not found", project_id);
    cJSON *op = nl_state_item_in(p, NL_OPERATIONS, operation_id);
    if (!op)
        return nl_error(404, "", "operation %s not found in project %s", operation_id, project_id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "operation", cJSON_Duplicate(op, 1));
    return nl_json(200, body);
}

static nl_response list_operations(nl_api *api, const char *project_id)
{
    cJSON *p = nl_state_live_project(api->state, project_id);
    if (!p)
        return nl_error(404, "", "project %s not found", project_id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "operations", cJSON_Duplicate(nl_state_list(p, NL_OPERATIONS), 1));
    return nl_json(200, body);
}

/* ---- branches --------------------------------------------------------------- */





/* roles (with passwords), databases and connection_uris of a branch, as the
 * create responses show them. */
static void add_access(cJSON *body, cJSON *project, const char *branch_id, const cJSON *endpoint)
{
    cJSON *roles = cJSON_AddArrayToObject(body, "roles");
    cJSON *databases = cJSON_AddArrayToObject(body, "databases");
    cJSON *uris = cJSON_AddArrayToObject(body, "connection_uris");
    const cJSON *role, *db;
    cJSON_ArrayForEach(role, nl_state_list(project, NL_ROLES)) {
        if (strcmp(json_text(role, "branch_id", NULL), branch_id) != 0)
            continue;
        cJSON *shown = nl_state_public_copy(role);
        cJSON_AddStringToObject(shown, "password", json_text(role, NL_PASSWORD, NULL));
        cJSON_AddItemToArray(roles, shown);
    }
    cJSON_ArrayForEach(db, nl_state_list(project, NL_DATABASES)) {
        if (strcmp(json_text(db, "branch_id", NULL), branch_id) != 0)
            continue;
        cJSON_AddItemToArray(databases, nl_state_public_copy(db));
        const cJSON *owner = NULL;
        cJSON_ArrayForEach(role, nl_state_list(project, NL_ROLES))
            if (!strcmp(json_text(role, "branch_id", NULL), branch_id) && !strcmp(json_text(role, "name", NULL), json_text(db, "owner_name", NULL)))
                owner = role;
        if (!endpoint || !owner)
            continue;
        cJSON *uri = cJSON_CreateObject();
        char *text = connection_uri(owner, endpoint, json_text(db, "name", NULL));
        cJSON_AddStringToObject(uri, "connection_uri", text);
        cJSON *parameters = cJSON_AddObjectToObject(uri, "connection_parameters");
        cJSON_AddStringToObject(parameters, "database", json_text(db, "name", NULL));
        cJSON_AddStringToObject(parameters, "password", json_text(owner, NL_PASSWORD, NULL));
        cJSON_AddStringToObject(parameters, "role", json_text(owner, "name", NULL));
        cJSON_AddStringToObject(parameters, "host", "127.0.0.1");
        cJSON_AddStringToObject(parameters, "pooler_host", "127.0.0.1");
        cJSON_AddItemToArray(uris, uri);
        free(text);
    }
}

static int wants_endpoint(const cJSON *endpoints, nl_response *bad)
{
    if (!endpoints)
        return 0;
    if (!cJSON_IsArray(endpoints) || cJSON_GetArraySize(endpoints) > 1) {
        *bad = nl_error(400, "", "endpoints must be a list of at most one {\"type\": \"read_write\"}");
        return -1;
    }
    const cJSON *e = cJSON_GetArrayItem(endpoints, 0);
    if (!e)
        return 0;
    const char *type = json_text(e, "type", NULL);
    if (!type || strcmp(type, "read_write") != 0) {
        *bad = nl_error(400, "", "neon-local makes read_write endpoints only");
        return -1;
    }
    return 1;
}

static int valid_lsn(const char *text)
{
    const char *slash = strchr(text, '/');
    if (!slash || slash == text || !slash[1] || strlen(text) > 17)
        return 0;
    for (const char *p = text; *p; p++)
        if (p != slash && !strchr("0123456789ABCDEFabcdef", *p))
            return 0;
    return 1;
}

static unsigned long long lsn_value(const char *text)
{
    unsigned hi = 0, lo = 0;
    sscanf(text, "%X/%X", &hi, &lo);
    return (unsigned long long)hi << 32 | lo;
}

/* parent_timestamp / parent_lsn: the recovery target of a branch in the
 * past, checked against the future, the project's history retention window
 * and the start of the parent's own history. */
static int point_in_time(cJSON *project, cJSON *parent, const cJSON *spec, char **target, nl_response *bad)
{
    const cJSON *when = cJSON_GetObjectItemCaseSensitive(spec, "parent_timestamp");
    const cJSON *lsn = cJSON_GetObjectItemCaseSensitive(spec, "parent_lsn");
    *target = NULL;
    if (!when && !lsn)
        return 0;
    if (when && lsn) {
        *bad = nl_error(400, "", "give parent_timestamp or parent_lsn, not both");
        return -1;
    }
    if (lsn) {
        if (!cJSON_IsString(lsn) || !valid_lsn(lsn->valuestring)) {
            *bad = nl_error(400, "", "parent_lsn must be an LSN like 0/1A2B3C4");
            return -1;
        }
        int port = nl_endpoint_port(nl_endpoint_of(project, json_text(parent, "id", NULL)));
        char *end = port ? nl_pg_current_lsn(port) : NULL;
        int beyond = end && lsn_value(lsn->valuestring) > lsn_value(end);
        if (beyond)
            *bad = nl_error(400, "", "parent_lsn %s is beyond the end of branch %s's WAL (%s)", lsn->valuestring,
                            json_text(parent, "id", NULL), end);
        free(end);
        if (beyond)
            return -1;
        *target = xasprintf("recovery_target_lsn = '%s'", lsn->valuestring);
        return 0;
    }
    double t, now = timefmt_now();
    if (!cJSON_IsString(when) || timefmt_parse_timestamp(&t, when->valuestring) != 0) {
        *bad = nl_error(400, "", "parent_timestamp must be an RFC 3339 time like 2026-01-11T14:29:59Z");
        return -1;
    }
    const cJSON *retention = cJSON_GetObjectItemCaseSensitive(project, "history_retention_seconds");
    const cJSON *history = cJSON_GetObjectItemCaseSensitive(parent, NL_HISTORY_FROM);
    if (t > now) {
        *bad = nl_error(400, "", "parent_timestamp %s is in the future", when->valuestring);
        return -1;
    }
    if (cJSON_IsNumber(retention) && t < now - retention->valuedouble) {
        *bad = nl_error(400, "", "parent_timestamp %s is outside the project's history retention window (%.0f "
                        "seconds)", when->valuestring, retention->valuedouble);
        return -1;
    }
    if (!cJSON_IsNumber(history) && nl_endpoint_of(project, json_text(parent, "id", NULL))) {
        *bad = nl_error(423, "", "the history of branch %s is still being recorded; try again in a moment",
                        json_text(parent, "id", NULL));
        return -1;
    }
    if (!cJSON_IsNumber(history) || t < history->valuedouble) {
        char from[48] = "?";
        if (cJSON_IsNumber(history))
            timefmt_format_utc(from, sizeof from, history->valuedouble);
        *bad = nl_error(400, "", "parent_timestamp %s is before the history of branch %s starts (%s)",
                        when->valuestring, json_text(parent, "id", NULL), from);
        return -1;
    }
    /* PostgreSQL reads recovery_target_time before it knows timezone
     * abbreviations: "Z" is refused at startup, so the offset is numeric. */
    char normal[48];
    timefmt_format_utc(normal, sizeof normal, t);
    normal[10] = ' ';
    normal[strlen(normal) - 1] = '\0';
    *target = xasprintf("recovery_target_time = '%s+00'", normal);
    return 0;
}

/* ---- branch expiration (expires_at) ------------------------------------------- */

/* Neon's limit: "Maximum expiration is 30 days from the current time". */
#define MAX_BRANCH_TTL_SECONDS (30 * 86400.0)

/* After a timestamp timefmt has parsed: is a time zone there? The spec asks
 * for RFC 3339 section 5.6 (time-offset is not optional); timefmt also takes
 * times without one, as UTC. */
static int has_time_zone(const char *text)
{
    const char *p = text + 19; /* YYYY-MM-DDTHH:MM:SS */
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    return *p != '\0';
}

/* branch.expires_at as the spec and Neon's branch expiration guide take it:
 * an RFC 3339 date-time with 'T' and a time zone (Z or +hh:mm), fractions
 * allowed but only whole seconds kept, in the future and at most 30 days
 * ahead. Checked on the real clock, which is the one clients read; the
 * instant goes to *due. */
static int parse_expires_at(const cJSON *value, double *due, nl_response *bad)
{
    const char *text = cJSON_IsString(value) ? value->valuestring : NULL;
    double t, now = timefmt_now();
    if (!text || timefmt_parse_timestamp(&t, text) != 0 || (text[10] != 'T' && text[10] != 't') ||
        !has_time_zone(text)) {
        *bad = nl_error(400, "", "expires_at must be an RFC 3339 time with a time zone, like 2026-01-11T14:30:00Z");
        return -1;
    }
    t = floor(t);
    if (t <= now) {
        *bad = nl_error(400, "", "expires_at %s is not in the future", text);
        return -1;
    }
    if (t > now + MAX_BRANCH_TTL_SECONDS) {
        *bad = nl_error(400, "", "expires_at %s is more than 30 days from now; a branch can expire at most 30 days "
                        "ahead", text);
        return -1;
    }
    *due = t;
    return 0;
}

/* expires_at in UTC, whole seconds, and ttl_interval_seconds: the time from
 * now to then, which a reset from the parent applies again. */
static void set_expiry(cJSON *branch, double due)
{
    char text[48];
    timefmt_format_utc(text, sizeof text, due);
    nl_state_set(branch, "expires_at", cJSON_CreateString(text));
    nl_state_set(branch, "ttl_interval_seconds", cJSON_CreateNumber(ceil(due - timefmt_now())));
}

static void clear_expiry(cJSON *branch)
{
    cJSON_DeleteItemFromObjectCaseSensitive(branch, "expires_at");
    cJSON_DeleteItemFromObjectCaseSensitive(branch, "ttl_interval_seconds");
}

static nl_response create_branch(nl_api *api, const char *project_id, const nl_request *req)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    if (!project)
        return nl_error(404, "", "project %s not found", project_id);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(req->body, "branch");
    if (spec && !cJSON_IsObject(spec))
        return nl_error(400, "", "branch must be an object");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(spec, "name");
    const cJSON *parent_id = cJSON_GetObjectItemCaseSensitive(spec, "parent_id");
    if ((name && !cJSON_IsString(name)) || (parent_id && !cJSON_IsString(parent_id)))
        return nl_error(400, "", "branch.name and branch.parent_id must be strings");
    const cJSON *protect = cJSON_GetObjectItemCaseSensitive(spec, "protected");
    if (protect && !cJSON_IsBool(protect))
        return nl_error(400, "", "branch.protected must be true or false");
    nl_response bad;
    const cJSON *expires = cJSON_GetObjectItemCaseSensitive(spec, "expires_at");
    double due = 0;
    if (expires && parse_expires_at(expires, &due, &bad) != 0)
        return bad;
    if (expires && cJSON_IsTrue(protect))
        return nl_error(400, "", "a protected branch cannot expire: give expires_at or protected, not both");
    int endpoint_wanted = wants_endpoint(cJSON_GetObjectItemCaseSensitive(req->body, "endpoints"), &bad);
    if (endpoint_wanted < 0)
        return bad;
    cJSON *parent = parent_id ? nl_state_item_in(project, NL_BRANCHES, parent_id->valuestring)
                              : nl_branch_default(project);
    if (!parent)
        return nl_error(404, "", "branch %s not found in project %s", parent_id ? parent_id->valuestring : "(default)",
                        project_id);
    if (!readable_now(project, parent))
        return nl_error(423, "", "branch %s has an operation in progress; wait for it to finish", json_text(parent, "id", NULL));
    if (json_text(parent, "expires_at", NULL))
        return nl_error(400, "", "branch %s expires at %s, and an expiring branch cannot have child branches; remove "
                        "its expires_at first", json_text(parent, "id", NULL), json_text(parent, "expires_at", NULL));
    if (name && nl_branch_named(project, name->valuestring))
        return nl_error(409, "", "a branch named %s already exists in project %s", name->valuestring, project_id);
    char *target = NULL;
    if (point_in_time(project, parent, spec, &target, &bad) != 0)
        return bad;
    int port = endpoint_wanted ? nl_free_port() : 0;
    char *generated = NULL;
    if (!name)
        generated = new_id("br");
    cJSON *branch = add_branch(project, name ? name->valuestring : generated, 0);
    free(generated);
    char *now = now_text();
    cJSON_AddStringToObject(branch, "parent_id", json_text(parent, "id", NULL));
    const cJSON *asked_time = cJSON_GetObjectItemCaseSensitive(spec, "parent_timestamp");
    const cJSON *asked_lsn = cJSON_GetObjectItemCaseSensitive(spec, "parent_lsn");
    cJSON_AddStringToObject(branch, "parent_timestamp", asked_time ? asked_time->valuestring : now);
    if (asked_lsn)
        cJSON_AddStringToObject(branch, "parent_lsn", asked_lsn->valuestring);
    if (target)
        cJSON_AddStringToObject(branch, NL_TARGET, target);
    if (protect)
        nl_state_set(branch, "protected", cJSON_CreateBool(cJSON_IsTrue(protect)));
    if (expires)
        set_expiry(branch, due);
    free(target);
    free(now);
    cJSON *endpoint = endpoint_wanted ? add_endpoint(project, branch, port) : NULL;
    nl_state_inherit_roles_and_databases(project, json_text(parent, "id", NULL), json_text(branch, "id", NULL));
    cJSON *ops = cJSON_CreateArray();
    cJSON_AddItemToArray(ops, cJSON_Duplicate(new_operation(project, "create_branch", json_text(branch, "id", NULL), NULL), 1));
    if (endpoint)
        cJSON_AddItemToArray(ops, cJSON_Duplicate(new_operation(project, "start_compute", json_text(branch, "id", NULL),
                                                                json_text(endpoint, "id", NULL)), 1));
    if (save_state(api) != 0) {
        cJSON_Delete(ops);
        return nl_error(500, "", "cannot save neon-local's state: %s", err_last());
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "branch", nl_state_public_copy(branch));
    cJSON *endpoints = cJSON_AddArrayToObject(body, "endpoints");
    if (endpoint)
        cJSON_AddItemToArray(endpoints, nl_state_public_copy(endpoint));
    cJSON_AddItemToObject(body, "operations", ops);
    add_access(body, project, json_text(branch, "id", NULL), endpoint);
    pthread_cond_signal(&api->wake);
    return nl_json(201, body);
}

/* ---- listing branches: search, sort, keyset pagination ------------------------ */

typedef struct branch_order {
    const char *sort_by;   /* name, created_at, updated_at */
    int descending;
} branch_order;

static int compare_branches(const void *x, const void *y, void *arg)
{
    const branch_order *o = arg;
    const cJSON *a = *(const cJSON *const *)x, *b = *(const cJSON *const *)y;
    int c = strcmp(json_text(a, o->sort_by, NULL), json_text(b, o->sort_by, NULL));
    if (c == 0)
        c = strcmp(json_text(a, "id", NULL), json_text(b, "id", NULL));
    return o->descending ? -c : c;
}

static int matches_search(const cJSON *branch, const char *search)
{
    return !search || !*search || strcasestr(json_text(branch, "name", NULL), search) || strcasestr(json_text(branch, "id", NULL), search);
}

/* The cursor is the last item's sort key and id, hex-encoded: opaque to
 * clients, and stable when branches come and go between pages. */
static char *encode_cursor(const cJSON *branch, const char *sort_by)
{
    char *raw = xasprintf("%s\x1f%s", json_text(branch, sort_by, NULL), json_text(branch, "id", NULL));
    buf b = BUF_INIT;
    for (const char *p = raw; *p; p++)
        buf_printf(&b, "%02x", (unsigned char)*p);
    free(raw);
    return buf_detach(&b);
}

static char *decode_cursor(const char *cursor)
{
    size_t len = strlen(cursor);
    if (len % 2)
        return NULL;
    char *out = xmalloc(len / 2 + 1);
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        if (sscanf(cursor + 2 * i, "%2x", &v) != 1) {
            free(out);
            return NULL;
        }
        out[i] = (char)v;
    }
    out[len / 2] = '\0';
    return strchr(out, '\x1f') ? out : (free(out), NULL);
}

/* The branches a list or a count request selects, sorted; *error set when
 * a parameter is bad. */
static cJSON **select_branches(nl_api *api, const char *project_id, const nl_request *req, branch_order *order,
                               size_t *count, nl_response *error)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    if (!project) {
        *error = nl_error(404, "", "project %s not found", project_id);
        return NULL;
    }
    const char *sort_by = json_text(req->query, "sort_by", NULL), *sort_order = json_text(req->query, "sort_order", NULL);
    order->sort_by = sort_by ? sort_by : "updated_at";
    if (strcmp(order->sort_by, "name") && strcmp(order->sort_by, "created_at") && strcmp(order->sort_by, "updated_at")) {
        *error = nl_error(400, "", "sort_by must be name, created_at or updated_at");
        return NULL;
    }
    if (sort_order && strcmp(sort_order, "asc") && strcmp(sort_order, "desc")) {
        *error = nl_error(400, "", "sort_order must be asc or desc");
        return NULL;
    }
    order->descending = !sort_order || !strcmp(sort_order, "desc");
    cJSON *all = nl_state_list(project, NL_BRANCHES);
    cJSON **list = xcalloc((size_t)cJSON_GetArraySize(all) + 1, sizeof *list);
    size_t n = 0;
    cJSON *b;
    cJSON_ArrayForEach(b, all)
        if (!nl_branch_is_snapshot(b) && matches_search(b, json_text(req->query, "search", NULL)) &&
            !nl_state_is(b, NL_BRANCH_DELETING))
            list[n++] = b;
    qsort_r(list, n, sizeof *list, compare_branches, order);
    *count = n;
    return list;
}

static nl_response list_branches(nl_api *api, const char *project_id, const nl_request *req)
{
    branch_order order;
    size_t n;
    nl_response error;
    cJSON **list = select_branches(api, project_id, req, &order, &n, &error);
    if (!list)
        return error;
    const char *limit_text = json_text(req->query, "limit", NULL), *cursor = json_text(req->query, "cursor", NULL);
    long limit = limit_text ? strtol(limit_text, NULL, 10) : 10000;
    if (limit < 1 || limit > 10000) {
        free(list);
        return nl_error(400, "", "limit must be from 1 to 10000");
    }
    size_t start = 0;
    if (cursor && *cursor) {
        char *after = decode_cursor(cursor);
        if (!after) {
            free(list);
            return nl_error(400, "", "the cursor is not one this server gave");
        }
        /* Skip everything up to and including the cursor's item, by key. */
        char *sep = strchr(after, '\x1f');
        *sep = '\0';
        cJSON *probe = cJSON_CreateObject();
        cJSON_AddStringToObject(probe, order.sort_by, after);
        cJSON_AddStringToObject(probe, "id", sep + 1);
        while (start < n && compare_branches(&list[start], &probe, &order) <= 0)
            start++;
        cJSON_Delete(probe);
        free(after);
    }
    cJSON *body = cJSON_CreateObject();
    cJSON *branches = cJSON_AddArrayToObject(body, "branches");
    size_t end = start + (size_t)limit < n ? start + (size_t)limit : n;
    for (size_t i = start; i < end; i++)
        cJSON_AddItemToArray(branches, nl_state_public_copy(list[i]));
    cJSON_AddObjectToObject(body, "annotations");
    cJSON *pagination = cJSON_AddObjectToObject(body, "pagination");
    if (end < n && end > start) {
        char *next = encode_cursor(list[end - 1], order.sort_by);
        cJSON_AddStringToObject(pagination, "next", next);
        free(next);
    }
    cJSON_AddStringToObject(pagination, "sort_by", order.sort_by);
    cJSON_AddStringToObject(pagination, "sort_order", order.descending ? "DESC" : "ASC");
    free(list);
    return nl_json(200, body);
}

static nl_response count_branches(nl_api *api, const char *project_id, const nl_request *req)
{
    branch_order order;
    size_t n;
    nl_response error;
    cJSON **list = select_branches(api, project_id, req, &order, &n, &error);
    if (!list)
        return error;
    free(list);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddNumberToObject(body, "count", (double)n);
    return nl_json(200, body);
}

/* PATCH .../branches/{id}: name, protected and expires_at (a time sets or
 * moves the expiration, null removes it, as the spec says). Everything is
 * checked before anything changes. */
static nl_response update_branch(nl_api *api, const char *project_id, const char *branch_id, const nl_request *req)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    cJSON *branch = nl_state_item_in(project, NL_BRANCHES, branch_id);
    if (!branch || nl_branch_is_snapshot(branch))
        return nl_error(404, "", "branch %s not found in project %s", branch_id, project_id);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(req->body, "branch");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(spec, "name");
    const cJSON *protect = cJSON_GetObjectItemCaseSensitive(spec, "protected");
    const cJSON *expires = cJSON_GetObjectItemCaseSensitive(spec, "expires_at");
    if (!cJSON_IsObject(spec) || (name && (!cJSON_IsString(name) || !name->valuestring[0])) ||
        (protect && !cJSON_IsBool(protect)))
        return nl_error(400, "", "the body must be {\"branch\": {\"name\": \"...\", \"protected\": true|false, "
                        "\"expires_at\": \"...\"|null}}");
    if (name) {
        cJSON *other = nl_branch_named(project, name->valuestring);
        if (other && other != branch)
            return nl_error(409, "", "a branch named %s already exists in project %s", name->valuestring, project_id);
    }
    nl_response bad;
    double due = 0;
    if (expires && !cJSON_IsNull(expires) && parse_expires_at(expires, &due, &bad) != 0)
        return bad;
    /* Neon's rules, on the branch as this request would leave it: an
     * expiring branch is never the default, protected or a parent. */
    int will_expire = expires ? !cJSON_IsNull(expires) : json_text(branch, "expires_at", NULL) != NULL;
    int will_protect = protect ? cJSON_IsTrue(protect) : nl_state_flag(branch, "protected");
    if (will_expire && !expires && will_protect)
        return nl_error(400, "", "branch %s expires at %s, and an expiring branch cannot be protected; remove its "
                        "expires_at first", branch_id, json_text(branch, "expires_at", NULL));
    if (will_expire) {
        const char *why = NULL;
        if (nl_state_flag(branch, "default"))
            why = "it is the project's default branch";
        else if (will_protect)
            why = "it is protected";
        else if (nl_branch_has_children(project, branch_id))
            why = "it has child branches";
        if (why)
            return nl_error(400, "", "branch %s cannot expire: %s", branch_id, why);
    }
    if (name)
        nl_state_set(branch, "name", cJSON_CreateString(name->valuestring));
    if (protect)
        nl_state_set(branch, "protected", cJSON_CreateBool(cJSON_IsTrue(protect)));
    if (expires && cJSON_IsNull(expires))
        clear_expiry(branch);
    else if (expires)
        set_expiry(branch, due);
    char *now = now_text();
    nl_state_set(branch, "updated_at", cJSON_CreateString(now));
    free(now);
    return saved_answer(api, "branch", nl_state_public_copy(branch));
}

static nl_response get_branch(nl_api *api, const char *project_id, const char *branch_id)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    if (!project)
        return nl_error(404, "", "project %s not found", project_id);
    cJSON *b = nl_state_item_in(project, NL_BRANCHES, branch_id);
    if (!b || nl_branch_is_snapshot(b))
        return nl_error(404, "", "branch %s not found in project %s", branch_id, project_id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "branch", nl_state_public_copy(b));
    return nl_json(200, body);
}


/* The project and branch a request names, or the error response. */
static int lookup_branch(nl_api *api, const char *project_id, const char *branch_id, cJSON **project, cJSON **branch,
                         nl_response *error)
{
    *project = nl_state_live_project(api->state, project_id);
    *branch = nl_state_item_in(*project, NL_BRANCHES, branch_id);
    if (!*project)
        *error = nl_error(404, "", "project %s not found", project_id);
    else if (!*branch)
        *error = nl_error(404, "", "branch %s not found in project %s", branch_id, project_id);
    else if (!nl_state_is(*branch, NL_BRANCH_READY) ||
             json_text(nl_endpoint_of(*project, branch_id), NL_PENDING, NULL))
        *error = nl_error(423, "", "branch %s has an operation in progress; wait for it to finish", branch_id);
    else
        return 0;
    return -1;
}

/* Hands a branch to the worker for deletion (DELETE, or its expires_at
 * passed); returns copies of the operations that shows. */
static cJSON *start_deletion(cJSON *project, cJSON *branch)
{
    const char *branch_id = json_text(branch, "id", NULL);
    nl_state_set_current(branch, NL_BRANCH_DELETING);
    cJSON *ops = cJSON_CreateArray();
    cJSON *endpoint = nl_endpoint_of(project, branch_id);
    if (endpoint)
        cJSON_AddItemToArray(ops, cJSON_Duplicate(new_operation(project, "suspend_compute", branch_id,
                                                                json_text(endpoint, "id", NULL)), 1));
    cJSON_AddItemToArray(ops, cJSON_Duplicate(new_operation(project, "delete_timeline", branch_id, NULL), 1));
    return ops;
}

static nl_response delete_branch(nl_api *api, const char *project_id, const char *branch_id)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    cJSON *branch = nl_state_item_in(project, NL_BRANCHES, branch_id);
    nl_response error;
    if (!(branch && failed_and_idle(project, branch)) &&
        lookup_branch(api, project_id, branch_id, &project, &branch, &error) != 0)
        return error;
    if (nl_state_flag(branch, "default"))
        return nl_error(400, "", "branch %s is the project's default branch and cannot be deleted; make another "
                        "branch the default first", branch_id);
    if (nl_state_flag(branch, "protected"))
        return nl_error(400, "", "branch %s is protected and cannot be deleted", branch_id);
    /* Before the children: a child still being made is a job reading it. */
    if (refuse_if_needed(project, branch, &error) != 0)
        return error;
    if (nl_branch_has_children(project, branch_id))
        return nl_error(400, "", "branch %s has child branches; delete them first", branch_id);
    cJSON *ops = start_deletion(project, branch);
    save_state(api);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "branch", nl_state_public_copy(branch));
    cJSON_AddItemToObject(body, "operations", ops);
    pthread_cond_signal(&api->wake);
    return nl_json(200, body);
}

static nl_response set_as_default(nl_api *api, const char *project_id, const char *branch_id)
{
    cJSON *project, *branch;
    nl_response error;
    if (lookup_branch(api, project_id, branch_id, &project, &branch, &error) != 0)
        return error;
    if (json_text(branch, "expires_at", NULL))
        return nl_error(400, "", "branch %s expires at %s, and an expiring branch cannot be the default; remove its "
                        "expires_at first", branch_id, json_text(branch, "expires_at", NULL));
    cJSON *b;
    cJSON_ArrayForEach(b, nl_state_list(project, NL_BRANCHES)) {
        int is_it = b == branch;
        nl_state_set(b, "default", cJSON_CreateBool(is_it));
        nl_state_set(b, "primary", cJSON_CreateBool(is_it));
    }
    return saved_answer(api, "branch", nl_state_public_copy(branch));
}

/* POST .../branches/{id}/restore: the branch gets the state of
 * source_branch_id (at its head, or at source_timestamp / source_lsn),
 * keeping its id and its endpoint; its previous state is kept as a new
 * branch named preserve_under_name when asked (required when the branch
 * restores from itself or has children, whose parent it becomes). */
static nl_response restore_branch(nl_api *api, const char *project_id, const char *branch_id, const nl_request *req)
{
    cJSON *project, *branch;
    nl_response error;
    if (lookup_branch(api, project_id, branch_id, &project, &branch, &error) != 0)
        return error;
    const char *source_id = json_text(req->body, "source_branch_id", NULL);
    const cJSON *preserve = cJSON_GetObjectItemCaseSensitive(req->body, "preserve_under_name");
    if (!source_id)
        return nl_error(400, "", "source_branch_id is required");
    if (preserve && (!cJSON_IsString(preserve) || !preserve->valuestring[0]))
        return nl_error(400, "", "preserve_under_name must be a non-empty string");
    cJSON *source = nl_state_item_in(project, NL_BRANCHES, source_id);
    if (!source)
        return nl_error(404, "", "branch %s not found in project %s", source_id, project_id);
    int from_itself = source == branch;
    int in_the_past = cJSON_GetObjectItemCaseSensitive(req->body, "source_timestamp") ||
                      cJSON_GetObjectItemCaseSensitive(req->body, "source_lsn");
    if (from_itself && !in_the_past)
        return nl_error(400, "", "restoring a branch from itself needs source_timestamp or source_lsn");
    if ((from_itself || nl_branch_has_children(project, branch_id)) && !preserve)
        return nl_error(400, "", "preserve_under_name is required when a branch is restored from itself or has "
                        "child branches");
    if (!nl_endpoint_port(nl_endpoint_of(project, branch_id)))
        return nl_error(400, "", "neon-local restores branches that have an endpoint");
    if (!from_itself && !readable_now(project, source))
        return nl_error(423, "", "branch %s has an operation in progress; wait for it to finish", source_id);
    /* Its files are swapped for the source's: nothing may be reading them. */
    if (refuse_if_needed(project, branch, &error) != 0)
        return error;
    if (preserve && nl_branch_named(project, preserve->valuestring))
        return nl_error(409, "", "a branch named %s already exists in project %s", preserve->valuestring, project_id);
    /* The same checks as a branch in the past, with the restore's names. */
    cJSON *as_branch = cJSON_CreateObject();
    const cJSON *when = cJSON_GetObjectItemCaseSensitive(req->body, "source_timestamp");
    const cJSON *lsn = cJSON_GetObjectItemCaseSensitive(req->body, "source_lsn");
    if (when)
        cJSON_AddItemToObject(as_branch, "parent_timestamp", cJSON_Duplicate(when, 1));
    if (lsn)
        cJSON_AddItemToObject(as_branch, "parent_lsn", cJSON_Duplicate(lsn, 1));
    char *target = NULL;
    int checked = point_in_time(project, source, as_branch, &target, &error);
    cJSON_Delete(as_branch);
    if (checked != 0)
        return error;
    cJSON *spec = cJSON_CreateObject();
    cJSON_AddStringToObject(spec, "source_branch_id", source_id);
    if (target)
        cJSON_AddStringToObject(spec, "target", target);
    free(target);
    cJSON *ops = cJSON_CreateArray();
    if (preserve) {
        /* The previous state becomes a branch of its own, data only; the
         * children follow it. */
        cJSON *kept = add_branch(project, preserve->valuestring, 0);
        nl_state_set_current(kept, NL_BRANCH_INIT);
        cJSON_AddStringToObject(kept, NL_PRESERVING, branch_id);
        if (json_text(branch, "parent_id", NULL))
            cJSON_AddStringToObject(kept, "parent_id", json_text(branch, "parent_id", NULL));
        cJSON_AddStringToObject(spec, "preserved_id", json_text(kept, "id", NULL));
        nl_state_inherit_roles_and_databases(project, branch_id, json_text(kept, "id", NULL));
        cJSON *child;
        cJSON_ArrayForEach(child, nl_state_list(project, NL_BRANCHES))
            if (child != kept && json_text(child, "parent_id", NULL) && !strcmp(json_text(child, "parent_id", NULL), branch_id))
                nl_state_set(child, "parent_id", cJSON_CreateString(json_text(kept, "id", NULL)));
    }
    /* A reset from the parent starts the TTL again with the interval the
     * branch was given (ttl_interval_seconds, which does not change). */
    const cJSON *ttl = cJSON_GetObjectItemCaseSensitive(branch, "ttl_interval_seconds");
    if (json_text(branch, "expires_at", NULL) && cJSON_IsNumber(ttl) && json_text(branch, "parent_id", NULL) &&
        !strcmp(json_text(branch, "parent_id", NULL), source_id)) {
        char due[48];
        timefmt_format_utc(due, sizeof due, floor(timefmt_now()) + ttl->valuedouble);
        nl_state_set(branch, "expires_at", cJSON_CreateString(due));
    }
    cJSON_AddItemToObject(branch, NL_RESTORE, spec);
    nl_state_set_current(branch, NL_BRANCH_INIT);
    cJSON *endpoint = nl_endpoint_of(project, branch_id);
    cJSON_AddItemToArray(ops, cJSON_Duplicate(new_operation(project, "create_timeline", branch_id, NULL), 1));
    cJSON_AddItemToArray(ops, cJSON_Duplicate(new_operation(project, "start_compute", branch_id,
                                                            json_text(endpoint, "id", NULL)), 1));
    if (save_state(api) != 0) {
        cJSON_Delete(ops);
        return nl_error(500, "", "cannot save neon-local's state: %s", err_last());
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "branch", nl_state_public_copy(branch));
    cJSON_AddItemToObject(body, "operations", ops);
    pthread_cond_signal(&api->wake);
    return nl_json(200, body);
}

/* ---- endpoints, roles, databases, connection_uri ------------------------------------ */

/* The items of one of a project's lists that belong to a branch (all of
 * them when branch_id is NULL), public fields only. */
static cJSON *items_of(cJSON *project, const char *list, const char *branch_id)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(project, list))
        if (!branch_id || (json_text(item, "branch_id", NULL) && !strcmp(json_text(item, "branch_id", NULL), branch_id)))
            cJSON_AddItemToArray(out, nl_state_public_copy(item));
    return out;
}

static nl_response list_of_branch(nl_api *api, const char *project_id, const char *branch_id, const char *list,
                                  const char *key)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    if (!project)
        return nl_error(404, "", "project %s not found", project_id);
    if (branch_id && !nl_state_item_in(project, NL_BRANCHES, branch_id))
        return nl_error(404, "", "branch %s not found in project %s", branch_id, project_id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, key, items_of(project, list, branch_id));
    return nl_json(200, body);
}


static cJSON *role_named(cJSON *project, const char *branch_id, const char *name)
{
    return nl_state_item_named(project, NL_ROLES, branch_id, name);
}

static nl_response reveal_password(nl_api *api, const char *project_id, const char *branch_id, const char *name)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    cJSON *role = project ? role_named(project, branch_id, name) : NULL;
    if (!role)
        return nl_error(404, "", "role %s not found on branch %s of project %s", name, branch_id, project_id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "password", json_text(role, NL_PASSWORD, NULL));
    return nl_json(200, body);
}

/* GET /projects/{id}/connection_uri?branch_id=&database_name=&role_name= */
static nl_response get_connection_uri(nl_api *api, const char *project_id, const nl_request *req)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    if (!project)
        return nl_error(404, "", "project %s not found", project_id);
    const char *branch_id = json_text(req->query, "branch_id", NULL);
    const char *database = json_text(req->query, "database_name", NULL);
    const char *role_name = json_text(req->query, "role_name", NULL);
    if (!database || !role_name)
        return nl_error(400, "", "database_name and role_name are required");
    cJSON *branch = branch_id ? nl_state_item_in(project, NL_BRANCHES, branch_id)
                              : nl_branch_default(project);
    if (!branch)
        return nl_error(404, "", "branch %s not found in project %s", branch_id, project_id);
    cJSON *role = role_named(project, json_text(branch, "id", NULL), role_name);
    cJSON *endpoint = nl_endpoint_of(project, json_text(branch, "id", NULL));
    if (!role)
        return nl_error(404, "", "role %s not found on branch %s", role_name, json_text(branch, "id", NULL));
    if (!endpoint)
        return nl_error(404, "", "branch %s has no endpoint", json_text(branch, "id", NULL));
    char *uri = connection_uri(role, endpoint, database);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "uri", uri);
    free(uri);
    return nl_json(200, body);
}

/* POST /projects/{id}/endpoints/{endpoint}/start | suspend */
static nl_response change_endpoint(nl_api *api, const char *project_id, const char *endpoint_id, const char *action)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    cJSON *e = nl_state_item_in(project, NL_ENDPOINTS, endpoint_id);
    if (!e)
        return nl_error(404, "", "endpoint %s not found in project %s", endpoint_id, project_id);
    cJSON *branch = nl_state_item_in(project, NL_BRANCHES, json_text(e, "branch_id", NULL));
    if (cJSON_GetObjectItemCaseSensitive(e, NL_PENDING) || !branch ||
        !nl_state_is(branch, NL_BRANCH_READY))
        return nl_error(423, "", "endpoint %s has an operation in progress; wait for it to finish", endpoint_id);
    nl_response error;
    if (refuse_if_needed(project, branch, &error) != 0)
        return error;
    int starting = strcmp(action, "start") == 0;
    cJSON *ops = cJSON_CreateArray();
    if (!nl_state_is(e, starting ? NL_ENDPOINT_ACTIVE : NL_ENDPOINT_IDLE)) { /* already there: nothing to do */
        cJSON_AddStringToObject(e, NL_PENDING, action);
        cJSON_AddItemToArray(ops, cJSON_Duplicate(new_operation(project, starting ? "start_compute" : "suspend_compute",
                                                                json_text(e, "branch_id", NULL), endpoint_id), 1));
        if (save_state(api) != 0) {
            cJSON_Delete(ops);
            return nl_error(500, "", "cannot save neon-local's state: %s", err_last());
        }
        pthread_cond_signal(&api->wake);
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "endpoint", nl_state_public_copy(e));
    cJSON_AddItemToObject(body, "operations", ops);
    return nl_json(200, body);
}

/* The answer of an endpoint change left to the worker: {endpoint, operations: [op]}. */
static nl_response endpoint_queued(nl_api *api, cJSON *project, cJSON *endpoint, const char *change,
                                   const char *action, int status)
{
    nl_state_set(endpoint, NL_PENDING, cJSON_CreateString(change));
    cJSON *ops = cJSON_CreateArray();
    cJSON_AddItemToArray(ops, cJSON_Duplicate(new_operation(project, action, json_text(endpoint, "branch_id", NULL),
                                                            json_text(endpoint, "id", NULL)), 1));
    if (save_state(api) != 0) {
        cJSON_Delete(ops);
        return nl_error(500, "", "cannot save neon-local's state: %s", err_last());
    }
    pthread_cond_signal(&api->wake);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "endpoint", nl_state_public_copy(endpoint));
    cJSON_AddItemToObject(body, "operations", ops);
    return nl_json(status, body);
}

/* POST /projects/{id}/endpoints {endpoint: {branch_id, type}}: a compute for
 * a branch that has none (a data-only branch gets a server of its own). */
static nl_response create_endpoint(nl_api *api, const char *project_id, const nl_request *req)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(req->body, "endpoint");
    const char *branch_id = json_text(spec, "branch_id", NULL), *type = json_text(spec, "type", NULL);
    if (!cJSON_IsObject(spec) || !branch_id || !type)
        return nl_error(400, "", "the body must be {\"endpoint\": {\"branch_id\": \"...\", \"type\": \"read_write\"}}");
    if (strcmp(type, "read_write") != 0)
        return nl_error(400, "", "endpoint type %s: neon-local serves read_write endpoints only", type);
    cJSON *project, *branch;
    nl_response error;
    if (lookup_branch(api, project_id, branch_id, &project, &branch, &error) != 0)
        return error;
    if (nl_branch_is_snapshot(branch))
        return nl_error(404, "", "branch %s not found in project %s", branch_id, project_id);
    if (nl_endpoint_of(project, branch_id))
        return nl_error(409, "", "branch %s already has a read_write endpoint", branch_id);
    /* A server started on files being copied would spoil the copy. */
    if (refuse_if_needed(project, branch, &error) != 0)
        return error;
    cJSON *endpoint = add_endpoint(project, branch, nl_free_port());
    return endpoint_queued(api, project, endpoint, "create", "start_compute", 201);
}

/* DELETE /projects/{id}/endpoints/{endpoint}: the server stops, the branch
 * keeps its data. */
static nl_response delete_endpoint(nl_api *api, const char *project_id, const char *endpoint_id)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    cJSON *e = nl_state_item_in(project, NL_ENDPOINTS, endpoint_id);
    if (!e)
        return nl_error(404, "", "endpoint %s not found in project %s", endpoint_id, project_id);
    cJSON *branch = nl_state_item_in(project, NL_BRANCHES, json_text(e, "branch_id", NULL));
    if (cJSON_GetObjectItemCaseSensitive(e, NL_PENDING) || (branch && !nl_state_is(branch, NL_BRANCH_READY)))
        return nl_error(423, "", "endpoint %s has an operation in progress; wait for it to finish", endpoint_id);
    nl_response error;
    if (branch && refuse_if_needed(project, branch, &error) != 0)
        return error;
    return endpoint_queued(api, project, e, "delete", "suspend_compute", 200);
}

/* POST .../branches/{id}/finalize_restore {name}: a branch restored from a
 * snapshot takes the place of the branch it was restored for: that
 * branch's name, default flag and endpoint (host and port, so its
 * connection string) move to it; the original stays, renamed. */
static nl_response finalize_restore(nl_api *api, const char *project_id, const char *branch_id, const nl_request *req)
{
    cJSON *project, *restored, *original;
    nl_response error;
    if (lookup_branch(api, project_id, branch_id, &project, &restored, &error) != 0)
        return error;
    const char *original_id = json_text(restored, NL_RESTORE_OF, NULL);
    if (!original_id)
        return nl_error(400, "", "branch %s was not made by a snapshot restore with finalize_restore false; there is "
                        "nothing to finalize", branch_id);
    if (lookup_branch(api, project_id, original_id, &project, &original, &error) != 0)
        return error;
    original_id = json_text(original, "id", NULL); /* _restore_of goes below */
    /* The original's server stops and the restored one's moves to its port. */
    if (refuse_if_needed(project, restored, &error) != 0 || refuse_if_needed(project, original, &error) != 0)
        return error;
    if (nl_state_flag(original, "default") && json_text(restored, "expires_at", NULL))
        return nl_error(400, "", "branch %s expires at %s and would become the default branch, which cannot expire; "
                        "remove its expires_at first", branch_id, json_text(restored, "expires_at", NULL));
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(req->body, "name");
    if (name && (!cJSON_IsString(name) || !name->valuestring[0]))
        return nl_error(400, "", "name must be a non-empty string");
    char stamp[32];
    time_t now = (time_t)timefmt_now();
    strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", gmtime(&now));
    char *old_name = name ? xstrdup(name->valuestring) : xasprintf("%s-old-%s", json_text(original, "name", NULL), stamp);
    if (nl_branch_named(project, old_name)) {
        nl_response r = nl_error(409, "", "a branch named %s already exists in project %s", old_name, project_id);
        free(old_name);
        return r;
    }
    char *taken_name = xstrdup(json_text(original, "name", NULL));
    nl_state_set(restored, "name", cJSON_CreateString(taken_name));
    nl_state_set(original, "name", cJSON_CreateString(old_name));
    free(taken_name);
    free(old_name);
    if (nl_state_flag(original, "default")) {
        nl_state_set(restored, "default", cJSON_CreateTrue());
        nl_state_set(restored, "primary", cJSON_CreateTrue());
        nl_state_set(original, "default", cJSON_CreateFalse());
        nl_state_set(original, "primary", cJSON_CreateFalse());
    }
    cJSON_DeleteItemFromObjectCaseSensitive(restored, NL_RESTORE_OF);
    cJSON *ops = cJSON_CreateArray();
    cJSON *moving = nl_endpoint_of(project, original_id);
    if (moving) {
        /* One read_write endpoint a branch: the restored branch's own goes,
         * its server comes back on the original's port. */
        cJSON *own = nl_endpoint_of(project, branch_id);
        if (own) {
            cJSON_DetachItemViaPointer(nl_state_list(project, NL_ENDPOINTS), own);
            cJSON_Delete(own);
        }
        nl_state_set(moving, "branch_id", cJSON_CreateString(branch_id));
        nl_state_set(moving, NL_FROM, cJSON_CreateString(original_id));
        nl_state_set(moving, NL_PENDING, cJSON_CreateString("move"));
        cJSON_AddItemToArray(ops, cJSON_Duplicate(new_operation(project, "start_compute", branch_id,
                                                                json_text(moving, "id", NULL)), 1));
    }
    if (save_state(api) != 0) {
        cJSON_Delete(ops);
        return nl_error(500, "", "cannot save neon-local's state: %s", err_last());
    }
    pthread_cond_signal(&api->wake);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "operations", ops);
    return nl_json(200, body);
}

/* ---- snapshots ------------------------------------------------------------------ */

static cJSON *snapshot_json(const cJSON *hidden)
{
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "id", json_text(hidden, "id", NULL));
    cJSON_AddStringToObject(s, "name", json_text(hidden, "name", NULL));
    cJSON_AddStringToObject(s, "source_branch_id", json_text(hidden, "parent_id", NULL));
    cJSON_AddStringToObject(s, "timestamp", json_text(hidden, "parent_timestamp", NULL));
    if (json_text(hidden, "parent_lsn", NULL))
        cJSON_AddStringToObject(s, "lsn", json_text(hidden, "parent_lsn", NULL));
    cJSON_AddStringToObject(s, "created_at", json_text(hidden, "created_at", NULL));
    if (json_text(hidden, NL_EXPIRES_AT, NULL))
        cJSON_AddStringToObject(s, "expires_at", json_text(hidden, NL_EXPIRES_AT, NULL));
    cJSON_AddBoolToObject(s, "manual", !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(hidden, NL_SCHEDULED)));
    return s;
}

static cJSON *snapshot_by_id(cJSON *project, const char *id)
{
    cJSON *b = nl_state_item_in(project, NL_BRANCHES, id);
    return b && nl_branch_is_snapshot(b) && !nl_state_is(b, NL_BRANCH_DELETING) ? b : NULL;
}

/* POST .../branches/{id}/snapshot?name=&timestamp=&lsn=&expires_at= : a
 * data-only copy of the branch, now or at an instant of its history. */
static nl_response create_snapshot(nl_api *api, const char *project_id, const char *branch_id, const nl_request *req)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    cJSON *source = nl_state_item_in(project, NL_BRANCHES, branch_id);
    if (!source || nl_branch_is_snapshot(source))
        return nl_error(404, "", "branch %s not found in project %s", branch_id, project_id);
    if (!readable_now(project, source))
        return nl_error(423, "", "branch %s has an operation in progress; wait for it to finish", branch_id);
    const char *expires = json_text(req->query, "expires_at", NULL);
    double expires_at = 0;
    if (expires && (timefmt_parse_timestamp(&expires_at, expires) != 0 || expires_at <= timefmt_now()))
        return nl_error(400, "", "expires_at must be a time in the future, like 2026-02-01T00:00:00Z");
    cJSON *spec = cJSON_CreateObject();
    if (json_text(req->query, "timestamp", NULL))
        cJSON_AddStringToObject(spec, "parent_timestamp", json_text(req->query, "timestamp", NULL));
    if (json_text(req->query, "lsn", NULL))
        cJSON_AddStringToObject(spec, "parent_lsn", json_text(req->query, "lsn", NULL));
    char *target = NULL;
    nl_response bad;
    int checked = point_in_time(project, source, spec, &target, &bad);
    cJSON_Delete(spec);
    if (checked != 0)
        return bad;
    char *generated = new_id("snap");
    const char *name = json_text(req->query, "name", NULL) ? json_text(req->query, "name", NULL) : generated;
    cJSON *snap = add_branch(project, name, 0);
    free(generated);
    char *now = now_text();
    cJSON_AddTrueToObject(snap, NL_SNAPSHOT);
    cJSON_AddStringToObject(snap, "parent_id", branch_id);
    nl_state_inherit_roles_and_databases(project, branch_id, json_text(snap, "id", NULL));
    cJSON_AddStringToObject(snap, "parent_timestamp", json_text(req->query, "timestamp", NULL) ? json_text(req->query, "timestamp", NULL) : now);
    if (json_text(req->query, "lsn", NULL))
        cJSON_AddStringToObject(snap, "parent_lsn", json_text(req->query, "lsn", NULL));
    if (target)
        cJSON_AddStringToObject(snap, NL_TARGET, target);
    if (expires) {
        char normal[48];
        timefmt_format_utc(normal, sizeof normal, expires_at);
        cJSON_AddStringToObject(snap, NL_EXPIRES_AT, normal);
    }
    free(target);
    free(now);
    cJSON *ops = cJSON_CreateArray();
    cJSON_AddItemToArray(ops, cJSON_Duplicate(new_operation(project, "create_branch", json_text(snap, "id", NULL), NULL), 1));
    if (save_state(api) != 0) {
        cJSON_Delete(ops);
        return nl_error(500, "", "cannot save neon-local's state: %s", err_last());
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "snapshot", snapshot_json(snap));
    cJSON_AddItemToObject(body, "operations", ops);
    pthread_cond_signal(&api->wake);
    return nl_json(201, body);
}

static nl_response list_snapshots(nl_api *api, const char *project_id)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    if (!project)
        return nl_error(404, "", "project %s not found", project_id);
    cJSON *body = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(body, "snapshots");
    const cJSON *b;
    cJSON_ArrayForEach(b, nl_state_list(project, NL_BRANCHES))
        if (nl_branch_is_snapshot(b) && !nl_state_is(b, NL_BRANCH_DELETING))
            cJSON_AddItemToArray(list, snapshot_json(b));
    return nl_json(200, body);
}

static nl_response change_snapshot(nl_api *api, const char *project_id, const char *snapshot_id, const nl_request *req)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    cJSON *snap = project ? snapshot_by_id(project, snapshot_id) : NULL;
    if (!snap)
        return nl_error(404, "", "snapshot %s not found in project %s", snapshot_id, project_id);
    if (!strcmp(req->method, "DELETE")) {
        if (!nl_state_is(snap, NL_BRANCH_READY) && !failed_and_idle(project, snap))
            return nl_error(423, "", "snapshot %s is still being taken", snapshot_id);
        nl_response error;
        if (refuse_if_needed(project, snap, &error) != 0)
            return error;
        nl_state_set_current(snap, NL_BRANCH_DELETING);
        cJSON *ops = cJSON_CreateArray();
        cJSON_AddItemToArray(ops, cJSON_Duplicate(new_operation(project, "delete_timeline", snapshot_id, NULL), 1));
        save_state(api);
        pthread_cond_signal(&api->wake);
        cJSON *body = cJSON_CreateObject();
        cJSON_AddItemToObject(body, "snapshot", snapshot_json(snap));
        cJSON_AddItemToObject(body, "operations", ops);
        return nl_json(200, body);
    }
    const char *name = json_text(cJSON_GetObjectItemCaseSensitive(req->body, "snapshot"), "name", NULL);
    if (!name || !*name)
        return nl_error(400, "", "the body must be {\"snapshot\": {\"name\": \"...\"}}");
    nl_state_set(snap, "name", cJSON_CreateString(name));
    return saved_answer(api, "snapshot", snapshot_json(snap));
}

/* POST .../snapshots/{id}/restore {name, target_branch_id, finalize_restore}:
 * a new branch made from the snapshot, or, finalized into a target branch,
 * that branch restored in place from it (its id and connection string
 * kept, its previous state preserved under `name` or "<target>-old"). */
static nl_response restore_snapshot(nl_api *api, const char *project_id, const char *snapshot_id, const nl_request *req)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    cJSON *snap = project ? snapshot_by_id(project, snapshot_id) : NULL;
    if (!snap)
        return nl_error(404, "", "snapshot %s not found in project %s", snapshot_id, project_id);
    if (!nl_state_is(snap, NL_BRANCH_READY))
        return nl_error(423, "", "snapshot %s is still being taken", snapshot_id);
    const char *name = json_text(req->body, "name", NULL) ? json_text(req->body, "name", NULL) : json_text(req->query, "name", NULL);
    const char *target_id = json_text(req->body, "target_branch_id", NULL);
    if (!target_id)
        target_id = json_text(snap, "parent_id", NULL); /* as on Neon: the branch the snapshot was taken of */
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req->body, "finalize_restore"))) {
        cJSON *target = nl_state_item_in(project, NL_BRANCHES, target_id);
        if (!target || nl_branch_is_snapshot(target))
            return nl_error(404, "", "branch %s not found in project %s", target_id, project_id);
        char *kept = name ? xstrdup(name) : xasprintf("%s-old", json_text(target, "name", NULL));
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "source_branch_id", snapshot_id);
        cJSON_AddStringToObject(body, "preserve_under_name", kept);
        free(kept);
        nl_request as_restore = *req;
        as_restore.body = body;
        nl_response r = restore_branch(api, project_id, target_id, &as_restore);
        cJSON_Delete(body);
        return r;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON *branch = cJSON_AddObjectToObject(body, "branch");
    cJSON_AddStringToObject(branch, "parent_id", snapshot_id);
    if (name)
        cJSON_AddStringToObject(branch, "name", name);
    cJSON *endpoints = cJSON_AddArrayToObject(body, "endpoints");
    cJSON *rw = cJSON_CreateObject();
    cJSON_AddStringToObject(rw, "type", "read_write");
    cJSON_AddItemToArray(endpoints, rw);
    nl_request as_branch = *req;
    as_branch.body = body;
    char *restored_for = xstrdup(target_id);
    nl_response r = create_branch(api, project_id, &as_branch);
    cJSON_Delete(body);
    if (r.status == 201) { /* the new branch is the last one; finalize_restore needs to know whose place it takes */
        cJSON *branches = nl_state_list(project, NL_BRANCHES);
        cJSON_AddStringToObject(cJSON_GetArrayItem(branches, cJSON_GetArraySize(branches) - 1), NL_RESTORE_OF,
                                restored_for);
        save_state(api);
    }
    free(restored_for);
    return r;
}

/* GET/PUT .../branches/{id}/backup_schedule */
static nl_response backup_schedule(nl_api *api, const char *project_id, const char *branch_id, const nl_request *req)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    cJSON *branch = nl_state_item_in(project, NL_BRANCHES, branch_id);
    if (!branch || nl_branch_is_snapshot(branch))
        return nl_error(404, "", "branch %s not found in project %s", branch_id, project_id);
    if (!strcmp(req->method, "PUT")) {
        const cJSON *schedule = cJSON_GetObjectItemCaseSensitive(req->body, "schedule");
        if (!cJSON_IsArray(schedule))
            return nl_error(400, "", "the body must be {\"schedule\": [{\"frequency\": \"daily\", ...}]}");
        static const char *const frequencies[] = { "hourly", "daily", "weekly", "monthly", "yearly" };
        const cJSON *item;
        cJSON_ArrayForEach(item, schedule) {
            const char *f = json_text(item, "frequency", NULL);
            int known = 0;
            for (size_t i = 0; f && i < 5; i++)
                known |= !strcmp(f, frequencies[i]);
            const cJSON *hour = cJSON_GetObjectItemCaseSensitive(item, "hour");
            const cJSON *day = cJSON_GetObjectItemCaseSensitive(item, "day");
            const cJSON *month = cJSON_GetObjectItemCaseSensitive(item, "month");
            const cJSON *keep = cJSON_GetObjectItemCaseSensitive(item, "retention_seconds");
            if (!known)
                return nl_error(400, "", "frequency must be hourly, daily, weekly, monthly or yearly");
            if ((hour && (!cJSON_IsNumber(hour) || hour->valueint < 0 || hour->valueint > 23)) ||
                (day && (!cJSON_IsNumber(day) || day->valueint < 1 || day->valueint > 31)) ||
                (month && (!cJSON_IsNumber(month) || month->valueint < 1 || month->valueint > 12)) ||
                (keep && (!cJSON_IsNumber(keep) || keep->valuedouble < 3600)))
                return nl_error(400, "", "hour 0-23, day 1-31, month 1-12, retention_seconds at least 3600");
        }
        nl_state_set(branch, NL_BACKUP_SCHEDULE, cJSON_Duplicate(schedule, 1));
        /* Slots before now are not backfilled. */
        cJSON *last = cJSON_CreateArray();
        cJSON_ArrayForEach(item, schedule)
            cJSON_AddItemToArray(last, cJSON_CreateNumber(latest_slot(item, schedule_now(api))));
        nl_state_set(branch, NL_SCHEDULE_LAST, last);
        if (save_state(api) != 0)
            return nl_error(500, "", "cannot save neon-local's state: %s", err_last());
    }
    const cJSON *stored = cJSON_GetObjectItemCaseSensitive(branch, NL_BACKUP_SCHEDULE);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "schedule", stored ? cJSON_Duplicate(stored, 1) : cJSON_CreateArray());
    return nl_json(200, body);
}

void nl_api_set_clock_speed(nl_api *api, double speed)
{
    pthread_mutex_lock(&api->lock);
    api->clock_origin = timefmt_now();
    api->clock_speed = speed > 0 ? speed : 1;
    pthread_mutex_unlock(&api->lock);
}

/* ---- roles and databases --------------------------------------------------------- */

/* Role and database names go into SQL: letters, digits, '_' and '-' only. */
static int valid_sql_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 63)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

/* The branch a role/database request names, with a running server. */
static int branch_with_server(nl_api *api, const char *project_id, const char *branch_id, cJSON **project,
                              int *port, nl_response *error)
{
    cJSON *branch;
    if (lookup_branch(api, project_id, branch_id, project, &branch, error) != 0)
        return -1;
    *port = nl_endpoint_port(nl_endpoint_of(*project, branch_id));
    cJSON *e = nl_endpoint_of(*project, branch_id);
    if (!*port || !nl_state_is(e, NL_ENDPOINT_ACTIVE)) {
        *error = nl_error(400, "", "branch %s has no running endpoint to apply this to", branch_id);
        return -1;
    }
    return 0;
}

/* The answer of a change already applied: {key: item, operations: [apply_config, finished]}. */
static nl_response applied(nl_api *api, cJSON *project, const char *branch_id, int status, const char *key,
                           cJSON *item)
{
    new_operation(project, "apply_config", branch_id, NULL);
    finish_operations(project, branch_id, NULL);
    cJSON *ops = cJSON_CreateArray();
    cJSON *op = cJSON_GetArrayItem(nl_state_list(project, NL_OPERATIONS),
                                   cJSON_GetArraySize(nl_state_list(project, NL_OPERATIONS)) - 1);
    cJSON_AddItemToArray(ops, cJSON_Duplicate(op, 1));
    if (save_state(api) != 0) {
        cJSON_Delete(item);
        cJSON_Delete(ops);
        return nl_error(500, "", "cannot save neon-local's state: %s", err_last());
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, key, item);
    cJSON_AddItemToObject(body, "operations", ops);
    return nl_json(status, body);
}

static nl_response create_role(nl_api *api, const char *project_id, const char *branch_id, const nl_request *req)
{
    cJSON *project;
    int port;
    nl_response error;
    if (branch_with_server(api, project_id, branch_id, &project, &port, &error) != 0)
        return error;
    const char *name = json_text(cJSON_GetObjectItemCaseSensitive(req->body, "role"), "name", NULL);
    if (!valid_sql_name(name))
        return nl_error(400, "", "role.name must be 1 to 63 letters, digits, '_' or '-'");
    if (role_named(project, branch_id, name))
        return nl_error(409, "", "role %s already exists on branch %s", name, branch_id);
    char *password = new_password();
    char *sql = xasprintf("CREATE ROLE \"%s\" LOGIN PASSWORD '%s'", name, password);
    int rc = nl_pg_sql(port, "postgres", sql);
    free(sql);
    if (rc) {
        free(password);
        return nl_error(500, "", "%s", err_last());
    }
    char *now = now_text();
    cJSON *role = cJSON_CreateObject();
    cJSON_AddStringToObject(role, "branch_id", branch_id);
    cJSON_AddStringToObject(role, "name", name);
    cJSON_AddFalseToObject(role, "protected");
    cJSON_AddStringToObject(role, NL_PASSWORD, password);
    cJSON_AddStringToObject(role, "created_at", now);
    cJSON_AddStringToObject(role, "updated_at", now);
    cJSON_AddItemToArray(nl_state_list(project, NL_ROLES), role);
    cJSON *shown = nl_state_public_copy(role);
    cJSON_AddStringToObject(shown, "password", password);
    free(password);
    free(now);
    return applied(api, project, branch_id, 201, "role", shown);
}

/* A role of a branch whose server runs, or the error response. */
static int role_with_server(nl_api *api, const char *project_id, const char *branch_id, const char *name,
                            cJSON **project, int *port, cJSON **role, nl_response *error)
{
    if (branch_with_server(api, project_id, branch_id, project, port, error) != 0)
        return -1;
    if (!(*role = role_named(*project, branch_id, name))) {
        *error = nl_error(404, "", "role %s not found on branch %s", name, branch_id);
        return -1;
    }
    return 0;
}

static nl_response reset_password(nl_api *api, const char *project_id, const char *branch_id, const char *name)
{
    cJSON *project, *role;
    int port;
    nl_response error;
    if (role_with_server(api, project_id, branch_id, name, &project, &port, &role, &error) != 0)
        return error;
    char *password = new_password();
    char *sql = xasprintf("ALTER ROLE \"%s\" PASSWORD '%s'", name, password);
    int rc = nl_pg_sql(port, "postgres", sql);
    free(sql);
    if (rc) {
        free(password);
        return nl_error(500, "", "%s", err_last());
    }
    nl_state_set(role, NL_PASSWORD, cJSON_CreateString(password));
    cJSON *shown = nl_state_public_copy(role);
    cJSON_AddStringToObject(shown, "password", password);
    free(password);
    return applied(api, project, branch_id, 201, "role", shown);
}

static cJSON *database_named(cJSON *project, const char *branch_id, const char *name)
{
    return nl_state_item_named(project, NL_DATABASES, branch_id, name);
}

static nl_response create_database(nl_api *api, const char *project_id, const char *branch_id, const nl_request *req)
{
    cJSON *project;
    int port;
    nl_response error;
    if (branch_with_server(api, project_id, branch_id, &project, &port, &error) != 0)
        return error;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(req->body, "database");
    const char *name = json_text(spec, "name", NULL), *owner = json_text(spec, "owner_name", NULL);
    if (!valid_sql_name(name) || !valid_sql_name(owner))
        return nl_error(400, "", "database.name and database.owner_name must be 1 to 63 letters, digits, '_' or '-'");
    if (!role_named(project, branch_id, owner))
        return nl_error(404, "", "role %s not found on branch %s", owner, branch_id);
    if (database_named(project, branch_id, name))
        return nl_error(409, "", "database %s already exists on branch %s", name, branch_id);
    char *sql = xasprintf("CREATE DATABASE \"%s\" OWNER \"%s\"", name, owner);
    int rc = nl_pg_sql(port, "postgres", sql);
    free(sql);
    if (rc)
        return nl_error(500, "", "%s", err_last());
    char *now = now_text();
    cJSON *database = cJSON_CreateObject();
    cJSON_AddNumberToObject(database, "id", cJSON_GetArraySize(nl_state_list(project, NL_DATABASES)) + 1);
    cJSON_AddStringToObject(database, "branch_id", branch_id);
    cJSON_AddStringToObject(database, "name", name);
    cJSON_AddStringToObject(database, "owner_name", owner);
    cJSON_AddStringToObject(database, "created_at", now);
    cJSON_AddStringToObject(database, "updated_at", now);
    cJSON_AddItemToArray(nl_state_list(project, NL_DATABASES), database);
    free(now);
    return applied(api, project, branch_id, 201, "database", nl_state_public_copy(database));
}

/* Runs a DROP on the branch's server, then takes the item out of the state. */
static nl_response dropped(nl_api *api, cJSON *project, const char *branch_id, int port, const char *list,
                           const char *key, cJSON *item, const char *sql)
{
    if (nl_pg_sql(port, "postgres", sql) != 0)
        return nl_error(500, "", "%s", err_last());
    cJSON_DetachItemViaPointer(cJSON_GetObjectItemCaseSensitive(project, list), item);
    cJSON *shown = nl_state_public_copy(item);
    cJSON_Delete(item);
    return applied(api, project, branch_id, 200, key, shown);
}

/* DELETE .../branches/{id}/roles/{name}: refused while the role owns a
 * database, as dropping it would fail half-way on the server. */
static nl_response delete_role(nl_api *api, const char *project_id, const char *branch_id, const char *name)
{
    cJSON *project, *role;
    int port;
    nl_response error;
    if (role_with_server(api, project_id, branch_id, name, &project, &port, &role, &error) != 0)
        return error;
    const cJSON *db;
    cJSON_ArrayForEach(db, nl_state_list(project, NL_DATABASES))
        if (!strcmp(json_text(db, "branch_id", NULL), branch_id) && !strcmp(json_text(db, "owner_name", NULL), name))
            return nl_error(409, "", "role %s owns database %s on branch %s; delete the database or give it another "
                            "owner first", name, json_text(db, "name", NULL), branch_id);
    char *sql = xasprintf("DROP ROLE \"%s\"", name);
    nl_response r = dropped(api, project, branch_id, port, NL_ROLES, "role", role, sql);
    free(sql);
    return r;
}

/* DELETE .../branches/{id}/databases/{name}: its sessions are ended, as on Neon. */
static nl_response delete_database(nl_api *api, const char *project_id, const char *branch_id, const char *name)
{
    cJSON *project;
    int port;
    nl_response error;
    if (branch_with_server(api, project_id, branch_id, &project, &port, &error) != 0)
        return error;
    cJSON *database = database_named(project, branch_id, name);
    if (!database)
        return nl_error(404, "", "database %s not found on branch %s", name, branch_id);
    char *sql = xasprintf("DROP DATABASE \"%s\" WITH (FORCE)", name);
    nl_response r = dropped(api, project, branch_id, port, NL_DATABASES, "database", database, sql);
    free(sql);
    return r;
}

/* ---- routing, lifetime -------------------------------------------------------- */

/* Splits "/projects/abc/operations/xyz" into at most 7 segments. */
static size_t split_path(const char *path, char segments[7][128])
{
    size_t n = 0;
    const char *p = path;
    while (*p == '/')
        p++;
    while (*p && n < 7) {
        size_t len = strcspn(p, "/");
        if (len >= 128)
            len = 127;
        memcpy(segments[n], p, len);
        segments[n][len] = '\0';
        n++;
        p += strcspn(p, "/");
        while (*p == '/')
            p++;
    }
    return *p ? 8 : n; /* 8: deeper than any route */
}

nl_response nl_api_handle(void *ud, const nl_request *req)
{
    nl_api *api = ud;
    char s[7][128];
    size_t n = split_path(req->path, s);
    int get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0;
    nl_response r;
    pthread_mutex_lock(&api->lock);
    if (n == 1 && !strcmp(s[0], "projects") && get)
        r = list_projects(api, req);
    else if (n == 1 && !strcmp(s[0], "projects") && post)
        r = create_project(api, req);
    else if (n == 2 && !strcmp(s[0], "projects") && !strcmp(s[1], "shared") && get)
        r = nl_json(200, cJSON_Parse("{\"projects\":[]}")); /* nobody shares projects with a local key */
    else if (n == 2 && !strcmp(s[0], "projects") && get)
        r = get_project(api, s[1]);
    else if (n == 2 && !strcmp(s[0], "projects") && !strcmp(req->method, "PATCH"))
        r = update_project(api, s[1], req);
    else if (n == 2 && !strcmp(s[0], "projects") && !strcmp(req->method, "DELETE"))
        r = delete_project(api, s[1]);
    else if (n == 3 && !strcmp(s[0], "projects") && !strcmp(s[2], "branches") && get)
        r = list_branches(api, s[1], req);
    else if (n == 4 && !strcmp(s[0], "projects") && !strcmp(s[2], "branches") && !strcmp(s[3], "count") && get)
        r = count_branches(api, s[1], req);
    else if (n == 4 && !strcmp(s[0], "projects") && !strcmp(s[2], "branches") && !strcmp(req->method, "PATCH"))
        r = update_branch(api, s[1], s[3], req);
    else if (n == 3 && !strcmp(s[0], "projects") && !strcmp(s[2], "branches") && post)
        r = create_branch(api, s[1], req);
    else if (n == 4 && !strcmp(s[0], "projects") && !strcmp(s[2], "branches") && get)
        r = get_branch(api, s[1], s[3]);
    else if (n == 4 && !strcmp(s[0], "projects") && !strcmp(s[2], "branches") && !strcmp(req->method, "DELETE"))
        r = delete_branch(api, s[1], s[3]);
    else if (n == 5 && !strcmp(s[0], "projects") && !strcmp(s[2], "branches") && !strcmp(s[4], "restore") && post)
        r = restore_branch(api, s[1], s[3], req);
    else if (n == 5 && !strcmp(s[0], "projects") && !strcmp(s[2], "branches") && !strcmp(s[4], "set_as_default") && post)
        r = set_as_default(api, s[1], s[3]);
    else if (n == 5 && !strcmp(s[0], "projects") && !strcmp(s[2], "branches") && !strcmp(s[4], "endpoints") && get)
        r = list_of_branch(api, s[1], s[3], NL_ENDPOINTS, "endpoints");
    else if (n == 5 && !strcmp(s[0], "projects") && !strcmp(s[2], "branches") && !strcmp(s[4], "roles") && get)
        r = list_of_branch(api, s[1], s[3], NL_ROLES, "roles");
    else if (n == 5 && !strcmp(s[0], "projects") && !strcmp(s[2], "branches") && !strcmp(s[4], "databases") && get)
        r = list_of_branch(api, s[1], s[3], NL_DATABASES, "databases");
    else if (n == 5 && !strcmp(s[0], "projects") && !strcmp(s[2], "branches") && !strcmp(s[4], "roles") && post)
        r = create_role(api, s[1], s[3], req);
    else if (n == 5 && !strcmp(s[0], "projects") && !strcmp(s[2], "branches") && !strcmp(s[4], "databases") && post)
        r = create_database(api, s[1], s[3], req);
    else if (n == 7 && !strcmp(s[0], "projects") && !strcmp(s[4], "roles") && !strcmp(s[6], "reset_password") && post)
        r = reset_password(api, s[1], s[3], s[5]);
    else if (n == 7 && !strcmp(s[0], "projects") && !strcmp(s[4], "roles") && !strcmp(s[6], "reveal_password") && get)
        r = reveal_password(api, s[1], s[3], s[5]);
    else if (n == 5 && !strcmp(s[0], "projects") && !strcmp(s[2], "endpoints") && post &&
             (!strcmp(s[4], "start") || !strcmp(s[4], "suspend")))
        r = change_endpoint(api, s[1], s[3], s[4]);
    else if (n == 4 && !strcmp(s[0], "projects") && !strcmp(s[2], "endpoints") && get) {
        cJSON *project = nl_state_live_project(api->state, s[1]);
        cJSON *e = project ? nl_state_item_in(project, NL_ENDPOINTS, s[3]) : NULL;
        cJSON *body = cJSON_CreateObject();
        if (e)
            cJSON_AddItemToObject(body, "endpoint", nl_state_public_copy(e));
        r = e ? nl_json(200, body) : (cJSON_Delete(body), nl_error(404, "", "endpoint %s not found", s[3]));
    }
    else if (n == 3 && !strcmp(s[0], "projects") && !strcmp(s[2], "endpoints") && post)
        r = create_endpoint(api, s[1], req);
    else if (n == 4 && !strcmp(s[0], "projects") && !strcmp(s[2], "endpoints") && !strcmp(req->method, "DELETE"))
        r = delete_endpoint(api, s[1], s[3]);
    else if (n == 5 && !strcmp(s[0], "projects") && !strcmp(s[2], "branches") && !strcmp(s[4], "finalize_restore") &&
             post)
        r = finalize_restore(api, s[1], s[3], req);
    else if (n == 6 && !strcmp(s[0], "projects") && !strcmp(s[4], "roles") && !strcmp(req->method, "DELETE"))
        r = delete_role(api, s[1], s[3], s[5]);
    else if (n == 6 && !strcmp(s[0], "projects") && !strcmp(s[4], "databases") && !strcmp(req->method, "DELETE"))
        r = delete_database(api, s[1], s[3], s[5]);
    else if (n == 3 && !strcmp(s[0], "projects") && !strcmp(s[2], "endpoints") && get)
        r = list_of_branch(api, s[1], NULL, NL_ENDPOINTS, "endpoints");
    else if (n == 5 && !strcmp(s[0], "projects") && !strcmp(s[2], "branches") && !strcmp(s[4], "snapshot") && post)
        r = create_snapshot(api, s[1], s[3], req);
    else if (n == 5 && !strcmp(s[0], "projects") && !strcmp(s[2], "branches") && !strcmp(s[4], "backup_schedule") &&
             (get || !strcmp(req->method, "PUT")))
        r = backup_schedule(api, s[1], s[3], req);
    else if (n == 3 && !strcmp(s[0], "projects") && !strcmp(s[2], "snapshots") && get)
        r = list_snapshots(api, s[1]);
    else if (n == 4 && !strcmp(s[0], "projects") && !strcmp(s[2], "snapshots") &&
             (!strcmp(req->method, "PATCH") || !strcmp(req->method, "DELETE")))
        r = change_snapshot(api, s[1], s[3], req);
    else if (n == 5 && !strcmp(s[0], "projects") && !strcmp(s[2], "snapshots") && !strcmp(s[4], "restore") && post)
        r = restore_snapshot(api, s[1], s[3], req);
    else if (n == 3 && !strcmp(s[0], "projects") && !strcmp(s[2], "connection_uri") && get)
        r = get_connection_uri(api, s[1], req);
    else if (n == 3 && !strcmp(s[0], "projects") && !strcmp(s[2], "operations") && get)
        r = list_operations(api, s[1]);
    else if (n == 4 && !strcmp(s[0], "projects") && !strcmp(s[2], "operations") && get)
        r = get_operation(api, s[1], s[3]);
    else
        r = nl_error(404, "", "neon-local does not serve %s %s", req->method, req->path);
    pthread_mutex_unlock(&api->lock);
    return r;
}

/* On a restart on the same folder, every branch that was ready gets its
 * server back. */
static void restart_servers(nl_api *api)
{
    cJSON *p;
    cJSON_ArrayForEach(p, nl_state_projects(api->state)) {
        cJSON *b;
        cJSON_ArrayForEach(b, nl_state_list(p, NL_BRANCHES)) {
            const cJSON *e = nl_endpoint_of(p, json_text(b, "id", NULL));
            if (!nl_state_is(b, NL_BRANCH_READY) || !e || !nl_state_is(e, NL_ENDPOINT_ACTIVE))
                continue; /* data-only branches and suspended endpoints stay down */
            char *datadir = branch_datadir(api, json_text(b, "id", NULL));
            if (nl_pg_start(datadir) != 0)
                fprintf(stderr, "neon-local: cannot restart branch %s: %s\n", json_text(b, "id", NULL), err_last());
            free(datadir);
        }
    }
}

/* Data folders an older neon-local wrote trust the superuser on 127.0.0.1:
 * each is closed (its server stopped if it runs, the password set, the rule
 * rewritten) before anything starts, so that an upgrade leaves none open.
 * force: the password file is new, so no folder knows it yet. */
static void secure_data_folders(nl_api *api, int force)
{
    cJSON *p;
    cJSON_ArrayForEach(p, nl_state_projects(api->state)) {
        cJSON *b;
        cJSON_ArrayForEach(b, nl_state_list(p, NL_BRANCHES)) {
            const char *id = json_text(b, "id", NULL);
            char *datadir = branch_datadir(api, id);
            char *staged = xasprintf("%s/pg/%s.restore/data", api->data_dir, id);
            if (nl_pg_secure(datadir, force) != 0 || nl_pg_secure(staged, force) != 0)
                fprintf(stderr, "neon-local: branch %s: %s\n", id, err_last());
            free(datadir);
            free(staged);
        }
    }
}

static void stop_servers(nl_api *api)
{
    cJSON *p;
    cJSON_ArrayForEach(p, nl_state_projects(api->state)) {
        cJSON *b;
        cJSON_ArrayForEach(b, nl_state_list(p, NL_BRANCHES)) {
            char *datadir = branch_datadir(api, json_text(b, "id", NULL));
            stop_if_running(datadir);
            free(datadir);
        }
    }
}

int nl_api_open(nl_api **out, const char *data_dir)
{
    *out = NULL;
    nl_api *api = xcalloc(1, sizeof *api);
    api->data_dir = xstrdup(data_dir);
    api->state_path = xasprintf("%s/state.json", data_dir);
    if (fsio_exists(api->state_path)) {
        char *text = NULL;
        if (fsio_read_file(&text, NULL, api->state_path) == 0)
            api->state = cJSON_Parse(text);
        free(text);
        if (!cJSON_IsObject(api->state)) {
            cJSON_Delete(api->state);
            free(api->state_path);
            free(api->data_dir);
            free(api);
            return err_set(DR_EUSAGE, "%s/state.json is not valid JSON; neon-local will not guess", data_dir);
        }
    } else {
        api->state = cJSON_CreateObject();
        cJSON_AddArrayToObject(api->state, "projects");
    }
    int password_created = 0;
    int rc = nl_pg_load_superuser_password(data_dir, &password_created);
    if (rc) {
        cJSON_Delete(api->state);
        free(api->state_path);
        free(api->data_dir);
        free(api);
        return rc;
    }
    pthread_mutex_init(&api->lock, NULL);
    pthread_cond_init(&api->wake, NULL);
    api->clock_speed = 1;
    api->clock_origin = timefmt_now();
    secure_data_folders(api, password_created);
    restart_servers(api);
    pthread_create(&api->worker, NULL, worker_main, api);
    *out = api;
    return 0;
}

void nl_api_free(nl_api *api)
{
    if (!api)
        return;
    pthread_mutex_lock(&api->lock);
    api->stopping = 1;
    pthread_cond_signal(&api->wake);
    pthread_mutex_unlock(&api->lock);
    pthread_join(api->worker, NULL);
    stop_servers(api);
    cJSON_Delete(api->state);
    pthread_mutex_destroy(&api->lock);
    pthread_cond_destroy(&api->wake);
    free(api->state_path);
    free(api->data_dir);
    free(api);
    nl_pg_forget_superuser_password();
}
