#include "routes.h"

#include "branches.h"
#include "endpoints.h"
#include "operations.h"
#include "projects.h"
#include "recovery.h"
#include "roles.h"
#include "schedules.h"
#include "schema.h"
#include "snapshots.h"

#include <stddef.h>
#include <string.h>

/* In the order they are tried: a literal segment before an id in the same
 * place (shared, count). */
const nl_route nl_routes[] = {
    { "GET", "/projects", nl_projects_list },
    { "POST", "/projects", nl_project_create },
    { "GET", "/projects/shared", nl_projects_shared },
    { "GET", "/projects/{project_id}", nl_project_get },
    { "PATCH", "/projects/{project_id}", nl_project_update },
    { "DELETE", "/projects/{project_id}", nl_project_delete },
    { "POST", "/projects/{project_id}/recover", nl_project_recover },
    { "GET", "/projects/{project_id}/connection_uri", nl_connection_uri_get },
    { "GET", "/projects/{project_id}/operations", nl_operations_list },
    { "GET", "/projects/{project_id}/operations/{operation_id}", nl_operation_get },

    { "GET", "/projects/{project_id}/branches", nl_branches_list },
    { "POST", "/projects/{project_id}/branches", nl_branch_create },
    { "GET", "/projects/{project_id}/branches/count", nl_branches_count },
    { "GET", "/projects/{project_id}/branches/{branch_id}", nl_branch_get },
    { "PATCH", "/projects/{project_id}/branches/{branch_id}", nl_branch_update },
    { "DELETE", "/projects/{project_id}/branches/{branch_id}", nl_branch_delete },
    { "POST", "/projects/{project_id}/branches/{branch_id}/restore", nl_branch_restore },
    { "POST", "/projects/{project_id}/branches/{branch_id}/set_as_default", nl_branch_set_as_default },
    { "POST", "/projects/{project_id}/branches/{branch_id}/finalize_restore", nl_branch_finalize_restore },
    { "POST", "/projects/{project_id}/branches/{branch_id}/recover", nl_branch_recover },
    { "GET", "/projects/{project_id}/branches/{branch_id}/schema", nl_branch_schema_get },
    { "GET", "/projects/{project_id}/branches/{branch_id}/compare_schema", nl_branch_schema_compare },

    { "GET", "/projects/{project_id}/endpoints", nl_endpoints_list },
    { "POST", "/projects/{project_id}/endpoints", nl_endpoint_create },
    { "GET", "/projects/{project_id}/endpoints/{endpoint_id}", nl_endpoint_get },
    { "DELETE", "/projects/{project_id}/endpoints/{endpoint_id}", nl_endpoint_delete },
    { "POST", "/projects/{project_id}/endpoints/{endpoint_id}/start", nl_endpoint_start },
    { "POST", "/projects/{project_id}/endpoints/{endpoint_id}/suspend", nl_endpoint_suspend },
    { "GET", "/projects/{project_id}/branches/{branch_id}/endpoints", nl_branch_endpoints_list },

    { "GET", "/projects/{project_id}/branches/{branch_id}/roles", nl_roles_list },
    { "POST", "/projects/{project_id}/branches/{branch_id}/roles", nl_role_create },
    { "DELETE", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}", nl_role_delete },
    { "POST", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reset_password", nl_role_reset_password },
    { "GET", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reveal_password", nl_role_reveal_password },
    { "GET", "/projects/{project_id}/branches/{branch_id}/databases", nl_databases_list },
    { "POST", "/projects/{project_id}/branches/{branch_id}/databases", nl_database_create },
    { "DELETE", "/projects/{project_id}/branches/{branch_id}/databases/{database_name}", nl_database_delete },

    { "POST", "/projects/{project_id}/branches/{branch_id}/snapshot", nl_snapshot_create },
    { "GET", "/projects/{project_id}/snapshots", nl_snapshots_list },
    { "PATCH", "/projects/{project_id}/snapshots/{snapshot_id}", nl_snapshot_rename },
    { "DELETE", "/projects/{project_id}/snapshots/{snapshot_id}", nl_snapshot_delete },
    { "POST", "/projects/{project_id}/snapshots/{snapshot_id}/restore", nl_snapshot_restore },
    { "GET", "/projects/{project_id}/branches/{branch_id}/backup_schedule", nl_backup_schedule_get },
    { "PUT", "/projects/{project_id}/branches/{branch_id}/backup_schedule", nl_backup_schedule_put },
};

const size_t nl_route_count = sizeof nl_routes / sizeof *nl_routes;

/* Splits a path into out's segments; -1 when it has more than a route
 * has, or a segment longer than an id can be. */
static int split_path(nl_route_match *out, size_t *count, const char *path)
{
    size_t n = 0;
    const char *p = path;
    for (;;) {
        p += strspn(p, "/");
        if (!*p)
            break;
        size_t len = strcspn(p, "/");
        if (n == NL_ROUTE_MAX_SEGMENTS || len >= NL_ROUTE_SEGMENT_MAX)
            return -1;
        memcpy(out->segments[n], p, len);
        out->segments[n][len] = '\0';
        n++;
        p += len;
    }
    *count = n;
    return 0;
}

/* Where each {name} of a pattern goes in nl_path_ids. */
static const struct {
    const char *name;
    size_t offset;
} id_slots[] = {
    { "{project_id}", offsetof(nl_path_ids, project_id) },
    { "{branch_id}", offsetof(nl_path_ids, branch_id) },
    { "{endpoint_id}", offsetof(nl_path_ids, endpoint_id) },
    { "{snapshot_id}", offsetof(nl_path_ids, snapshot_id) },
    { "{operation_id}", offsetof(nl_path_ids, operation_id) },
    { "{role_name}", offsetof(nl_path_ids, role_name) },
    { "{database_name}", offsetof(nl_path_ids, database_name) },
};

/* Captures value as the id a pattern segment names; 0 when the segment is
 * no id. */
static int capture(nl_path_ids *ids, const char *name, size_t len, const char *value)
{
    for (size_t i = 0; i < sizeof id_slots / sizeof *id_slots; i++) {
        if (strlen(id_slots[i].name) == len && !strncmp(id_slots[i].name, name, len)) {
            *(const char **)((char *)ids + id_slots[i].offset) = value;
            return 1;
        }
    }
    return 0;
}

/* Whether the path's segments fit the pattern, its ids captured into ids. */
static int fits(nl_path_ids *ids, const char *pattern, const nl_route_match *path, size_t count)
{
    nl_path_ids captured = { 0 };
    const char *p = pattern;
    size_t i = 0;
    for (; *p; i++) {
        p += strspn(p, "/");
        size_t len = strcspn(p, "/");
        if (i == count)
            return 0;
        const char *segment = path->segments[i];
        if (!capture(&captured, p, len, segment) && (strlen(segment) != len || strncmp(segment, p, len)))
            return 0;
        p += len;
    }
    if (i != count)
        return 0;
    *ids = captured;
    return 1;
}

int nl_route_find(nl_route_match *out, const char *method, const char *path)
{
    size_t count;
    out->route = NULL;
    memset(&out->ids, 0, sizeof out->ids);
    if (split_path(out, &count, path) != 0)
        return -1;
    for (size_t i = 0; i < nl_route_count; i++) {
        if (strcmp(nl_routes[i].method, method) == 0 && fits(&out->ids, nl_routes[i].pattern, out, count)) {
            out->route = &nl_routes[i];
            return 0;
        }
    }
    return -1;
}
