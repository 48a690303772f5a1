#include "test.h"

#include "drill.h"
#include "pgmod.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

static drill_target classify(const char *method, const char *path, const char *body_text)
{
    cJSON *body = body_text ? cJSON_Parse(body_text) : NULL;
    drill_target t;
    drill_target_of(&t, method, path, body);
    cJSON_Delete(body);
    return t;
}

static void reads_and_creations_need_no_ownership(void)
{
    drill_target t = classify("GET", "/projects/p/branches/br-main", NULL);
    CHECK(t.kind == DRILL_KINDS);
    drill_target_dispose(&t);
    t = classify("POST", "/projects", "{\"project\":{}}");
    CHECK(t.creates_project);
    drill_target_dispose(&t);
    t = classify("POST", "/projects/p/branches", "{\"branch\":{\"parent_id\":\"br-main\"}}");
    CHECK(t.creates_branch && t.kind == DRILL_KINDS);
    drill_target_dispose(&t);
}

static void changes_name_what_they_touch(void)
{
    drill_target t = classify("DELETE", "/projects/p/branches/br-main", NULL);
    CHECK(t.kind == DRILL_BRANCH);
    CHECK_STR(t.id, "br-main");
    drill_target_dispose(&t);
    t = classify("POST", "/projects/p/branches/br-x/set_as_default", NULL);
    CHECK(t.kind == DRILL_BRANCH && t.set_default);
    drill_target_dispose(&t);
    t = classify("PATCH", "/projects/p", "{\"project\":{\"name\":\"n\"}}");
    CHECK(t.kind == DRILL_PROJECT);
    CHECK_STR(t.id, "p");
    drill_target_dispose(&t);
    t = classify("POST", "/projects/p/endpoints", "{\"endpoint\":{\"branch_id\":\"br-main\"}}");
    CHECK(t.kind == DRILL_BRANCH);
    CHECK_STR(t.id, "br-main");
    drill_target_dispose(&t);
    t = classify("POST", "/projects/p/endpoints/ep-1/start", NULL);
    CHECK(t.kind == DRILL_ENDPOINT);
    CHECK_STR(t.id, "ep-1");
    drill_target_dispose(&t);
    t = classify("PUT", "/projects/p/branches/br-main/backup_schedule", "{}");
    CHECK(t.kind == DRILL_BRANCH);
    drill_target_dispose(&t);
}

/* A snapshot restored without a target but finalized lands on its source. */
static void snapshot_restores_are_changes_of_their_target(void)
{
    drill_target t = classify("POST", "/projects/p/snapshots/s1/restore", "{\"name\":\"x\"}");
    CHECK(t.kind == DRILL_KINDS);
    drill_target_dispose(&t);
    t = classify("POST", "/projects/p/snapshots/s1/restore", "{\"target_branch_id\":\"br-main\"}");
    CHECK(t.kind == DRILL_BRANCH);
    CHECK_STR(t.id, "br-main");
    drill_target_dispose(&t);
    t = classify("POST", "/projects/p/snapshots/s1/restore", "{\"finalize_restore\":true}");
    CHECK(t.kind == DRILL_SNAPSHOT);
    CHECK_STR(t.id, "s1");
    drill_target_dispose(&t);
}

static void the_scope_knows_what_it_learned_and_claims_by_name_and_time(void)
{
    drill_scope *s = drill_scope_new("20261201T100000Z-drill-x-ab12", 1796119200.0);
    cJSON *answer = cJSON_Parse("{\"branch\":{\"id\":\"br-new\"},\"endpoints\":[{\"id\":\"ep-new\"}],"
                                "\"connection_uris\":[{\"connection_uri\":\"postgresql://u:p@127.0.0.1:5544/db\"}]}");
    cJSON *learned = cJSON_CreateArray();
    drill_scope_learn(s, answer, learned);
    CHECK(drill_scope_has(s, DRILL_BRANCH, "br-new"));
    CHECK(drill_scope_has(s, DRILL_ENDPOINT, "ep-new"));
    CHECK(drill_scope_has(s, DRILL_HOST, "127.0.0.1:5544"));
    CHECK(!drill_scope_has(s, DRILL_BRANCH, "br-main"));
    CHECK(cJSON_GetArraySize(learned) == 3);
    cJSON *mine = cJSON_Parse("{\"name\":\"check-20261201t100000z-drill-x-ab12\",\"created_at\":\"2026-12-01T10:00:05Z\"}");
    cJSON *old = cJSON_Parse("{\"name\":\"check-20261201t100000z-drill-x-ab12\",\"created_at\":\"2026-11-01T10:00:05Z\"}");
    cJSON *other = cJSON_Parse("{\"name\":\"main\",\"created_at\":\"2026-12-01T10:00:05Z\"}");
    CHECK(drill_scope_claims(s, mine));
    CHECK(!drill_scope_claims(s, old));
    CHECK(!drill_scope_claims(s, other));
    CHECK(drill_scope_owns_path(s, ".drctl/drill/20261201t100000z-drill-x-ab12/x.dump"));
    CHECK(!drill_scope_owns_path(s, ".drctl/drill/20261201t100000z-drill-x-ab12/../../backups/x.dump"));
    CHECK(!drill_scope_owns_path(s, "/backups/x.dump"));
    /* a refusal repeated counts again: each fails its own step */
    drill_scope_refuse(s, "the same");
    drill_scope_refuse(s, "the same");
    CHECK(drill_scope_refusal_count(s) == 2);
    cJSON_Delete(mine);
    cJSON_Delete(old);
    cJSON_Delete(other);
    cJSON_Delete(learned);
    cJSON_Delete(answer);
    drill_scope_free(s);
}

