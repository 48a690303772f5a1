#include "roles.h"

#include "branches.h"
#include "buf.h"
#include "err.h"
#include "ids.h"
#include "jsonfield.h"
#include "operations.h"
#include "postgres.h"
#include "state.h"

#include <stdlib.h>
#include <string.h>

/* ---- the state's roles and databases --------------------------------------------- */

cJSON *nl_role_add(cJSON *project, const char *branch_id, const char *name, const char *password)
{
    char *now = nl_now_text();
    cJSON *role = cJSON_CreateObject();
    cJSON_AddStringToObject(role, "branch_id", branch_id);
    cJSON_AddStringToObject(role, "name", name);
    cJSON_AddFalseToObject(role, "protected");
    cJSON_AddStringToObject(role, NL_PASSWORD, password);
    cJSON_AddStringToObject(role, "created_at", now);
    cJSON_AddStringToObject(role, "updated_at", now);
    cJSON_AddItemToArray(nl_state_list(project, NL_ROLES), role);
    free(now);
    return role;
}

cJSON *nl_database_add(cJSON *project, const char *branch_id, const char *name, const char *owner)
{
    char *now = nl_now_text();
    cJSON *databases = nl_state_list(project, NL_DATABASES);
    cJSON *database = cJSON_CreateObject();
    cJSON_AddNumberToObject(database, "id", cJSON_GetArraySize(databases) + 1);
    cJSON_AddStringToObject(database, "branch_id", branch_id);
    cJSON_AddStringToObject(database, "name", name);
    cJSON_AddStringToObject(database, "owner_name", owner);
    cJSON_AddStringToObject(database, "created_at", now);
    cJSON_AddStringToObject(database, "updated_at", now);
    cJSON_AddItemToArray(databases, database);
    free(now);
    return database;
}

/* A role as create answers show it: its password in the clear. */
static cJSON *role_shown(const cJSON *role, const char *password)
{
    cJSON *shown = nl_state_public_copy(role);
    cJSON_AddStringToObject(shown, "password", password);
    return shown;
}

/* At the endpoint's own address, port 5432, with TLS: the string Neon
 * gives, which neonctl builds the same way (proxy.h). */
static char *connection_uri(const cJSON *role, const cJSON *endpoint, const char *database)
{
    return xasprintf("postgresql://%s:%s@%s/%s?sslmode=require", json_text(role, "name", NULL),
                     json_text(role, NL_PASSWORD, NULL), json_text(endpoint, "host", ""), database);
}

/* One connection_uris item: the URI of database as its owner, with its parts. */
static cJSON *connection_item(const cJSON *owner, const cJSON *endpoint, const char *database)
{
    cJSON *uri = cJSON_CreateObject();
    char *text = connection_uri(owner, endpoint, database);
    cJSON_AddStringToObject(uri, "connection_uri", text);
    free(text);
    cJSON *parameters = cJSON_AddObjectToObject(uri, "connection_parameters");
    cJSON_AddStringToObject(parameters, "database", database);
    cJSON_AddStringToObject(parameters, "password", json_text(owner, NL_PASSWORD, NULL));
    cJSON_AddStringToObject(parameters, "role", json_text(owner, "name", NULL));
    cJSON_AddStringToObject(parameters, "host", json_text(endpoint, "host", ""));
    cJSON_AddStringToObject(parameters, "pooler_host", json_text(endpoint, "host", ""));
    return uri;
}

static int on_branch(const cJSON *item, const char *branch_id)
{
    const char *owner = json_text(item, "branch_id", NULL);
    return owner && !strcmp(owner, branch_id);
}

void nl_access_add(cJSON *body, cJSON *project, const char *branch_id, const cJSON *endpoint)
{
    cJSON *roles = cJSON_AddArrayToObject(body, "roles");
    cJSON *databases = cJSON_AddArrayToObject(body, "databases");
    cJSON *uris = cJSON_AddArrayToObject(body, "connection_uris");
    const cJSON *role, *db;
    cJSON_ArrayForEach(role, nl_state_list(project, NL_ROLES))
        if (on_branch(role, branch_id))
            cJSON_AddItemToArray(roles, role_shown(role, json_text(role, NL_PASSWORD, NULL)));
    cJSON_ArrayForEach(db, nl_state_list(project, NL_DATABASES)) {
        if (!on_branch(db, branch_id))
            continue;
        cJSON_AddItemToArray(databases, nl_state_public_copy(db));
        const char *name = json_text(db, "name", NULL);
        const cJSON *owner = nl_state_item_named(project, NL_ROLES, branch_id, json_text(db, "owner_name", NULL));
        if (endpoint && owner)
            cJSON_AddItemToArray(uris, connection_item(owner, endpoint, name));
    }
}

