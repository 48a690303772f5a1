/* What the libFuzzer harnesses (tests/fuzz/) found, each input inline and
 * reduced, so the normal suite keeps it fixed. Two of them are undefined
 * behaviour that only the sanitizers see (make asan fails on them before
 * the fix); their tests check the observable result besides. */
#include "test.h"

#include "err.h"
#include "journal.h"
#include "params.h"
#include "redact.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

/* Whether the redacted form of text still holds needle. */
static int leaks(const char *text, const char *needle)
{
    char *out = redact_text(text);
    int found = strstr(out, needle) != NULL;
    free(out);
    return found;
}

/* libpq logs in with "ab<cdefgh" here; '<' ended the URI, so the password
 * was never found (fuzz-redact). */
static void a_uri_password_with_an_angle_bracket_is_hidden(void)
{
    CHECK(!leaks("postgresql://u:ab<cdefgh@h/db", "cdefgh"));
    CHECK(!leaks("connect to postgres://alice:pa>ss'word`99@db.example.com/shop now", "ss'word`99"));
    char *out = redact_text("postgresql://u:ab<cdefgh@h/db");
    CHECK_STR(out, "postgresql://u:<redacted>@h/db");
    free(out);
}

/* The fuzzer's input, reduced: the query's password began with '<'. */
static void a_query_password_with_an_angle_bracket_is_hidden(void)
{
    const char *text = "postgres://ues://u:p%41ss%2Fword@h/db?password=<<<<<<<<secret_`";
    CHECK(!leaks(text, "<<<<<<<<secret_`"));
    CHECK(!leaks("postgresql://h/db?user=u&password=ab<cd>efgh&sslmode=off", "cd>efgh"));
}

/* A whole text that is one connection string is read whole: libpq takes
 * a password with a space in a URI (fuzz-redact). */
static void a_whole_connection_string_is_read_whole(void)
{
    CHECK(!leaks("postgres://u:pa s password=@ther-:", "pa s password="));
    CHECK(!leaks("postgresql://alice:correct horse@db/shop", "correct horse"));
}

/* A URI still ends at a quote in text: the JSON around it is kept. */
static void a_uri_in_printed_json_still_ends_at_its_quote(void)
{
    char *out = redact_text("{\"uri\":\"postgresql://u:pw@h/db\",\"owner\":\"ops@example.com\"}");
    CHECK_STR(out, "{\"uri\":\"postgresql://u:<redacted>@h/db\",\"owner\":\"ops@example.com\"}");
    free(out);
}

/* 4.24e33 was cast to long long before its range was checked: undefined
 * (UBSan: "outside the range of representable values"). It stays the
 * number it was. */
static void a_huge_number_in_a_record_is_left_alone(void)
{
    redact_add_secret("424242");
    cJSON *record = cJSON_Parse("{\"kind\":\"step-done\",\"data\":{\"outputs\":{\"pi\":424242,"
                                "\"f\":4242888888888888888888888888888888.42,\"n\":-1e300}}}");
    redact_json(record);
    const cJSON *outputs = cJSON_GetObjectItem(cJSON_GetObjectItem(record, "data"), "outputs");
    const cJSON *f = cJSON_GetObjectItem(outputs, "f"), *n = cJSON_GetObjectItem(outputs, "n");
    int f_kept = cJSON_IsNumber(f) && f->valuedouble > 4.24e33 && f->valuedouble < 4.25e33;
    int n_kept = cJSON_IsNumber(n) && n->valuedouble == -1e300;
    int pi_hidden = cJSON_IsString(cJSON_GetObjectItem(outputs, "pi"));
    cJSON_Delete(record);
    redact_clear();
    CHECK(f_kept);
    CHECK(n_kept);
    CHECK(pi_hidden);
}

/* The same cast in params: a resumed run's secret number may be anything
 * its run.json holds. It is registered in its printed forms. */
static void a_huge_secret_number_is_registered_without_a_cast(void)
{
    param_spec spec = { .name = (char *)"pin", .type = PARAM_INT, .secret = 1 };
    cJSON *values = cJSON_Parse("{\"pin\":1e300}");
    params_register_secrets(&spec, 1, values);
    cJSON_Delete(values);
    int hidden = !leaks("the pin is 1e+300", "1e+300");
    redact_clear();
    CHECK(hidden);
}

/* A seq too big for a long was cast to one for the message (fuzz-journal,
 * engine/journal.c, UBSan). The line is refused all the same. */
static void a_journal_seq_beyond_a_long_is_refused(void)
{
    const char *text = "{\"seq\":1e300,\"kind\":\"run-started\"}\n";
    cJSON *events = NULL;
    long torn = -1;
    int rc = journal_parse(&events, &torn, "journal.jsonl", text, strlen(text));
    cJSON_Delete(events);
    CHECK(rc == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "journal.jsonl line 1");
}

TEST_SUITE(fuzz_regress)
{
    REGISTER(a_uri_password_with_an_angle_bracket_is_hidden);
    REGISTER(a_query_password_with_an_angle_bracket_is_hidden);
    REGISTER(a_whole_connection_string_is_read_whole);
    REGISTER(a_uri_in_printed_json_still_ends_at_its_quote);
    REGISTER(a_huge_number_in_a_record_is_left_alone);
    REGISTER(a_huge_secret_number_is_registered_without_a_cast);
    REGISTER(a_journal_seq_beyond_a_long_is_refused);
}
