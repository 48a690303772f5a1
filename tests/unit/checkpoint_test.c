#include "test.h"

#include "buf.h"
#include "checkpoint.h"
#include "err.h"
#include "fsio.h"
#include "journal.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static cJSON *events_of(const char *json)
{
    return cJSON_Parse(json);
}

#define START "{\"seq\":1,\"time\":\"t1\",\"kind\":\"run-started\",\"step\":null,\"data\":{\"steps\":[\"a\",\"b\"]}}"

static void replay_gives_each_steps_state_and_outputs(void)
{
    cJSON *events = events_of("[" START ","
        "{\"seq\":2,\"time\":\"t2\",\"kind\":\"step-started\",\"step\":\"a\",\"data\":{\"attempt\":1}},"
        "{\"seq\":3,\"time\":\"t3\",\"kind\":\"log\",\"step\":\"a\",\"data\":{\"message\":\"x\"}},"
        "{\"seq\":4,\"time\":\"t4\",\"kind\":\"step-done\",\"step\":\"a\",\"data\":{\"outputs\":{\"id\":7}}},"
        "{\"seq\":5,\"time\":\"t5\",\"kind\":\"step-started\",\"step\":\"b\",\"data\":{\"attempt\":1}}]");
    checkpoint *cp = NULL;
    CHECK(checkpoint_replay(&cp, "r1", events) == 0);
    CHECK(cp->steps[0].state == STEP_DONE);
    CHECK(cJSON_GetObjectItem(cp->steps[0].outputs, "id")->valueint == 7);
    CHECK(cp->steps[1].state == STEP_STARTED && cp->steps[1].attempts == 1);
    CHECK(cp->status == RUN_RUNNING && cp->seq == 5);
    checkpoint_free(cp);
    cJSON_Delete(events);
}

static void run_events_set_the_status(void)
{
    cJSON *events = events_of("[" START ","
        "{\"seq\":2,\"time\":\"t2\",\"kind\":\"run-paused\",\"step\":null,\"data\":{\"reason\":\"refused\"}}]");
    checkpoint *cp = NULL;
    CHECK(checkpoint_replay(&cp, "r1", events) == 0);
    CHECK(cp->status == RUN_PAUSED);
    CHECK_STR(cp->status_detail, "refused");
    checkpoint_free(cp);
    cJSON_Delete(events);
}

static void an_event_for_an_unknown_step_is_corruption(void)
{
    cJSON *events = events_of("[" START ","
        "{\"seq\":2,\"time\":\"t2\",\"kind\":\"step-done\",\"step\":\"zzz\",\"data\":{}}]");
    checkpoint *cp = NULL;
    CHECK(checkpoint_replay(&cp, "r1", events) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "names step 'zzz'");
    cJSON_Delete(events);
}

static void a_journal_must_begin_with_run_started(void)
{
    cJSON *events = events_of("[{\"seq\":1,\"time\":\"t\",\"kind\":\"log\",\"step\":null,\"data\":{}}]");
    checkpoint *cp = NULL;
    CHECK(checkpoint_replay(&cp, "r1", events) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "does not begin with run-started");
    cJSON_Delete(events);
}

static void journal_appends_are_gapless_and_read_back(void)
{
    journal *j;
    CHECK(journal_create(&j, test_tmpdir()) == 0);
    CHECK(journal_append(j, "run-started", NULL, NULL) == 0);
    CHECK(journal_append(j, "log", "a", NULL) == 0);
    journal_free(j);
    char *path = xasprintf("%s/journal.jsonl", test_tmpdir());
    cJSON *events = NULL;
    CHECK(journal_read(&events, NULL, path) == 0);
    CHECK(cJSON_GetArraySize(events) == 2);
    CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(events, 1), "seq")->valueint == 2);
    cJSON_Delete(events);
    free(path);
}