static void the_drills_default_is_shown_in_branch_answers(void)
{
    drill_scope *s = drill_scope_new("r", 0);
    cJSON *answer = cJSON_Parse("{\"branches\":[{\"id\":\"br-main\",\"default\":true},{\"id\":\"br-p\",\"default\":false}]}");
    drill_scope_rewrite_default(s, answer);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(answer, "branches"), 0), "default")));
    drill_scope_set_default(s, "br-p");
    drill_scope_rewrite_default(s, answer);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(answer, "branches"), 0), "default")));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(answer, "branches"), 1), "default")));
    cJSON_Delete(answer);
    drill_scope_free(s);
}

static void a_new_branch_gets_the_ttl_unless_it_has_one(void)
{
    drill_scope *s = drill_scope_new("r", 0);
    drill_scope_set_expiry(s, "2026-12-02T10:00:00Z");
    cJSON *body = cJSON_Parse("{\"branch\":{\"name\":\"a\"}}");
    drill_scope_stamp_expiry(s, body);
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(body, "branch"), "expires_at")->valuestring, "2026-12-02T10:00:00Z");
    cJSON_Delete(body);
    body = cJSON_Parse("{\"branch\":{\"expires_at\":\"2026-12-01T12:00:00Z\"}}");
    drill_scope_stamp_expiry(s, body);
    CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(body, "branch"), "expires_at")->valuestring, "2026-12-01T12:00:00Z");
    cJSON_Delete(body);
    drill_scope_free(s);
}

/* Read-only sessions (a drill's guard on servers it did not make, and
 * plans) send only statements whose first word is a read. */
static void read_only_sessions_send_only_reads(void)
{
    CHECK(pgmod_statement_reads_only("SELECT 1"));
    CHECK(pgmod_statement_reads_only("  (select 1) union (select 2)"));
    CHECK(pgmod_statement_reads_only("WITH v AS (SELECT 1) SELECT * FROM v"));
    CHECK(pgmod_statement_reads_only("show TimeZone"));
    CHECK(pgmod_statement_reads_only("TABLE booking"));
    CHECK(pgmod_statement_reads_only("VALUES (1)"));
    CHECK(pgmod_statement_reads_only("explain select 1"));
    CHECK(pgmod_statement_reads_only("-- counted\n/* a /* nested */ comment */\tSELECT 1"));
    CHECK(!pgmod_statement_reads_only("SET default_transaction_read_only = off"));
    CHECK(!pgmod_statement_reads_only("START TRANSACTION READ WRITE"));
    CHECK(!pgmod_statement_reads_only("COMMIT; BEGIN READ WRITE; CREATE TABLE t ()"));
    CHECK(!pgmod_statement_reads_only("DO $$BEGIN NULL; END$$"));
    CHECK(!pgmod_statement_reads_only("CALL p()"));
    CHECK(!pgmod_statement_reads_only("COPY t FROM STDIN"));
    CHECK(!pgmod_statement_reads_only("copy (select 1) to program 'id'"));
    CHECK(!pgmod_statement_reads_only("SAVEPOINT a"));
    CHECK(!pgmod_statement_reads_only("PREPARE TRANSACTION 'x'"));
    CHECK(!pgmod_statement_reads_only("selectx 1"));
    CHECK(!pgmod_statement_reads_only("select_all()"));
    CHECK(!pgmod_statement_reads_only("/* never ends SELECT 1"));
    CHECK(!pgmod_statement_reads_only("/* a */ DELETE FROM t -- SELECT"));
    CHECK(!pgmod_statement_reads_only(""));
}

TEST_SUITE(drill)
{
    REGISTER(reads_and_creations_need_no_ownership);
    REGISTER(changes_name_what_they_touch);
    REGISTER(snapshot_restores_are_changes_of_their_target);
    REGISTER(the_scope_knows_what_it_learned_and_claims_by_name_and_time);
    REGISTER(the_drills_default_is_shown_in_branch_answers);
    REGISTER(a_new_branch_gets_the_ttl_unless_it_has_one);
    REGISTER(read_only_sessions_send_only_reads);
}
