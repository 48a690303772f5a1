/* roles: the roles and databases of a branch, created and dropped on its
 * running server at once (not by the worker), and the connection strings
 * made of them. Names go into SQL, so they are letters, digits, '_' and '-'
 * only. */
#ifndef DRCTL_NL_ROLES_H
#define DRCTL_NL_ROLES_H

#include "api_internal.h"
#include "routes.h"

/* A role of a branch, with its password, at the end of the project's list. */
cJSON *nl_role_add(cJSON *project, const char *branch_id, const char *name, const char *password);

/* A database of a branch owned by owner, at the end of the project's list. */
cJSON *nl_database_add(cJSON *project, const char *branch_id, const char *name, const char *owner);

/* roles (with passwords), databases and connection_uris of a branch, as
 * the create answers show them (no connection_uris without endpoint). */
void nl_access_add(cJSON *body, cJSON *project, const char *branch_id, const cJSON *endpoint);

nl_response nl_connection_uri_get(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_roles_list(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_role_create(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_role_delete(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_role_reset_password(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_role_reveal_password(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_databases_list(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_database_create(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_database_delete(nl_api *api, const nl_request *req, const nl_path_ids *ids);

#endif
