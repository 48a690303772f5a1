#include "state.h"

#include "jsonfield.h"

#include <string.h>

cJSON *nl_state_new(void)
{
    cJSON *state = cJSON_CreateObject();
    cJSON_AddArrayToObject(state, NL_PROJECTS);
    return state;
}

cJSON *nl_state_projects(cJSON *state)
{
    return cJSON_GetObjectItemCaseSensitive(state, NL_PROJECTS);
}

int nl_state_each_branch(cJSON *state, nl_branch_visitor visit, void *context)
{
    int changed = 0;
    cJSON *project;
    cJSON_ArrayForEach(project, nl_state_projects(state)) {
        cJSON *branch;
        cJSON_ArrayForEach(branch, nl_state_list(project, NL_BRANCHES))
            changed |= visit(project, branch, context);
        cJSON_ArrayForEach(branch, nl_state_list(project, NL_KEPT_BRANCHES))
            changed |= visit(project, branch, context);
    }
    return changed;
}

cJSON *nl_state_list(cJSON *project, const char *list)
{
    return project ? cJSON_GetObjectItemCaseSensitive(project, list) : NULL;
}

/* Whether item.key is the text want (a missing key never is). */
static int text_is(const cJSON *item, const char *key, const char *want)
{
    const char *text = json_text(item, key, NULL);
    return text && want && strcmp(text, want) == 0;
}

cJSON *nl_state_find_by_id(cJSON *list, const char *id)
{
    cJSON *item;
    cJSON_ArrayForEach(item, list)
        if (text_is(item, "id", id))
            return item;
    return NULL;
}

cJSON *nl_state_any_project(cJSON *state, const char *project_id)
{
    return nl_state_find_by_id(nl_state_projects(state), project_id);
}

cJSON *nl_state_live_project(cJSON *state, const char *project_id)
{
    cJSON *project = nl_state_any_project(state, project_id);
    return project && !cJSON_GetObjectItemCaseSensitive(project, NL_DELETED) ? project : NULL;
}

cJSON *nl_state_item_in(cJSON *project, const char *list, const char *id)
{
    return nl_state_find_by_id(nl_state_list(project, list), id);
}

cJSON *nl_state_item_named(cJSON *project, const char *list, const char *branch_id, const char *name)
{
    cJSON *item;
    cJSON_ArrayForEach(item, nl_state_list(project, list))
        if (text_is(item, "branch_id", branch_id) && text_is(item, "name", name))
            return item;
    return NULL;
}

void nl_state_set(cJSON *object, const char *key, cJSON *value)
{
    if (cJSON_GetObjectItemCaseSensitive(object, key))
        cJSON_ReplaceItemInObjectCaseSensitive(object, key, value);
    else
        cJSON_AddItemToObject(object, key, value);
}

void nl_state_set_text(cJSON *object, const char *key, const char *text)
{
    nl_state_set(object, key, cJSON_CreateString(text));
}

cJSON *nl_state_public_copy(const cJSON *item)
{
    cJSON *copy = cJSON_CreateObject();
    const cJSON *field;
    cJSON_ArrayForEach(field, item)
        if (field->string[0] != '_')
            cJSON_AddItemToObject(copy, field->string, cJSON_Duplicate(field, 1));
    return copy;
}

int nl_state_is(const cJSON *item, const char *state)
{
    return text_is(item, "current_state", state);
}

void nl_state_set_current(cJSON *item, const char *state)
{
    nl_state_set_text(item, "current_state", state);
}

int nl_state_flag(const cJSON *object, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(object, key));
}

int nl_branch_is_snapshot(const cJSON *branch)
{
    return nl_state_flag(branch, NL_SNAPSHOT);
}

cJSON *nl_branch_default(cJSON *project)
{
    cJSON *branch;
    cJSON_ArrayForEach(branch, nl_state_list(project, NL_BRANCHES))
        if (nl_state_flag(branch, "default"))
            return branch;
    return NULL;
}

cJSON *nl_branch_named(cJSON *project, const char *name)
{
    cJSON *branch;
    cJSON_ArrayForEach(branch, nl_state_list(project, NL_BRANCHES))
        if (!nl_branch_is_snapshot(branch) && text_is(branch, "name", name))
            return branch;
    return NULL;
}

int nl_branch_has_children(cJSON *project, const char *branch_id)
{
    cJSON *branch;
    cJSON_ArrayForEach(branch, nl_state_list(project, NL_BRANCHES))
        if (!nl_branch_is_snapshot(branch) && text_is(branch, "parent_id", branch_id))
            return 1;
    return 0;
}

cJSON *nl_endpoint_of(cJSON *project, const char *branch_id)
{
    cJSON *endpoint;
    cJSON_ArrayForEach(endpoint, nl_state_list(project, NL_ENDPOINTS))
        if (text_is(endpoint, "branch_id", branch_id))
            return endpoint;
    return NULL;
}

int nl_endpoint_port(const cJSON *endpoint)
{
    const cJSON *port = cJSON_GetObjectItemCaseSensitive(endpoint, NL_PORT);
    return cJSON_IsNumber(port) ? port->valueint : 0;
}

