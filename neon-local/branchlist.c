/* Listing and counting branches (GET .../branches, .../branches/count):
 * search, sort and keyset pagination, as Neon's API v2 does them. The
 * handlers branches.h declares for them. */
#include "branches.h"

#include "buf.h"
#include "cursor.h"
#include "jsonfield.h"
#include "recovery.h"
#include "state.h"

#include <stdlib.h>
#include <string.h>

/* Listings give at most this many branches a page, and that many by default. */
#define MAX_PAGE 10000

typedef struct branch_order {
    const char *sort_by;   /* name, created_at, updated_at */
    int descending;
} branch_order;

/* By the sort key, then by id, so that the order is total and a cursor
 * names one place in it. */
static int compare_keys(const branch_order *order, const char *key_a, const char *id_a, const char *key_b,
                        const char *id_b)
{
    int c = strcmp(key_a, key_b);
    if (c == 0)
        c = strcmp(id_a, id_b);
    return order->descending ? -c : c;
}

static int compare_branches(const void *x, const void *y, void *arg)
{
    const branch_order *order = arg;
    const cJSON *a = *(const cJSON *const *)x, *b = *(const cJSON *const *)y;
    return compare_keys(order, json_text(a, order->sort_by, ""), json_text(a, "id", ""),
                        json_text(b, order->sort_by, ""), json_text(b, "id", ""));
}

static int matches_search(const cJSON *branch, const char *search)
{
    return !search || !*search || strcasestr(json_text(branch, "name", ""), search) ||
           strcasestr(json_text(branch, "id", ""), search);
}

/* sort_by and sort_order: updated_at, descending, unless asked otherwise. */
static int read_order(branch_order *order, nl_response *error, const cJSON *query)
{
    const char *sort_by = json_text(query, "sort_by", "updated_at"), *sort_order = json_text(query, "sort_order", NULL);
    if (strcmp(sort_by, "name") && strcmp(sort_by, "created_at") && strcmp(sort_by, "updated_at")) {
        *error = nl_error(400, "", "sort_by must be name, created_at or updated_at");
        return -1;
    }
    if (sort_order && strcmp(sort_order, "asc") && strcmp(sort_order, "desc")) {
        *error = nl_error(400, "", "sort_order must be asc or desc");
        return -1;
    }
    order->sort_by = sort_by;
    order->descending = !sort_order || !strcmp(sort_order, "desc");
    return 0;
}

/* include_deleted=true|false (false when absent); -1 with *error set when
 * it is neither. */
static int wants_deleted(int *with_deleted, nl_response *error, const cJSON *query)
{
    const char *text = json_text(query, "include_deleted", "false");
    *with_deleted = !strcmp(text, "true");
    if (*with_deleted || !strcmp(text, "false"))
        return 0;
    *error = nl_error(400, "", "include_deleted %s: give true (deleted branches still recoverable listed too, with "
                      "their recovery) or false", text);
    return -1;
}

/* The branches a list or a count request selects (deleted ones too with
 * include_deleted=true), sorted (caller frees the
 * array, not the items); NULL with *error set when a parameter is bad. */
static cJSON **select_branches(size_t *count, branch_order *order, nl_response *error, nl_api *api,
                               const nl_request *req, const nl_path_ids *ids)
{
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    if (!project) {
        *error = nl_api_no_project(ids->project_id);
        return NULL;
    }
    if (read_order(order, error, req->query) != 0)
        return NULL;
    int with_deleted;
    if (wants_deleted(&with_deleted, error, req->query) != 0)
        return NULL;
    cJSON *all = nl_state_list(project, NL_BRANCHES), *kept = nl_state_list(project, NL_KEPT_BRANCHES);
    size_t room = (size_t)cJSON_GetArraySize(all) + (with_deleted ? (size_t)cJSON_GetArraySize(kept) : 0);
    cJSON **list = xcalloc(room + 1, sizeof *list);
    size_t n = 0;
    const char *search = json_text(req->query, "search", NULL);
    cJSON *branch;
    cJSON_ArrayForEach(branch, all)
        if (!nl_branch_is_snapshot(branch) && matches_search(branch, search) && !nl_state_is(branch, NL_BRANCH_DELETING))
            list[n++] = branch;
    /* Those whose period is over are being removed: no longer recoverable. */
    if (with_deleted)
        cJSON_ArrayForEach(branch, kept)
            if (!nl_state_flag(branch, NL_PURGING) && matches_search(branch, search))
                list[n++] = branch;
    qsort_r(list, n, sizeof *list, compare_branches, order);
    *count = n;
    return list;
}

/* Where the page after cursor starts: past everything up to and including
 * the cursor's item, by key. -1 when the cursor is not one this server gave. */
static int page_start(size_t *start, cJSON **list, size_t n, const branch_order *order, const char *cursor)
{
    char *key, *id;
    *start = 0;
    if (!cursor || !*cursor)
        return 0;
    if (nl_cursor_decode(&key, &id, cursor) != 0)
        return -1;
    while (*start < n && compare_keys(order, json_text(list[*start], order->sort_by, ""),
                                      json_text(list[*start], "id", ""), key, id) <= 0)
        (*start)++;
    free(key);
    free(id);
    return 0;
}

/* {branches: the page, annotations, pagination: {next?, sort_by, sort_order}}. */
static cJSON *page_body(cJSON **list, size_t n, size_t start, size_t end, const branch_order *order)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *branches = cJSON_AddArrayToObject(body, "branches");
    for (size_t i = start; i < end; i++)
        cJSON_AddItemToArray(branches, nl_branch_is_deleted(list[i]) ? nl_recovery_shown_branch(list[i])
                                                                      : nl_state_public_copy(list[i]));
    cJSON_AddObjectToObject(body, "annotations");
    cJSON *pagination = cJSON_AddObjectToObject(body, "pagination");
    if (end < n && end > start) {
        char *next = nl_cursor_encode(json_text(list[end - 1], order->sort_by, ""), json_text(list[end - 1], "id", ""));
        cJSON_AddStringToObject(pagination, "next", next);
        free(next);
    }
    cJSON_AddStringToObject(pagination, "sort_by", order->sort_by);
    cJSON_AddStringToObject(pagination, "sort_order", order->descending ? "DESC" : "ASC");
    return body;
}

nl_response nl_branches_list(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    branch_order order;
    size_t n, start;
    nl_response error;
    cJSON **list = select_branches(&n, &order, &error, api, req, ids);
    if (!list)
        return error;
    const char *limit_text = json_text(req->query, "limit", NULL);
    long limit = limit_text ? strtol(limit_text, NULL, 10) : MAX_PAGE;
    nl_response answer;
    if (limit < 1 || limit > MAX_PAGE)
        answer = nl_error(400, "", "limit must be from 1 to 10000");
    else if (page_start(&start, list, n, &order, json_text(req->query, "cursor", NULL)) != 0)
        answer = nl_error(400, "", "the cursor is not one this server gave");
    else
        answer = nl_json(200, page_body(list, n, start, start + (size_t)limit < n ? start + (size_t)limit : n, &order));
    free(list);
    return answer;
}

nl_response nl_branches_count(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    branch_order order;
    size_t n;
    nl_response error;
    cJSON **list = select_branches(&n, &order, &error, api, req, ids);
    if (!list)
        return error;
    free(list);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddNumberToObject(body, "count", (double)n);
    return nl_json(200, body);
}
