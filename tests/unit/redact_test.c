#include "test.h"

#include "buf.h"
#include "redact.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The redacted text of `in` compared with `expected` (in a test function). */
#define CHECK_REDACTS(in, expected)            \
    do {                                       \
        char *out_ = redact_text(in);          \
        int same_ = strcmp(out_, expected) == 0; \
        if (!same_)                            \
            test_fail(__FILE__, __LINE__, in " -> " expected, out_); \
        free(out_);                            \
        if (!same_)                            \
            return;                            \
    } while (0)

/* What is written on stderr between the two calls. */
static int saved_stderr = -1;

static void capture_stderr(void)
{
    fflush(stderr);
    saved_stderr = dup(2);
    int fd = open(test_write_file("stderr.txt", ""), O_WRONLY | O_TRUNC);
    dup2(fd, 2);
    close(fd);
}

static char *captured_stderr(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    char path[4096];
    snprintf(path, sizeof path, "%s/stderr.txt", test_tmpdir());
    FILE *f = fopen(path, "r");
    buf text = BUF_INIT;
    int c;
    while (f && (c = fgetc(f)) != EOF)
        buf_putc(&text, (char)c);
    if (f)
        fclose(f);
    return buf_detach(&text);
}

static void registered_secrets_are_replaced(void)
{
    redact_add_secret("s3cr3t-token");
    CHECK_REDACTS("key=s3cr3t-token and again s3cr3t-token", "key=<redacted> and again <redacted>");
}

static void overlapping_occurrences_are_all_hidden(void)
{
    redact_add_secret("ababab");
    CHECK_REDACTS("xabababab!", "x<redacted>!");
}

static void a_secret_is_hidden_in_printed_json_too(void)
{
    redact_add_secret("pa\"ss\\word");
    CHECK_REDACTS("{\"token\":\"pa\\\"ss\\\\word\"}", "{\"token\":\"<redacted>\"}");
}

static void uri_passwords_are_replaced_without_registration(void)
{
    CHECK_REDACTS("connect postgresql://neondb_owner:npg_AbC123@ep-x.neon.tech/neondb?sslmode=require",
                  "connect postgresql://neondb_owner:<redacted>@ep-x.neon.tech/neondb?sslmode=require");
    CHECK_REDACTS("postgres://u:p%40ss@127.0.0.1:5432/db", "postgres://u:<redacted>@127.0.0.1:5432/db");
}

static void every_uri_form_libpq_reads_is_covered(void)
{
    CHECK_REDACTS("postgresql://:pw@host/db", "postgresql://:<redacted>@host/db");
    CHECK_REDACTS("failed: postgres://u:p@h1,h2/db: timeout", "failed: postgres://u:<redacted>@h1,h2/db: timeout");
    CHECK_REDACTS("postgres://u:pw@h1:5432,h2:5433/db", "postgres://u:<redacted>@h1:5432,h2:5433/db");
    CHECK_REDACTS("postgresql://h/db?user=u&password=sec%20ret&sslmode=off",
                  "postgresql://h/db?user=u&password=<redacted>&sslmode=off");
    CHECK_REDACTS("postgresql://[::1]:5432/db?sslpassword=key-pass", "postgresql://[::1]:5432/db?sslpassword=<redacted>");
    CHECK_REDACTS("(postgresql://u:pw@h/db)", "(postgresql://u:<redacted>@h/db)");
    CHECK_REDACTS("\"postgresql://u:pw@h/db\"", "\"postgresql://u:<redacted>@h/db\"");
    CHECK_REDACTS("postgresql://u:pw@", "postgresql://u:<redacted>@");
}

static void a_password_libpq_misreads_is_still_hidden_whole(void)
{
    /* libpq would take "p" as the password and "ss@h" as the host. */
    CHECK_REDACTS("postgresql://u:p@ss@h/db", "postgresql://u:<redacted>@h/db");
    /* libpq would take "pa" as a port; the '/' was meant as part of the password. */
    CHECK_REDACTS("postgresql://u:pa/ss@h/db", "postgresql://u:<redacted>@h/db");
    /* libpq refuses the encoding: the patterns still hide it. */
    CHECK_REDACTS("postgresql://u:%zz-secret@h/db", "postgresql://u:<redacted>@h/db");
}

static void a_connection_password_is_hidden_wherever_it_appears_in_the_text(void)
{
    CHECK_REDACTS("tried hunter22 on postgresql://u:hunter22@h/db", "tried <redacted> on postgresql://u:<redacted>@h/db");
    CHECK_REDACTS("as p@ssword1: postgres://u:p%40ssword1@h/db", "as <redacted>: postgres://u:<redacted>@h/db");
    CHECK_REDACTS("host=h password='two words' then two words", "host=h password='<redacted>' then <redacted>");
}

static void keyword_passwords_are_replaced(void)
{
    CHECK_REDACTS("host=x password=hunter2 dbname=y", "host=x password=<redacted> dbname=y");
}