/* GET /projects/{id}/connection_uri?branch_id=&database_name=&role_name= */
nl_response nl_connection_uri_get(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    if (!project)
        return nl_api_no_project(ids->project_id);
    const char *branch_id = json_text(req->query, "branch_id", NULL);
    const char *database = json_text(req->query, "database_name", NULL);
    const char *role_name = json_text(req->query, "role_name", NULL);
    if (!database || !role_name)
        return nl_error(400, "", "database_name and role_name are required");
    cJSON *branch = branch_id ? nl_state_item_in(project, NL_BRANCHES, branch_id) : nl_branch_default(project);
    if (!branch)
        return nl_api_no_branch(ids->project_id, branch_id);
    const char *id = json_text(branch, "id", NULL);
    cJSON *role = nl_state_item_named(project, NL_ROLES, id, role_name);
    cJSON *endpoint = nl_endpoint_of(project, id);
    if (!role)
        return nl_error(404, "", "role %s not found on branch %s", role_name, id);
    if (!nl_state_item_named(project, NL_DATABASES, id, database))
        return nl_error(404, "", "database %s not found on branch %s", database, id);
    if (!endpoint)
        return nl_error(404, "", "branch %s has no endpoint", id);
    char *uri = connection_uri(role, endpoint, database);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "uri", uri);
    free(uri);
    return nl_json(200, body);
}

/* ---- changes on the branch's server ------------------------------------------------ */

/* Role and database names go into SQL: letters, digits, '_' and '-' only. */
static int valid_sql_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 63)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-'))
            return 0;
    return 1;
}

/* What a role or database change works on: the project, the port of the
 * branch's running server, and the role the path names (NULL when it names
 * none). */
typedef struct server_target {
    cJSON *project;
    int port;
    cJSON *role;
} server_target;

/* The branch a role/database request names, with a running server, and
 * the role named in the path if there is one; -1 with *error set when not. */
static int open_target(server_target *out, nl_response *error, nl_api *api, const nl_path_ids *ids)
{
    cJSON *branch;
    memset(out, 0, sizeof *out);
    if (nl_branch_lookup(&out->project, &branch, error, api, ids->project_id, ids->branch_id) != 0)
        return -1;
    cJSON *endpoint = nl_endpoint_of(out->project, ids->branch_id);
    out->port = nl_endpoint_port(endpoint);
    if (!out->port || !nl_state_is(endpoint, NL_ENDPOINT_ACTIVE)) {
        *error = nl_error(400, "", "branch %s has no running endpoint to apply this to", ids->branch_id);
        return -1;
    }
    if (!ids->role_name)
        return 0;
    out->role = nl_state_item_named(out->project, NL_ROLES, ids->branch_id, ids->role_name);
    if (!out->role) {
        *error = nl_error(404, "", "role %s not found on branch %s", ids->role_name, ids->branch_id);
        return -1;
    }
    return 0;
}

/* Runs sql (taken) as the superuser on the branch's server; -1 with the
 * 500 answer in *error when it fails. */
/* Runs SQL on the branch's server; a refusal that is the request's fault
 * (a reserved or existing name, a role still owning objects) is answered
 * as a client error with PostgreSQL's reason, anything else as 500. */
static int run_sql(nl_response *error, int port, char *sql)
{
    char state[6], why[256];
    int rc = nl_pg_sql_refused(port, "postgres", sql, state, why, sizeof why);
    free(sql);
    if (rc == 0)
        return 0;
    if (!strcmp(state, "42939") || !strcmp(state, "2BP01") || !strcmp(state, "42602"))
        *error = nl_error(400, "", "%s", why); /* reserved_name, dependent_objects_still_exist, invalid_name */
    else if (!strcmp(state, "42710") || !strcmp(state, "42P04"))
        *error = nl_error(409, "", "%s", why); /* duplicate_object, duplicate_database */
    else
        *error = nl_error(500, "", "%s", err_last());
    return rc;
}

/* The answer of a change already applied: {key: item, operations: [apply_config, finished]}. */
static nl_response applied(nl_api *api, cJSON *project, const char *branch_id, unsigned status, const char *key,
                           cJSON *item)
{
    cJSON *op = nl_operation_new(project, "apply_config", branch_id, NULL);
    nl_operations_finish(project, branch_id, NULL);
    cJSON *ops = cJSON_CreateArray();
    cJSON_AddItemToArray(ops, cJSON_Duplicate(op, 1));
    return nl_api_saved(api, status, nl_api_body(key, item, ops));
}

nl_response nl_roles_list(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    return nl_api_list_items(api, ids->project_id, ids->branch_id, NL_ROLES, "roles");
}

nl_response nl_databases_list(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    return nl_api_list_items(api, ids->project_id, ids->branch_id, NL_DATABASES, "databases");
}