static void a_torn_last_line_is_cut_off_on_open(void)
{
    const char *path = test_write_file("journal.jsonl",
        "{\"seq\":1,\"time\":\"t\",\"kind\":\"run-started\",\"step\":null,\"data\":{}}\n{\"seq\":2,\"ti");
    journal *j;
    cJSON *events = NULL;
    long repaired = 0;
    CHECK(journal_open(&j, &events, &repaired, test_tmpdir()) == 0);
    CHECK(repaired == 12);
    CHECK(cJSON_GetArraySize(events) == 1);
    CHECK(journal_append(j, "log", NULL, NULL) == 0);
    journal_free(j);
    cJSON_Delete(events);
    CHECK(journal_read(&events, NULL, path) == 0);
    CHECK(cJSON_GetArraySize(events) == 2);
    cJSON_Delete(events);
}

static void a_gap_in_seq_is_reported_with_its_line(void)
{
    const char *path = test_write_file("journal.jsonl",
        "{\"seq\":1,\"kind\":\"run-started\"}\n{\"seq\":3,\"kind\":\"log\"}\n");
    cJSON *events = NULL;
    CHECK(journal_read(&events, NULL, path) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "line 2 has seq 3 where 2 was expected");
}

static void a_garbage_line_is_reported_and_nothing_changes(void)
{
    const char *path = test_write_file("journal.jsonl", "{\"seq\":1,\"kind\":\"run-started\"}\nnot json\n{\"seq\":3}\n");
    char *before;
    fsio_read_file(&before, NULL, path);
    journal *j;
    cJSON *events = NULL;
    long repaired;
    CHECK(journal_open(&j, &events, &repaired, test_tmpdir()) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "line 2 is not a journal event");
    char *after;
    fsio_read_file(&after, NULL, path);
    CHECK_STR(after, before);
    free(before);
    free(after);
}

static void state_json_is_the_replay(void)
{
    cJSON *events = events_of("[" START ","
        "{\"seq\":2,\"time\":\"t2\",\"kind\":\"step-failed\",\"step\":\"a\",\"data\":{\"error\":\"boom\"}}]");
    checkpoint *cp = NULL;
    CHECK(checkpoint_replay(&cp, "r1", events) == 0);
    char *path = xasprintf("%s/state.json", test_tmpdir());
    CHECK(checkpoint_write(cp, path) == 0);
    char *text;
    CHECK(fsio_read_file(&text, NULL, path) == 0);
    cJSON *state = cJSON_Parse(text);
    cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItem(state, "steps"), 0);
    CHECK_STR(cJSON_GetObjectItem(a, "state")->valuestring, "failed");
    CHECK_STR(cJSON_GetObjectItem(a, "error")->valuestring, "boom");
    cJSON_Delete(state);
    free(text);
    free(path);
    checkpoint_free(cp);
    cJSON_Delete(events);
}

static void a_changed_step_list_keeps_the_records_of_kept_steps(void)
{
    cJSON *events = events_of("[" START ","
        "{\"seq\":2,\"time\":\"t2\",\"kind\":\"step-done\",\"step\":\"a\",\"data\":{\"outputs\":1}},"
        "{\"seq\":3,\"time\":\"t3\",\"kind\":\"step-failed\",\"step\":\"b\",\"data\":{\"error\":\"x\"}},"
        "{\"seq\":4,\"time\":\"t4\",\"kind\":\"runbook-changed\",\"step\":null,\"data\":{\"steps\":[\"a\",\"new\",\"b\"]}}]");
    checkpoint *cp = NULL;
    CHECK(checkpoint_replay(&cp, "r1", events) == 0);
    CHECK(cp->step_count == 3);
    CHECK_STR(cp->steps[0].name, "a");
    CHECK(cp->steps[0].state == STEP_DONE);
    CHECK(cp->steps[1].state == STEP_PENDING);
    CHECK_STR(cp->steps[2].name, "b");
    CHECK(cp->steps[2].state == STEP_FAILED);
    checkpoint_free(cp);
    cJSON_Delete(events);
}

