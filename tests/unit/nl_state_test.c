#include "test.h"

#include "jsonfield.h"
#include "state.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

/* Two projects, one deleted; branches main (default, with an endpoint on
 * port 5001), dev (its child) and a snapshot of main; roles and databases
 * on main only. */
static const char *const small_state =
    "{\"projects\": ["
    " {\"id\": \"p1\", \"name\": \"shop\","
    "  \"_branches\": ["
    "   {\"id\": \"b-main\", \"name\": \"main\", \"default\": true, \"current_state\": \"ready\"},"
    "   {\"id\": \"b-dev\", \"name\": \"dev\", \"parent_id\": \"b-main\", \"current_state\": \"init\"},"
    "   {\"id\": \"b-snap\", \"name\": \"nightly\", \"parent_id\": \"b-dev\", \"_snapshot\": true,"
    "    \"current_state\": \"ready\"}],"
    "  \"_endpoints\": [{\"id\": \"ep-1\", \"branch_id\": \"b-main\", \"_port\": 5001, \"current_state\": \"active\"}],"
    "  \"_roles\": [{\"branch_id\": \"b-main\", \"name\": \"owner\", \"_password\": \"npg_secret\"}],"
    "  \"_databases\": [{\"id\": 1, \"branch_id\": \"b-main\", \"name\": \"neondb\", \"owner_name\": \"owner\"}],"
    "  \"_operations\": []},"
    " {\"id\": \"p2\", \"_deleted\": true, \"_branches\": []}]}";

static void a_deleted_project_is_found_only_by_the_raw_lookup(void)
{
    cJSON *state = cJSON_Parse(small_state);
    CHECK(state != NULL);
    int live_p1 = nl_state_live_project(state, "p1") != NULL;
    int live_p2 = nl_state_live_project(state, "p2") != NULL;
    int any_p2 = nl_state_any_project(state, "p2") != NULL;
    int none = nl_state_any_project(state, "p3") == NULL;
    cJSON_Delete(state);
    CHECK(live_p1);
    CHECK(!live_p2);
    CHECK(any_p2);
    CHECK(none);
}

static void items_are_found_by_id_and_by_name_on_their_branch(void)
{
    cJSON *state = cJSON_Parse(small_state);
    cJSON *p = nl_state_live_project(state, "p1");
    const char *dev = json_text(nl_state_item_in(p, NL_BRANCHES, "b-dev"), "name", NULL);
    int missing = nl_state_item_in(p, NL_BRANCHES, "b-none") == NULL;
    int from_null = nl_state_item_in(NULL, NL_BRANCHES, "b-dev") == NULL;
    const char *password = json_text(nl_state_item_named(p, NL_ROLES, "b-main", "owner"), NL_PASSWORD, NULL);
    int not_on_dev = nl_state_item_named(p, NL_ROLES, "b-dev", "owner") == NULL;
    int ok = dev && !strcmp(dev, "dev") && password && !strcmp(password, "npg_secret");
    cJSON_Delete(state);
    CHECK(ok);
    CHECK(missing);
    CHECK(from_null);
    CHECK(not_on_dev);
}

static void a_branch_knows_its_endpoint_port_children_and_default(void)
{
    cJSON *state = cJSON_Parse(small_state);
    cJSON *p = nl_state_live_project(state, "p1");
    int port = nl_endpoint_port(nl_endpoint_of(p, "b-main"));
    int no_port = nl_endpoint_port(nl_endpoint_of(p, "b-dev"));
    const char *def = json_text(nl_branch_default(p), "id", "");
    int main_has = nl_branch_has_children(p, "b-main");
    /* Only a snapshot was made of dev: that is no child. */
    int dev_has = nl_branch_has_children(p, "b-dev");
    int snapshot_hidden = nl_branch_named(p, "nightly") == NULL;
    int named = nl_branch_named(p, "dev") == nl_state_item_in(p, NL_BRANCHES, "b-dev");
    int is_snap = nl_branch_is_snapshot(nl_state_item_in(p, NL_BRANCHES, "b-snap"));
    int ok = !strcmp(def, "b-main");
    cJSON_Delete(state);
    CHECK(port == 5001);
    CHECK(no_port == 0);
    CHECK(ok);
    CHECK(main_has);
    CHECK(!dev_has);
    CHECK(snapshot_hidden);
    CHECK(named);
    CHECK(is_snap);
}