static void every_keyword_form_libpq_reads_is_covered(void)
{
    CHECK_REDACTS("host=x password = hunter2 dbname=y", "host=x password = <redacted> dbname=y");
    CHECK_REDACTS("host=x password='a b' dbname=y", "host=x password='<redacted>' dbname=y");
    CHECK_REDACTS("password = 'it\\'s' port=5432", "password = '<redacted>' port=5432");
    CHECK_REDACTS("password=a\\ b host=x", "password=<redacted> host=x");
    CHECK_REDACTS("sslpassword=k3y user=u", "sslpassword=<redacted> user=u");
    CHECK_REDACTS("PASSWORD=Upper host=x", "PASSWORD=<redacted> host=x");
    CHECK_REDACTS("dbname='host=h password=x' user=u", "dbname='host=h password=<redacted> user=u");
    CHECK_REDACTS("{\"dsn\":\"host=h password=k dbname=d\"}", "{\"dsn\":\"host=h password=<redacted> dbname=d\"}");
    CHECK_REDACTS("{\"dsn\":\"password=k\"}", "{\"dsn\":\"password=<redacted>\"}");
    CHECK_REDACTS("https://x.example/login?user=u&password=pw&next=/", "https://x.example/login?user=u&password=<redacted>&next=/");
}

static void an_unterminated_quoted_password_is_hidden_to_the_end_of_the_line(void)
{
    CHECK_REDACTS("password='never closed here\nnext line", "password='<redacted>\nnext line");
}

static void text_without_secrets_is_unchanged(void)
{
    CHECK_REDACTS("time 14:30:00, http://example.com:8080/x, user@host",
                  "time 14:30:00, http://example.com:8080/x, user@host");
    CHECK_REDACTS("password authentication failed for user \"u\"", "password authentication failed for user \"u\"");
    CHECK_REDACTS("postgresql://h:5432/db?application_name=me@x", "postgresql://h:5432/db?application_name=me@x");
    CHECK_REDACTS("mypassword=not-a-keyword", "mypassword=not-a-keyword");
}

static void values_too_short_are_not_registered_and_warned_once_by_name(void)
{
    capture_stderr();
    redact_add_named_secret("secret param 'pin'", "done");
    redact_add_named_secret("secret param 'pin'", "done");
    redact_add_named_secret("PGPASSWORD", "test");
    char *err = captured_stderr();
    char *out = redact_text("step-done test-x");
    CHECK_STR(out, "step-done test-x");
    free(out);
    CHECK_CONTAINS(err, "secret param 'pin' is too short to be redacted safely");
    CHECK_CONTAINS(err, "PGPASSWORD is too short");
    CHECK_CONTAINS(err, "at least 6 characters");
    CHECK(strstr(err, "done") == NULL && strstr(err, "test") == NULL);
    CHECK(strstr(strstr(err, "param 'pin'") + 1, "param 'pin'") == NULL); /* once */
    free(err);
}

static void the_aws_access_key_id_is_a_secret(void)
{
    setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE0123456", 1);
    redact_add_environment_secrets();
    unsetenv("AWS_ACCESS_KEY_ID");
    CHECK_REDACTS("key AKIAEXAMPLE0123456 used", "key <redacted> used");
}

static void json_strings_are_redacted_but_structure_kept(void)
{
    redact_add_secret("\"quoted\"");
    cJSON *v = cJSON_Parse("{\"a\":\"x \\\"quoted\\\" y\",\"b\":[\"\\\"quoted\\\"\"],\"c\":3}");
    redact_json(v);
    char *text = cJSON_PrintUnformatted(v);
    CHECK_STR(text, "{\"a\":\"x <redacted> y\",\"b\":[\"<redacted>\"],\"c\":3}");
    free(text);
    cJSON_Delete(v);
}

static char *redacted_json(const char *json)
{
    cJSON *v = cJSON_Parse(json);
    redact_json(v);
    char *text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    return text;
}

static void a_journal_event_keeps_its_kind_step_time_and_keys(void)
{
    redact_add_secret("restore");
    redact_add_secret("started");
    char *text = redacted_json(
        "{\"seq\":3,\"time\":\"2026-01-11T14:30:00.123456Z\",\"kind\":\"step-started\",\"step\":\"restore\","
        "\"data\":{\"attempt\":1}}");
    CHECK_STR(text, "{\"seq\":3,\"time\":\"2026-01-11T14:30:00.123456Z\",\"kind\":\"step-started\","
                    "\"step\":\"restore\",\"data\":{\"attempt\":1}}");
    free(text);
    text = redacted_json("{\"kind\":\"step-done\",\"step\":\"restore\",\"data\":{\"outputs\":"
                         "{\"restore\":\"restore started\",\"step\":\"restore\",\"kind\":[\"restore\"]}}}");
    CHECK_STR(text, "{\"kind\":\"step-done\",\"step\":\"restore\",\"data\":{\"outputs\":"
                    "{\"restore\":\"<redacted> <redacted>\",\"step\":\"<redacted>\",\"kind\":[\"<redacted>\"]}}}");
    free(text);
    text = redacted_json("{\"kind\":\"step-failed\",\"step\":\"restore\",\"data\":{\"error\":\"restore failed\"}}");
    CHECK_STR(text, "{\"kind\":\"step-failed\",\"step\":\"restore\",\"data\":{\"error\":\"<redacted> failed\"}}");
    free(text);
}

