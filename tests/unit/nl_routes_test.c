#include "test.h"

#include "buf.h"
#include "cursor.h"
#include "routes.h"

#include <stdlib.h>
#include <string.h>

/* A concrete path for a pattern: each {name} becomes "name-7". */
static char *sample_path(const char *pattern)
{
    buf b = BUF_INIT;
    for (const char *p = pattern; *p; p++) {
        if (*p == '{') {
            const char *end = strchr(p, '}');
            buf_printf(&b, "%.*s-7", (int)(end - p - 1), p + 1);
            p = end;
        } else {
            buf_printf(&b, "%c", *p);
        }
    }
    return buf_detach(&b);
}

static void every_route_matches_its_own_pattern_and_captures_its_ids(void)
{
    CHECK(nl_route_count >= 40);
    for (size_t i = 0; i < nl_route_count; i++) {
        char *path = sample_path(nl_routes[i].pattern);
        nl_route_match match;
        int rc = nl_route_find(&match, nl_routes[i].method, path);
        int same = rc == 0 && match.route == &nl_routes[i];
        if (!same)
            test_fail(__FILE__, __LINE__, "a route's own path finds it", path);
        free(path);
        if (!same)
            return;
        if (strstr(nl_routes[i].pattern, "{project_id}"))
            CHECK_STR(match.ids.project_id, "project_id-7");
        if (strstr(nl_routes[i].pattern, "{branch_id}"))
            CHECK_STR(match.ids.branch_id, "branch_id-7");
        if (strstr(nl_routes[i].pattern, "{role_name}"))
            CHECK_STR(match.ids.role_name, "role_name-7");
    }
}

static void a_branch_path_captures_the_project_and_branch(void)
{
    nl_route_match match;
    CHECK(nl_route_find(&match, "GET", "/projects/spring-sun-123456/branches/br-calm-sea-654321") == 0);
    CHECK_STR(match.route->pattern, "/projects/{project_id}/branches/{branch_id}");
    CHECK_STR(match.ids.project_id, "spring-sun-123456");
    CHECK_STR(match.ids.branch_id, "br-calm-sea-654321");
    CHECK(match.ids.endpoint_id == NULL);
    CHECK(match.ids.role_name == NULL);
}

static void the_deepest_route_captures_three_ids(void)
{
    nl_route_match match;
    CHECK(nl_route_find(&match, "POST", "/projects/p1/branches/b2/roles/alice/reset_password") == 0);
    CHECK_STR(match.route->pattern, "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reset_password");
    CHECK_STR(match.ids.project_id, "p1");
    CHECK_STR(match.ids.branch_id, "b2");
    CHECK_STR(match.ids.role_name, "alice");
    CHECK(nl_route_find(&match, "DELETE", "/projects/p1/branches/b2/databases/shop") == 0);
    CHECK_STR(match.ids.database_name, "shop");
    CHECK(nl_route_find(&match, "GET", "/projects/p1/operations/op-9") == 0);
    CHECK_STR(match.ids.operation_id, "op-9");
    CHECK(nl_route_find(&match, "POST", "/projects/p1/snapshots/snap-3/restore") == 0);
    CHECK_STR(match.ids.snapshot_id, "snap-3");
    CHECK(nl_route_find(&match, "POST", "/projects/p1/endpoints/ep-4/suspend") == 0);
    CHECK_STR(match.ids.endpoint_id, "ep-4");
    CHECK_STR(match.route->pattern, "/projects/{project_id}/endpoints/{endpoint_id}/suspend");
}

/* A literal segment wins over an id in the same place. */
static void literal_segments_come_before_ids(void)
{
    nl_route_match match;
    CHECK(nl_route_find(&match, "GET", "/projects/shared") == 0);
    CHECK_STR(match.route->pattern, "/projects/shared");
    CHECK(match.ids.project_id == NULL);
    CHECK(nl_route_find(&match, "GET", "/projects/p1/branches/count") == 0);
    CHECK_STR(match.route->pattern, "/projects/{project_id}/branches/count");
    /* Only GET has the literal: PATCH takes "shared" for a project id. */
    CHECK(nl_route_find(&match, "PATCH", "/projects/shared") == 0);
    CHECK_STR(match.ids.project_id, "shared");
}

static void repeated_and_trailing_slashes_count_as_one(void)
{
    nl_route_match match;
    CHECK(nl_route_find(&match, "GET", "//projects///p1/branches/") == 0);
    CHECK_STR(match.route->pattern, "/projects/{project_id}/branches");
    CHECK_STR(match.ids.project_id, "p1");
}