nl_response nl_role_create(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    server_target t;
    nl_response error;
    if (open_target(&t, &error, api, ids) != 0)
        return error;
    const char *name = json_text(cJSON_GetObjectItemCaseSensitive(req->body, "role"), "name", NULL);
    if (!valid_sql_name(name))
        return nl_error(400, "", "role.name must be 1 to 63 letters, digits, '_' or '-'");
    if (nl_state_item_named(t.project, NL_ROLES, ids->branch_id, name))
        return nl_error(409, "", "role %s already exists on branch %s", name, ids->branch_id);
    char *password = nl_new_password();
    if (run_sql(&error, t.port, xasprintf("CREATE ROLE \"%s\" LOGIN PASSWORD '%s'", name, password)) != 0) {
        free(password);
        return error;
    }
    cJSON *shown = role_shown(nl_role_add(t.project, ids->branch_id, name, password), password);
    free(password);
    return applied(api, t.project, ids->branch_id, 201, "role", shown);
}

nl_response nl_role_reset_password(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    server_target t;
    nl_response error;
    if (open_target(&t, &error, api, ids) != 0)
        return error;
    char *password = nl_new_password();
    if (run_sql(&error, t.port, xasprintf("ALTER ROLE \"%s\" PASSWORD '%s'", ids->role_name, password)) != 0) {
        free(password);
        return error;
    }
    nl_state_set_text(t.role, NL_PASSWORD, password);
    cJSON *shown = role_shown(t.role, password);
    free(password);
    return applied(api, t.project, ids->branch_id, 200, "role", shown);
}

nl_response nl_role_reveal_password(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    cJSON *role = nl_state_item_named(project, NL_ROLES, ids->branch_id, ids->role_name);
    if (!role)
        return nl_error(404, "", "role %s not found on branch %s of project %s", ids->role_name, ids->branch_id,
                        ids->project_id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "password", json_text(role, NL_PASSWORD, NULL));
    return nl_json(200, body);
}

nl_response nl_database_create(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    server_target t;
    nl_response error;
    if (open_target(&t, &error, api, ids) != 0)
        return error;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(req->body, "database");
    const char *name = json_text(spec, "name", NULL), *owner = json_text(spec, "owner_name", NULL);
    if (!valid_sql_name(name) || !valid_sql_name(owner))
        return nl_error(400, "", "database.name and database.owner_name must be 1 to 63 letters, digits, '_' or '-'");
    if (!nl_state_item_named(t.project, NL_ROLES, ids->branch_id, owner))
        return nl_error(404, "", "role %s not found on branch %s", owner, ids->branch_id);
    if (nl_state_item_named(t.project, NL_DATABASES, ids->branch_id, name))
        return nl_error(409, "", "database %s already exists on branch %s", name, ids->branch_id);
    if (run_sql(&error, t.port, xasprintf("CREATE DATABASE \"%s\" OWNER \"%s\"", name, owner)) != 0)
        return error;
    cJSON *database = nl_database_add(t.project, ids->branch_id, name, owner);
    return applied(api, t.project, ids->branch_id, 201, "database", nl_state_public_copy(database));
}

/* Runs a DROP on the branch's server, then takes the item out of the state. */
static nl_response dropped(nl_api *api, cJSON *project, const char *branch_id, int port, const char *list,
                           const char *key, cJSON *item, char *sql)
{
    nl_response error;
    if (run_sql(&error, port, sql) != 0)
        return error;
    cJSON_DetachItemViaPointer(nl_state_list(project, list), item);
    cJSON *shown = nl_state_public_copy(item);
    cJSON_Delete(item);
    return applied(api, project, branch_id, 200, key, shown);
}

/* The database of the branch that role owns, or NULL. */
static const cJSON *database_owned_by(cJSON *project, const char *branch_id, const char *role)
{
    const cJSON *db;
    cJSON_ArrayForEach(db, nl_state_list(project, NL_DATABASES))
        if (on_branch(db, branch_id) && !strcmp(json_text(db, "owner_name", ""), role))
            return db;
    return NULL;
}

/* DELETE .../branches/{id}/roles/{name}: refused while the role owns a
 * database, as dropping it would fail half-way on the server. */
nl_response nl_role_delete(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    server_target t;
    nl_response error;
    if (open_target(&t, &error, api, ids) != 0)
        return error;
    const cJSON *owned = database_owned_by(t.project, ids->branch_id, ids->role_name);
    if (owned)
        return nl_error(409, "", "role %s owns database %s on branch %s; delete the database or give it another "
                        "owner first", ids->role_name, json_text(owned, "name", NULL), ids->branch_id);
    return dropped(api, t.project, ids->branch_id, t.port, NL_ROLES, "role", t.role,
                   xasprintf("DROP ROLE \"%s\"", ids->role_name));
}

/* DELETE .../branches/{id}/databases/{name}: its sessions are ended, as on Neon. */
nl_response nl_database_delete(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    server_target t;
    nl_response error;
    if (open_target(&t, &error, api, ids) != 0)
        return error;
    cJSON *database = nl_state_item_named(t.project, NL_DATABASES, ids->branch_id, ids->database_name);
    if (!database)
        return nl_error(404, "", "database %s not found on branch %s", ids->database_name, ids->branch_id);
    return dropped(api, t.project, ids->branch_id, t.port, NL_DATABASES, "database", database,
                   xasprintf("DROP DATABASE \"%s\" WITH (FORCE)", ids->database_name));
}
