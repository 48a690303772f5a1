#include "test.h"

#include "redact.h"

#include <stdlib.h>

static void registered_secrets_are_replaced(void)
{
    redact_add_secret("s3cr3t-token");
    char *out = redact_text("key=s3cr3t-token and again s3cr3t-token");
    CHECK_STR(out, "key=<redacted> and again <redacted>");
    free(out);
}

static void uri_passwords_are_replaced_without_registration(void)
{
    char *out = redact_text("connect postgresql://neondb_owner:npg_AbC123@ep-x.neon.tech/neondb?sslmode=require");
    CHECK_STR(out, "connect postgresql://neondb_owner:<redacted>@ep-x.neon.tech/neondb?sslmode=require");
    free(out);
    out = redact_text("postgres://u:p%40ss@127.0.0.1:5432/db");
    CHECK_STR(out, "postgres://u:<redacted>@127.0.0.1:5432/db");
    free(out);
}

static void keyword_passwords_are_replaced(void)
{
    char *out = redact_text("host=x password=hunter2 dbname=y");
    CHECK_STR(out, "host=x password=<redacted> dbname=y");
    free(out);
}

static void text_without_secrets_is_unchanged(void)
{
    char *out = redact_text("time 14:30:00, http://example.com:8080/x, user@host");
    CHECK_STR(out, "time 14:30:00, http://example.com:8080/x, user@host");
    free(out);
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

void register_redact_tests(void)
{
    REGISTER(registered_secrets_are_replaced);
    REGISTER(uri_passwords_are_replaced_without_registration);
    REGISTER(keyword_passwords_are_replaced);
    REGISTER(text_without_secrets_is_unchanged);
    REGISTER(json_strings_are_redacted_but_structure_kept);
}