static void run_started_and_run_json_keep_the_engine_fields(void)
{
    redact_add_secret("restore");
    redact_add_secret("0123456789abcdef");
    char *text = redacted_json(
        "{\"kind\":\"run-started\",\"step\":null,\"data\":{\"runbook\":\"restore\",\"version\":\"1\","
        "\"blob_id\":\"0123456789abcdef\",\"operator\":\"restore\",\"params\":{\"restore\":\"restore\"},"
        "\"steps\":[\"restore\",\"verify\"]}}");
    CHECK_STR(text, "{\"kind\":\"run-started\",\"step\":null,\"data\":{\"runbook\":\"restore\",\"version\":\"1\","
                    "\"blob_id\":\"0123456789abcdef\",\"operator\":\"restore\",\"params\":{\"restore\":\"<redacted>\"},"
                    "\"steps\":[\"restore\",\"verify\"]}}");
    free(text);
    text = redacted_json("{\"run_id\":\"restore-1\",\"runbook\":{\"name\":\"restore\",\"path\":\"/rb/restore.lua\"},"
                         "\"params\":{\"a\":\"restore\"},\"started_at\":\"x\",\"steps\":[\"restore\"],"
                         "\"target\":{\"kind\":\"restore\"},\"drill\":{\"scenario\":\"restore\"}}");
    CHECK_STR(text, "{\"run_id\":\"restore-1\",\"runbook\":{\"name\":\"restore\",\"path\":\"/rb/restore.lua\"},"
                    "\"params\":{\"a\":\"<redacted>\"},\"started_at\":\"x\",\"steps\":[\"restore\"],"
                    "\"target\":{\"kind\":\"restore\"},\"drill\":{\"scenario\":\"restore\"}}");
    free(text);
}

static void engine_fields_hold_only_in_the_events_that_write_them(void)
{
    redact_add_secret("destructive");
    char *text = redacted_json("{\"kind\":\"confirmation-asked\",\"data\":{\"reason\":\"destructive\","
                               "\"summary\":\"destructive\"}}");
    CHECK_STR(text, "{\"kind\":\"confirmation-asked\",\"data\":{\"reason\":\"destructive\",\"summary\":\"<redacted>\"}}");
    free(text);
    text = redacted_json("{\"kind\":\"run-failed\",\"data\":{\"reason\":\"destructive\"}}");
    CHECK_STR(text, "{\"kind\":\"run-failed\",\"data\":{\"reason\":\"<redacted>\"}}");
    free(text);
}

static void a_plan_keeps_its_step_names(void)
{
    redact_add_secret("restore");
    char *text = redacted_json("{\"runbook\":\"restore\",\"steps\":[{\"name\":\"restore\",\"plan\":\"restore it\"}]}");
    CHECK_STR(text, "{\"runbook\":\"restore\",\"steps\":[{\"name\":\"restore\",\"plan\":\"<redacted> it\"}]}");
    free(text);
}

TEST_SUITE(redact)
{
    REGISTER(registered_secrets_are_replaced);
    REGISTER(overlapping_occurrences_are_all_hidden);
    REGISTER(a_secret_is_hidden_in_printed_json_too);
    REGISTER(uri_passwords_are_replaced_without_registration);
    REGISTER(every_uri_form_libpq_reads_is_covered);
    REGISTER(a_password_libpq_misreads_is_still_hidden_whole);
    REGISTER(a_connection_password_is_hidden_wherever_it_appears_in_the_text);
    REGISTER(keyword_passwords_are_replaced);
    REGISTER(every_keyword_form_libpq_reads_is_covered);
    REGISTER(an_unterminated_quoted_password_is_hidden_to_the_end_of_the_line);
    REGISTER(text_without_secrets_is_unchanged);
    REGISTER(values_too_short_are_not_registered_and_warned_once_by_name);
    REGISTER(the_aws_access_key_id_is_a_secret);
    REGISTER(json_strings_are_redacted_but_structure_kept);
    REGISTER(a_journal_event_keeps_its_kind_step_time_and_keys);
    REGISTER(run_started_and_run_json_keep_the_engine_fields);
    REGISTER(engine_fields_hold_only_in_the_events_that_write_them);
    REGISTER(a_plan_keeps_its_step_names);
}
