#include "nl_api.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct nl_api {
    char *data_dir;
    cJSON *projects;          /* the projects, as the API shows them */
    pthread_mutex_t lock;     /* requests arrive on the server's thread(s) */
};

int nl_api_open(nl_api **out, const char *data_dir)
{
    nl_api *api = xcalloc(1, sizeof *api);
    api->data_dir = xstrdup(data_dir);
    api->projects = cJSON_CreateArray();
    pthread_mutex_init(&api->lock, NULL);
    *out = api;
    return 0;
}

void nl_api_free(nl_api *api)
{
    if (!api)
        return;
    cJSON_Delete(api->projects);
    pthread_mutex_destroy(&api->lock);
    free(api->data_dir);
    free(api);
}

static nl_response list_projects(nl_api *api, const nl_request *req)
{
    (void)req;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "projects", cJSON_Duplicate(api->projects, 1));
    return nl_json(200, body);
}

nl_response nl_api_handle(void *ud, const nl_request *req)
{
    nl_api *api = ud;
    nl_response r;
    pthread_mutex_lock(&api->lock);
    if (strcmp(req->path, "/projects") == 0 && strcmp(req->method, "GET") == 0)
        r = list_projects(api, req);
    else
        r = nl_error(404, "", "neon-local does not serve %s %s", req->method, req->path);
    pthread_mutex_unlock(&api->lock);
    return r;
}
