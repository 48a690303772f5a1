#include "api.h"

#include "api_internal.h"
#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "jobs.h"
#include "jsonfield.h"
#include "jsontext.h"
#include "postgres.h"
#include "provision.h"
#include "routes.h"
#include "state.h"
#include "timefmt.h"

#include <stdlib.h>
#include <string.h>

/* ---- what every resource shares ---------------------------------------------- */

int nl_api_save(nl_api *api)
{
    char *text = json_print_exact(api->state, 1);
    /* It holds the roles' passwords: readable by its owner only. */
    int rc = fsio_write_durable_mode(api->state_path, text, strlen(text), 0600);
    free(text);
    return rc;
}

void nl_api_wake_worker(nl_api *api)
{
    pthread_cond_signal(&api->wake);
}

double nl_api_schedule_now(const nl_api *api)
{
    double real = timefmt_now();
    return api->clock_origin + (real - api->clock_origin) * api->clock_speed;
}

int nl_api_sweep_branches(nl_api *api, int (*visit)(cJSON *project, cJSON *branch, void *now))
{
    double now = nl_api_schedule_now(api);
    int any = nl_state_each_branch(api->state, visit, &now);
    if (any)
        nl_api_save(api);
    return any;
}

char *nl_api_branch_path(const nl_api *api, const char *branch_id, const char *part)
{
    return part ? xasprintf("%s/pg/%s/%s", api->data_dir, branch_id, part)
                : xasprintf("%s/pg/%s", api->data_dir, branch_id);
}

char *nl_api_staging_path(const nl_api *api, const char *branch_id, const char *part)
{
    return part ? xasprintf("%s/pg/%s.restore/%s", api->data_dir, branch_id, part)
                : xasprintf("%s/pg/%s.restore", api->data_dir, branch_id);
}

nl_response nl_api_saved(nl_api *api, unsigned status, cJSON *body)
{
    if (nl_api_save(api) != 0) {
        cJSON_Delete(body);
        return nl_error(500, "", "cannot save neon-local's state: %s", err_last());
    }
    return nl_json(status, body);
}

nl_response nl_api_queued(nl_api *api, unsigned status, cJSON *body)
{
    nl_response r = nl_api_saved(api, status, body);
    if (r.status == status)
        nl_api_wake_worker(api);
    return r;
}

cJSON *nl_api_body(const char *key, cJSON *item, cJSON *ops)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, key, item);
    cJSON_AddItemToObject(body, "operations", ops ? ops : cJSON_CreateArray());
    return body;
}

nl_response nl_api_no_project(const char *project_id)
{
    return nl_error(404, "", "project %s not found", project_id);
}

nl_response nl_api_no_branch(const char *project_id, const char *branch_id)
{
    return nl_error(404, "", "branch %s not found in project %s", branch_id, project_id);
}

nl_response nl_api_busy(const char *what, const char *id)
{
    return nl_error(423, "", "%s %s has an operation in progress; wait for it to finish", what, id);
}

nl_response nl_api_list_items(nl_api *api, const char *project_id, const char *branch_id, const char *list,
                              const char *key)
{
    cJSON *project = nl_state_live_project(api->state, project_id);
    if (!project)
        return nl_api_no_project(project_id);
    if (branch_id && !nl_state_item_in(project, NL_BRANCHES, branch_id))
        return nl_api_no_branch(project_id, branch_id);
    cJSON *items = cJSON_CreateArray();
    const cJSON *item;
    cJSON_ArrayForEach(item, nl_state_list(project, list)) {
        const char *owner = json_text(item, "branch_id", NULL);
        if (!branch_id || (owner && !strcmp(owner, branch_id)))
            cJSON_AddItemToArray(items, nl_state_public_copy(item));
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, key, items);
    return nl_json(200, body);
}

/* ---- requests ------------------------------------------------------------------ */

nl_response nl_api_handle(void *ud, const nl_request *req)
{
    nl_api *api = ud;
    nl_route_match match;
    if (nl_route_find(&match, req->method, req->path) != 0)
        return nl_error(404, "", "neon-local does not serve %s %s", req->method, req->path);
    pthread_mutex_lock(&api->lock);
    nl_response r = match.route->handler(api, req, &match.ids);
    pthread_mutex_unlock(&api->lock);
    return r;
}

void nl_api_set_clock_speed(nl_api *api, double speed)
{
    pthread_mutex_lock(&api->lock);
    api->clock_origin = timefmt_now();
    api->clock_speed = speed > 0 ? speed : 1;
    pthread_mutex_unlock(&api->lock);
}

/* ---- lifetime -------------------------------------------------------------------- */

/* The state in data_dir/state.json, or a new empty one when there is none
 * yet; a file that is not a JSON object is refused rather than guessed at. */
static int load_state(cJSON **out, const char *state_path, const char *data_dir)
{
    *out = NULL;
    if (!fsio_exists(state_path)) {
        *out = nl_state_new();
        return 0;
    }
    char *text = NULL;
    cJSON *state = fsio_read_file(&text, NULL, state_path) == 0 ? cJSON_Parse(text) : NULL;
    free(text);
    if (!cJSON_IsObject(state)) {
        cJSON_Delete(state);
        return err_set(DR_EUSAGE, "%s/state.json is not valid JSON; neon-local will not guess", data_dir);
    }
    *out = state;
    return 0;
}

/* What the API holds in memory (the worker stopped, or never started). */
static void release_memory(nl_api *api)
{
    cJSON_Delete(api->state);
    free(api->state_path);
    free(api->data_dir);
    free(api);
}

int nl_api_open(nl_api **out, const char *data_dir)
{
    *out = NULL;
    nl_api *api = xcalloc(1, sizeof *api);
    api->data_dir = xstrdup(data_dir);
    api->state_path = xasprintf("%s/state.json", data_dir);
    int password_created = 0;
    int rc = load_state(&api->state, api->state_path, data_dir);
    if (rc == 0) {
        nl_ports_claim_in(api->state);
        rc = nl_pg_load_superuser_password(data_dir, &password_created);
    }
    if (rc != 0) {
        release_memory(api);
        return rc;
    }
    pthread_mutex_init(&api->lock, NULL);
    pthread_cond_init(&api->wake, NULL);
    api->clock_speed = 1;
    api->clock_origin = timefmt_now();
    nl_provision_secure_all(api, password_created);
    nl_provision_restart_all(api);
    pthread_create(&api->worker, NULL, nl_worker_main, api);
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
    nl_provision_stop_all(api);
    pthread_mutex_destroy(&api->lock);
    pthread_cond_destroy(&api->wake);
    release_memory(api);
    nl_pg_forget_superuser_password();
}