static void only_state_changes_are_transitions(void)
{
    const char *yes[] = { "step-started", "step-done", "run-done", "confirmation-asked", "lock-takeover",
                          "runbook-changed", "abort-requested", "journal-repaired" };
    const char *no[] = { "log", "exec", "figure", "neon", "neon-wait", "pg-query", "pg-copy", "dump", "s3-upload" };
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        CHECK(journal_is_transition(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        CHECK(!journal_is_transition(no[i]));
}

static cJSON *exact_outputs(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "max_safe", 9007199254740991.0);
    cJSON_AddNumberToObject(o, "two53", 9007199254740992.0);
    cJSON_AddNumberToObject(o, "sum", 0.1 + 0.2);
    cJSON_AddNumberToObject(o, "huge", 1e300);
    cJSON_AddNumberToObject(o, "neg_zero", -0.0);
    cJSON_AddNumberToObject(o, "decimal", 123.456);
    return o;
}

/* Same double, bit for bit (-0.0 is not 0.0 here). */
static int same_numbers(const cJSON *a, const cJSON *b)
{
    const cJSON *x;
    int n = 0;
    cJSON_ArrayForEach(x, a) {
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
        if (!cJSON_IsNumber(y) || memcmp(&x->valuedouble, &y->valuedouble, sizeof(double)) != 0)
            return 0;
        n++;
    }
    return n == cJSON_GetArraySize(b);
}

/* A resume reads outputs back from the journal's text: the numbers must be
 * the same doubles, and state.json must carry them exactly too. */
static void numbers_survive_the_journal_and_state_json_exactly(void)
{
    journal *j;
    CHECK(journal_create(&j, test_tmpdir()) == 0);
    CHECK(journal_append(j, "run-started", NULL, cJSON_Parse("{\"steps\":[\"a\"]}")) == 0);
    cJSON *data = cJSON_CreateObject();
    cJSON_AddItemToObject(data, "outputs", exact_outputs());
    CHECK(journal_append(j, "step-done", "a", data) == 0);
    journal_free(j);
    char *path = xasprintf("%s/journal.jsonl", test_tmpdir());
    char *text;
    CHECK(fsio_read_file(&text, NULL, path) == 0);
    CHECK_CONTAINS(text, "\"outputs\":{\"max_safe\":9007199254740991,\"two53\":9007199254740992,"
                         "\"sum\":0.30000000000000004,\"huge\":1e+300,\"neg_zero\":-0,\"decimal\":123.456}");
    free(text);
    cJSON *events = NULL;
    CHECK(journal_read(&events, NULL, path) == 0);
    checkpoint *cp = NULL;
    CHECK(checkpoint_replay(&cp, "r1", events) == 0);
    cJSON *want = exact_outputs();
    CHECK(same_numbers(want, cp->steps[0].outputs));
    char *state_path = xasprintf("%s/state.json", test_tmpdir());
    CHECK(checkpoint_write(cp, state_path) == 0);
    CHECK(fsio_read_file(&text, NULL, state_path) == 0);
    CHECK_CONTAINS(text, "\"max_safe\":\t9007199254740991,");
    CHECK_CONTAINS(text, "\"sum\":\t0.30000000000000004,");
    cJSON *state = cJSON_Parse(text);
    const cJSON *saved = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(state, "steps"), 0), "outputs");
    CHECK(same_numbers(want, saved));
    cJSON_Delete(state);
    cJSON_Delete(want);
    free(text);
    free(state_path);
    checkpoint_free(cp);
    cJSON_Delete(events);
    free(path);
}

TEST_SUITE(checkpoint)
{
    REGISTER(only_state_changes_are_transitions);
    REGISTER(a_changed_step_list_keeps_the_records_of_kept_steps);
    REGISTER(replay_gives_each_steps_state_and_outputs);
    REGISTER(run_events_set_the_status);
    REGISTER(an_event_for_an_unknown_step_is_corruption);
    REGISTER(a_journal_must_begin_with_run_started);
    REGISTER(journal_appends_are_gapless_and_read_back);
    REGISTER(a_torn_last_line_is_cut_off_on_open);
    REGISTER(a_gap_in_seq_is_reported_with_its_line);
    REGISTER(a_garbage_line_is_reported_and_nothing_changes);
    REGISTER(state_json_is_the_replay);
    REGISTER(numbers_survive_the_journal_and_state_json_exactly);
}