static void unknown_paths_match_nothing(void)
{
    nl_route_match match;
    CHECK(nl_route_find(&match, "GET", "/") != 0);
    CHECK(match.route == NULL);
    CHECK(nl_route_find(&match, "GET", "/users") != 0);
    CHECK(nl_route_find(&match, "GET", "/projects/p1/nothing") != 0);
    CHECK(nl_route_find(&match, "GET", "/projects/p1/branches/b2/roles/r/reveal_password/more") != 0);
    /* The ids sit where the pattern has them, not anywhere. */
    CHECK(nl_route_find(&match, "DELETE", "/projects/p1/other/b2/roles/r") != 0);
    CHECK(nl_route_find(&match, "GET", "/projects/p1/a/b/c/d/e/f/g") != 0);
}

static void an_id_longer_than_a_segment_matches_nothing(void)
{
    char path[300];
    memset(path, 'x', sizeof path);
    memcpy(path, "/projects/", 10);
    path[sizeof path - 1] = '\0';
    nl_route_match match;
    CHECK(nl_route_find(&match, "GET", path) != 0);
    path[10 + NL_ROUTE_SEGMENT_MAX - 1] = '\0'; /* 127 bytes: the longest id */
    CHECK(nl_route_find(&match, "GET", path) == 0);
    CHECK(strlen(match.ids.project_id) == NL_ROUTE_SEGMENT_MAX - 1);
}

static void a_method_the_path_does_not_take_matches_nothing(void)
{
    nl_route_match match;
    CHECK(nl_route_find(&match, "PUT", "/projects") != 0);
    CHECK(nl_route_find(&match, "DELETE", "/projects/p1/branches") != 0);
    CHECK(nl_route_find(&match, "GET", "/projects/p1/branches/b2/restore") != 0);
    CHECK(nl_route_find(&match, "PATCH", "/projects/p1/endpoints/ep-4/start") != 0);
    CHECK(nl_route_find(&match, "get", "/projects") != 0);
    CHECK(nl_route_find(&match, "PUT", "/projects/p1/branches/b2/backup_schedule") == 0);
    CHECK(nl_route_find(&match, "POST", "/projects/p1/branches/b2/backup_schedule") != 0);
}

/* ---- the listing cursor ---- */

/* Whether a cursor made of key and id decodes to them again. */
static int round_trips(const char *key, const char *id)
{
    char *cursor = nl_cursor_encode(key, id);
    char *got_key, *got_id;
    int rc = nl_cursor_decode(&got_key, &got_id, cursor);
    free(cursor);
    if (rc != 0)
        return 0;
    int same = !strcmp(got_key, key) && !strcmp(got_id, id);
    free(got_key);
    free(got_id);
    return same;
}

static void a_cursor_gives_back_its_key_and_id(void)
{
    CHECK(round_trips("2026-01-11T14:30:00Z", "br-calm-sea-123456"));
    CHECK(round_trips("main", "br-x"));
    CHECK(round_trips("", "br-x")); /* an empty key survives too */
}

static void a_cursor_is_opaque_hex(void)
{
    char *cursor = nl_cursor_encode("2026-01-11T14:30:00Z", "br-calm-sea-123456");
    int hex = strspn(cursor, "0123456789abcdef") == strlen(cursor);
    int unreadable = strstr(cursor, "br-") == NULL && strstr(cursor, "2026") == NULL;
    /* "2" is 0x32, "0" 0x30: the key's first bytes, hex-encoded. */
    int starts = !strncmp(cursor, "32303236", 8);
    free(cursor);
    CHECK(hex);
    CHECK(unreadable);
    CHECK(starts);
}

static void a_bad_cursor_is_refused(void)
{
    char *key = (char *)"unset", *id = (char *)"unset";
    CHECK(nl_cursor_decode(&key, &id, "abc") != 0);          /* odd length */
    CHECK(key == NULL && id == NULL);
    CHECK(nl_cursor_decode(&key, &id, "zz1f41") != 0);       /* not hex */
    CHECK(nl_cursor_decode(&key, &id, "6162") != 0);         /* "ab": no separator */
    CHECK(nl_cursor_decode(&key, &id, "61001f62") != 0);     /* a NUL byte inside */
    CHECK(nl_cursor_decode(&key, &id, " 11f62") != 0);       /* a space is no digit */
    CHECK(key == NULL && id == NULL);
}

TEST_SUITE(nl_routes)
{
    REGISTER(every_route_matches_its_own_pattern_and_captures_its_ids);
    REGISTER(a_branch_path_captures_the_project_and_branch);
    REGISTER(the_deepest_route_captures_three_ids);
    REGISTER(literal_segments_come_before_ids);
    REGISTER(repeated_and_trailing_slashes_count_as_one);
    REGISTER(unknown_paths_match_nothing);
    REGISTER(an_id_longer_than_a_segment_matches_nothing);
    REGISTER(a_method_the_path_does_not_take_matches_nothing);
    REGISTER(a_cursor_gives_back_its_key_and_id);
    REGISTER(a_cursor_is_opaque_hex);
    REGISTER(a_bad_cursor_is_refused);
}
