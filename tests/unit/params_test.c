#include "test.h"

#include "buf.h"
#include "err.h"
#include "params.h"
#include "redact.h"

#include <stdlib.h>

static param_spec spec(const char *name, param_type type, int required)
{
    param_spec s = { 0 };
    s.name = (char *)name;
    s.type = type;
    s.required = required;
    return s;
}

static void typed_values_come_out_typed(void)
{
    param_spec specs[4] = { spec("n", PARAM_INT, 1), spec("flag", PARAM_BOOL, 0),
                            spec("at", PARAM_TIMESTAMP, 0), spec("margin", PARAM_DURATION, 0) };
    char *args[] = { "n=42", "flag=yes", "at=2026-01-11 14:30:00+01:00", "margin=2m" };
    cJSON *out = NULL;
    CHECK(params_resolve(specs, 4, args, 4, NULL, &out) == 0);
    CHECK(cJSON_GetObjectItem(out, "n")->valuedouble == 42);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(out, "flag")));
    CHECK_STR(cJSON_GetObjectItem(out, "at")->valuestring, "2026-01-11T13:30:00Z");
    CHECK(cJSON_GetObjectItem(out, "margin")->valuedouble == 120);
    cJSON_Delete(out);
}

static void an_unknown_param_is_named_with_the_known_ones(void)
{
    param_spec specs[1] = { spec("branch", PARAM_STRING, 0) };
    char *args[] = { "brnch=main" };
    cJSON *out = NULL;
    CHECK(params_resolve(specs, 1, args, 1, NULL, &out) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "unknown param 'brnch'");
    CHECK_CONTAINS(err_last(), "branch");
    CHECK(out == NULL);
}

static void a_missing_required_param_names_its_form(void)
{
    param_spec specs[1] = { spec("incident_time", PARAM_TIMESTAMP, 1) };
    cJSON *out = NULL;
    CHECK(params_resolve(specs, 1, NULL, 0, NULL, &out) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "param 'incident_time' is required");
    CHECK_CONTAINS(err_last(), "2026-01-11T14:30:00Z");
}

static void a_wrong_int_names_the_param_and_form(void)
{
    param_spec specs[1] = { spec("keep_days", PARAM_INT, 0) };
    char *args[] = { "keep_days=thirty" };
    cJSON *out = NULL;
    CHECK(params_resolve(specs, 1, args, 1, NULL, &out) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "param 'keep_days'");
    CHECK_CONTAINS(err_last(), "whole number");
}

static void enum_values_are_checked(void)
{
    param_spec s = spec("strategy", PARAM_ENUM, 0);
    char *values[] = { "restore", "promote" };
    s.values = values;
    s.value_count = 2;
    char *good[] = { "strategy=promote" }, *bad[] = { "strategy=yolo" };
    cJSON *out = NULL;
    CHECK(params_resolve(&s, 1, good, 1, NULL, &out) == 0);
    cJSON_Delete(out);
    CHECK(params_resolve(&s, 1, bad, 1, NULL, &out) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "one of restore, promote");
}

static void defaults_fill_what_is_not_given(void)
{
    param_spec s = spec("margin", PARAM_DURATION, 0);
    s.default_text = "1s";
    cJSON *out = NULL;
    CHECK(params_resolve(&s, 1, NULL, 0, NULL, &out) == 0);
    CHECK(cJSON_GetObjectItem(out, "margin")->valuedouble == 1);
    cJSON_Delete(out);
}

static void the_environment_can_give_a_param(void)
{
    param_spec s = spec("api_token", PARAM_STRING, 1);
    setenv("DRCTL_PARAM_API_TOKEN", "from-env", 1);
    cJSON *out = NULL;
    int rc = params_resolve(&s, 1, NULL, 0, NULL, &out);
    unsetenv("DRCTL_PARAM_API_TOKEN");
    CHECK(rc == 0);
    CHECK_STR(cJSON_GetObjectItem(out, "api_token")->valuestring, "from-env");
    cJSON_Delete(out);
}

static void a_given_twice_param_is_refused(void)
{
    param_spec s = spec("x", PARAM_STRING, 0);
    char *args[] = { "x=1", "x=2" };
    cJSON *out = NULL;
    CHECK(params_resolve(&s, 1, args, 2, NULL, &out) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "given twice");
}

static void secrets_are_redacted_in_copies_and_never_in_messages(void)
{
    param_spec s = spec("pin", PARAM_INT, 0);
    s.secret = 1;
    char *bad[] = { "pin=hunter2" };
    cJSON *out = NULL;
    CHECK(params_resolve(&s, 1, bad, 1, NULL, &out) == DR_EUSAGE);
    CHECK(strstr(err_last(), "hunter2") == NULL);
    char *good[] = { "pin=1234" };
    CHECK(params_resolve(&s, 1, good, 1, NULL, &out) == 0);
    cJSON *copy = params_redacted_copy(&s, 1, out);
    CHECK_STR(cJSON_GetObjectItem(copy, "pin")->valuestring, "<redacted>");
    cJSON_Delete(copy);
    cJSON_Delete(out);
}

static void a_resumed_run_keeps_its_params_and_takes_back_secrets(void)
{
    param_spec specs[2] = { spec("branch", PARAM_STRING, 1), spec("token", PARAM_STRING, 1) };
    specs[1].secret = 1;
    cJSON *fixed = cJSON_Parse("{\"branch\":\"main\",\"token\":\"<redacted>\"}");
    char *change[] = { "branch=other" };
    cJSON *out = NULL;
    CHECK(params_resolve(specs, 2, change, 1, fixed, &out) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "fixed when the run started");
    CHECK(params_resolve(specs, 2, NULL, 0, fixed, &out) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "secret and was not stored");
    char *secret[] = { "token=t0k" };
    CHECK(params_resolve(specs, 2, secret, 1, fixed, &out) == 0);
    CHECK_STR(cJSON_GetObjectItem(out, "branch")->valuestring, "main");
    CHECK_STR(cJSON_GetObjectItem(out, "token")->valuestring, "t0k");
    cJSON_Delete(out);
    cJSON_Delete(fixed);
}

void register_params_tests(void)
{
    REGISTER(typed_values_come_out_typed);
    REGISTER(an_unknown_param_is_named_with_the_known_ones);
    REGISTER(a_missing_required_param_names_its_form);
    REGISTER(a_wrong_int_names_the_param_and_form);
    REGISTER(enum_values_are_checked);
    REGISTER(defaults_fill_what_is_not_given);
    REGISTER(the_environment_can_give_a_param);
    REGISTER(a_given_twice_param_is_refused);
    REGISTER(secrets_are_redacted_in_copies_and_never_in_messages);
    REGISTER(a_resumed_run_keeps_its_params_and_takes_back_secrets);
}
