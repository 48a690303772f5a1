/* routes: the table of what neon-local serves, one row a route:
 * {method, pattern, handler}. A pattern is a path below /api/v2 whose
 * segments are either literal ("branches") or an id in braces
 * ("{branch_id}"), which the match captures for the handler. The first
 * row that matches wins, so a literal segment ("/projects/shared") comes
 * before the id it would otherwise be taken for. */
#ifndef DRCTL_NL_ROUTES_H
#define DRCTL_NL_ROUTES_H

#include "server.h"

#include <stddef.h>

typedef struct nl_api nl_api;

/* The ids a path names; NULL for those its pattern does not have. */
typedef struct nl_path_ids {
    const char *project_id;
    const char *branch_id;
    const char *endpoint_id;
    const char *snapshot_id;
    const char *operation_id;
    const char *role_name;
    const char *database_name;
} nl_path_ids;

/* Every handler answers with the lock held (api_internal.h). */
typedef nl_response (*nl_route_handler)(nl_api *api, const nl_request *req, const nl_path_ids *ids);

typedef struct nl_route {
    const char *method;
    const char *pattern;
    nl_route_handler handler;
} nl_route;

/* The deepest route has 7 segments; an id is at most 127 bytes. */
#define NL_ROUTE_MAX_SEGMENTS 7
#define NL_ROUTE_SEGMENT_MAX 128

/* A route found, with the ids its path captured (they point into segments). */
typedef struct nl_route_match {
    const nl_route *route;
    nl_path_ids ids;
    char segments[NL_ROUTE_MAX_SEGMENTS][NL_ROUTE_SEGMENT_MAX];
} nl_route_match;

/* Finds the route for method and path ("/projects/abc/branches"; repeated
 * slashes count as one). 0 when one matches; -1 when none does, the same
 * for a path nothing serves and for a method its path does not take. */
int nl_route_find(nl_route_match *out, const char *method, const char *path);

/* The table itself, for tests that go through every row. */
extern const nl_route nl_routes[];
extern const size_t nl_route_count;

#endif
