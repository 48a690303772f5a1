/* nl_api: the Neon API v2 resources neon-local serves. Routes a request to
 * its resource; anything it does not serve is 404 in Neon's shape.
 *
 * Behind this header: routes.c holds the table of what is served; one file
 * a resource family answers (projects, branches with branchlist and
 * restores, endpoints, roles, snapshots, schedules, operations); state.h
 * names the state document; jobs.h is the worker that does the slow
 * PostgreSQL work, and provision.h that work itself. */
#ifndef DRCTL_NL_API_H
#define DRCTL_NL_API_H

#include "server.h"

typedef struct nl_api nl_api;

/* The API over the state kept in data_dir. */
int nl_api_open(nl_api **out, const char *data_dir);
void nl_api_free(nl_api *api);

/* Runs backup schedules, snapshot expiry and branch expiry `speed` times
 * faster than real time, from now on (for rehearsals: a day of schedules in
 * minutes). */
void nl_api_set_clock_speed(nl_api *api, double speed);

/* The nl_handler for nl_server_start (ud: the nl_api). */
nl_response nl_api_handle(void *ud, const nl_request *req);

#endif