static void current_state_is_read_and_set_by_name(void)
{
    cJSON *state = cJSON_Parse(small_state);
    cJSON *p = nl_state_live_project(state, "p1");
    cJSON *dev = nl_state_item_in(p, NL_BRANCHES, "b-dev");
    int was_init = nl_state_is(dev, NL_BRANCH_INIT);
    nl_state_set_current(dev, NL_BRANCH_READY);
    int ready = nl_state_is(dev, NL_BRANCH_READY) && !nl_state_is(dev, NL_BRANCH_INIT);
    int active = nl_state_is(nl_endpoint_of(p, "b-main"), NL_ENDPOINT_ACTIVE);
    int null_is_nothing = !nl_state_is(NULL, NL_BRANCH_READY);
    cJSON_Delete(state);
    CHECK(was_init);
    CHECK(ready);
    CHECK(active);
    CHECK(null_is_nothing);
}

static void a_public_copy_hides_every_underscore_field(void)
{
    cJSON *state = cJSON_Parse(small_state);
    cJSON *p = nl_state_live_project(state, "p1");
    cJSON *shown = nl_state_public_copy(nl_endpoint_of(p, "b-main"));
    char *text = cJSON_PrintUnformatted(shown);
    cJSON *project_shown = nl_state_public_copy(p);
    int lists_hidden = cJSON_GetArraySize(project_shown) == 2; /* id and name */
    cJSON_Delete(shown);
    cJSON_Delete(project_shown);
    cJSON_Delete(state);
    int ok = text && !strstr(text, "_port") && strstr(text, "\"id\":\"ep-1\"");
    free(text);
    CHECK(ok);
    CHECK(lists_hidden);
}

static void set_adds_or_replaces_a_field(void)
{
    cJSON *o = cJSON_CreateObject();
    nl_state_set_text(o, NL_PENDING, "start");
    nl_state_set_text(o, NL_PENDING, "suspend");
    int one = cJSON_GetArraySize(o) == 1;
    const char *value = json_text(o, NL_PENDING, "");
    int ok = !strcmp(value, "suspend");
    cJSON_Delete(o);
    CHECK(one);
    CHECK(ok);
}

static void a_child_inherits_roles_and_databases_and_forgetting_takes_them(void)
{
    cJSON *state = cJSON_Parse(small_state);
    cJSON *p = nl_state_live_project(state, "p1");
    nl_state_inherit_roles_and_databases(p, "b-main", "b-dev");
    int roles = cJSON_GetArraySize(nl_state_list(p, NL_ROLES));
    const char *owner = json_text(nl_state_item_named(p, NL_DATABASES, "b-dev", "neondb"), "owner_name", "");
    int inherited = !strcmp(owner, "owner");
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "id", "ep-2");
    cJSON_AddStringToObject(e, "branch_id", "b-dev");
    cJSON_AddItemToArray(nl_state_list(p, NL_ENDPOINTS), e);
    nl_state_forget_branch(p, "b-dev");
    int branches = cJSON_GetArraySize(nl_state_list(p, NL_BRANCHES));
    int endpoints = cJSON_GetArraySize(nl_state_list(p, NL_ENDPOINTS));
    int roles_after = cJSON_GetArraySize(nl_state_list(p, NL_ROLES));
    int databases_after = cJSON_GetArraySize(nl_state_list(p, NL_DATABASES));
    int main_kept = nl_state_item_named(p, NL_ROLES, "b-main", "owner") != NULL;
    cJSON_Delete(state);
    CHECK(roles == 2);
    CHECK(inherited);
    CHECK(branches == 2); /* main and the snapshot */
    CHECK(endpoints == 1);
    CHECK(roles_after == 1);
    CHECK(databases_after == 1);
    CHECK(main_kept);
}

static void a_new_state_has_an_empty_list_of_projects(void)
{
    cJSON *state = nl_state_new();
    int empty = cJSON_IsArray(nl_state_projects(state)) && cJSON_GetArraySize(nl_state_projects(state)) == 0;
    cJSON_Delete(state);
    CHECK(empty);
}

TEST_SUITE(nl_state)
{
    REGISTER(a_deleted_project_is_found_only_by_the_raw_lookup);
    REGISTER(items_are_found_by_id_and_by_name_on_their_branch);
    REGISTER(a_branch_knows_its_endpoint_port_children_and_default);
    REGISTER(current_state_is_read_and_set_by_name);
    REGISTER(a_public_copy_hides_every_underscore_field);
    REGISTER(set_adds_or_replaces_a_field);
    REGISTER(a_child_inherits_roles_and_databases_and_forgetting_takes_them);
    REGISTER(a_new_state_has_an_empty_list_of_projects);
}