void nl_state_inherit_roles_and_databases(cJSON *project, const char *parent_id, const char *branch_id)
{
    static const char *const lists[] = { NL_ROLES, NL_DATABASES };
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        cJSON *list = nl_state_list(project, lists[i]);
        /* Counted first: the copies go to the end of the same list. */
        int count = cJSON_GetArraySize(list);
        for (int k = 0; k < count; k++) {
            cJSON *item = cJSON_GetArrayItem(list, k);
            if (!text_is(item, "branch_id", parent_id))
                continue;
            cJSON *copy = cJSON_Duplicate(item, 1);
            nl_state_set_text(copy, "branch_id", branch_id);
            cJSON_AddItemToArray(list, copy);
        }
    }
}

void nl_state_forget_branch(cJSON *project, const char *branch_id)
{
    static const char *const lists[] = { NL_BRANCHES, NL_ENDPOINTS, NL_ROLES, NL_DATABASES };
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        /* A branch is named by its id; what belongs to it, by its branch_id. */
        const char *owner_key = i == 0 ? "id" : "branch_id";
        cJSON *list = nl_state_list(project, lists[i]);
        for (int k = cJSON_GetArraySize(list) - 1; k >= 0; k--)
            if (text_is(cJSON_GetArrayItem(list, k), owner_key, branch_id))
                cJSON_DeleteItemFromArray(list, k);
    }
}

cJSON *nl_state_kept_branches(cJSON *project)
{
    cJSON *list = nl_state_list(project, NL_KEPT_BRANCHES);
    /* A state written before deleted branches were kept has none. */
    return list ? list : cJSON_AddArrayToObject(project, NL_KEPT_BRANCHES);
}

cJSON *nl_state_kept_branch(cJSON *project, const char *branch_id)
{
    return nl_state_item_in(project, NL_KEPT_BRANCHES, branch_id);
}

int nl_branch_is_deleted(const cJSON *branch)
{
    return cJSON_GetObjectItemCaseSensitive(branch, NL_RECOVERY) != NULL;
}

/* The names NL_KEPT files a branch's items under, with the list each is from. */
static const struct {
    const char *kept_as;
    const char *list;
} kept_lists[] = {
    { "endpoints", NL_ENDPOINTS },
    { "roles", NL_ROLES },
    { "databases", NL_DATABASES },
};

cJSON *nl_state_keep_branch(cJSON *project, cJSON *branch, cJSON *recovery)
{
    const char *branch_id = json_text(branch, "id", NULL);
    cJSON *kept = cJSON_CreateObject();
    for (size_t i = 0; i < sizeof kept_lists / sizeof *kept_lists; i++) {
        cJSON *into = cJSON_AddArrayToObject(kept, kept_lists[i].kept_as);
        cJSON *list = nl_state_list(project, kept_lists[i].list);
        /* In order, so that they come back in the order they had. */
        for (int k = 0; k < cJSON_GetArraySize(list);) {
            cJSON *item = cJSON_GetArrayItem(list, k);
            if (text_is(item, "branch_id", branch_id))
                cJSON_AddItemToArray(into, cJSON_DetachItemFromArray(list, k));
            else
                k++;
        }
    }
    cJSON_DetachItemViaPointer(nl_state_list(project, NL_BRANCHES), branch);
    nl_state_set(branch, NL_KEPT, kept);
    nl_state_set(branch, NL_RECOVERY, recovery);
    nl_state_set(branch, NL_STOPPING, cJSON_CreateTrue());
    cJSON_AddItemToArray(nl_state_kept_branches(project), branch);
    return branch;
}

cJSON *nl_state_bring_back_branch(cJSON *project, cJSON *kept)
{
    cJSON_DetachItemViaPointer(nl_state_kept_branches(project), kept);
    cJSON *held = cJSON_DetachItemFromObjectCaseSensitive(kept, NL_KEPT);
    for (size_t i = 0; i < sizeof kept_lists / sizeof *kept_lists; i++) {
        cJSON *from = cJSON_GetObjectItemCaseSensitive(held, kept_lists[i].kept_as);
        while (cJSON_GetArraySize(from) > 0)
            cJSON_AddItemToArray(nl_state_list(project, kept_lists[i].list), cJSON_DetachItemFromArray(from, 0));
    }
    cJSON_Delete(held);
    cJSON_DeleteItemFromObjectCaseSensitive(kept, NL_RECOVERY);
    cJSON_DeleteItemFromObjectCaseSensitive(kept, NL_STOPPING);
    cJSON_DeleteItemFromObjectCaseSensitive(kept, NL_PURGING);
    cJSON_AddItemToArray(nl_state_list(project, NL_BRANCHES), kept);
    return kept;
}

void nl_state_each_endpoint(cJSON *state, void (*visit)(cJSON *endpoint, void *context), void *context)
{
    cJSON *project;
    cJSON_ArrayForEach(project, nl_state_projects(state)) {
        cJSON *endpoint, *branch;
        cJSON_ArrayForEach(endpoint, nl_state_list(project, NL_ENDPOINTS))
            visit(endpoint, context);
        cJSON_ArrayForEach(branch, nl_state_list(project, NL_KEPT_BRANCHES)) {
            cJSON *kept = cJSON_GetObjectItemCaseSensitive(branch, NL_KEPT);
            cJSON_ArrayForEach(endpoint, cJSON_GetObjectItemCaseSensitive(kept, "endpoints"))
                visit(endpoint, context);
        }
    }
}
