#include "test.h"

#include "buf.h"
#include "err.h"
#include "params.h"
#include "redact.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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
    CHECK(params_resolve(&out, specs, 4, args, 4, NULL) == 0);
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
    CHECK(params_resolve(&out, specs, 1, args, 1, NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "unknown param 'brnch'");
    CHECK_CONTAINS(err_last(), "branch");
    CHECK(out == NULL);
}

static void a_missing_required_param_names_its_form(void)
{
    param_spec specs[1] = { spec("incident_time", PARAM_TIMESTAMP, 1) };
    cJSON *out = NULL;
    CHECK(params_resolve(&out, specs, 1, NULL, 0, NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "param 'incident_time' is required");
    CHECK_CONTAINS(err_last(), "2026-01-11T14:30:00Z");
}

static void a_wrong_int_names_the_param_and_form(void)
{
    param_spec specs[1] = { spec("keep_days", PARAM_INT, 0) };
    char *args[] = { "keep_days=thirty" };
    cJSON *out = NULL;
    CHECK(params_resolve(&out, specs, 1, args, 1, NULL) == DR_EUSAGE);
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
    CHECK(params_resolve(&out, &s, 1, good, 1, NULL) == 0);
    cJSON_Delete(out);
    CHECK(params_resolve(&out, &s, 1, bad, 1, NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "one of restore, promote");
}

static void defaults_fill_what_is_not_given(void)
{
    param_spec s = spec("margin", PARAM_DURATION, 0);
    s.default_text = "1s";
    cJSON *out = NULL;
    CHECK(params_resolve(&out, &s, 1, NULL, 0, NULL) == 0);
    CHECK(cJSON_GetObjectItem(out, "margin")->valuedouble == 1);
    cJSON_Delete(out);
}

static void the_environment_can_give_a_param(void)
{
    param_spec s = spec("api_token", PARAM_STRING, 1);
    setenv("DRCTL_PARAM_API_TOKEN", "from-env", 1);
    cJSON *out = NULL;
    int rc = params_resolve(&out, &s, 1, NULL, 0, NULL);
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
    CHECK(params_resolve(&out, &s, 1, args, 2, NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "given twice");
}

static void secrets_are_redacted_in_copies_and_never_in_messages(void)
{
    param_spec s = spec("pin", PARAM_INT, 0);
    s.secret = 1;
    char *bad[] = { "pin=hunter2" };
    cJSON *out = NULL;
    CHECK(params_resolve(&out, &s, 1, bad, 1, NULL) == DR_EUSAGE);
    CHECK(strstr(err_last(), "hunter2") == NULL);
    char *good[] = { "pin=1234" };
    CHECK(params_resolve(&out, &s, 1, good, 1, NULL) == 0);
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
    CHECK(params_resolve(&out, specs, 2, change, 1, fixed) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "fixed when the run started");
    CHECK(params_resolve(&out, specs, 2, NULL, 0, fixed) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "secret and was not stored");
    char *secret[] = { "token=t0k" };
    CHECK(params_resolve(&out, specs, 2, secret, 1, fixed) == 0);
    CHECK_STR(cJSON_GetObjectItem(out, "branch")->valuestring, "main");
    CHECK_STR(cJSON_GetObjectItem(out, "token")->valuestring, "t0k");
    cJSON_Delete(out);
    cJSON_Delete(fixed);
}

static void a_secret_int_is_hidden_as_it_prints(void)
{
    param_spec s = spec("pin", PARAM_INT, 1);
    s.secret = 1;
    char *args[] = { "pin=86420975" };
    cJSON *out = NULL;
    CHECK(params_resolve(&out, &s, 1, args, 1, NULL) == 0);
    params_register_secrets(&s, 1, out);
    cJSON_Delete(out);
    char *text = redact_text("pin 86420975, as a float 86420975.0");
    CHECK_STR(text, "pin <redacted>, as a float <redacted>.0");
    free(text);
    cJSON *event = cJSON_Parse("{\"seq\":86420975,\"kind\":\"step-done\",\"data\":{\"outputs\":{\"pin\":86420975,"
                               "\"list\":[86420975,1]},\"duration_ms\":86420975}}");
    redact_json(event);
    text = cJSON_PrintUnformatted(event);
    cJSON_Delete(event);
    CHECK_STR(text, "{\"seq\":86420975,\"kind\":\"step-done\",\"data\":{\"outputs\":{\"pin\":\"<redacted>\","
                    "\"list\":[\"<redacted>\",1]},\"duration_ms\":86420975}}");
    free(text);
}

static void a_secret_duration_and_timestamp_are_hidden_as_they_print(void)
{
    param_spec specs[2] = { spec("wait", PARAM_DURATION, 1), spec("at", PARAM_TIMESTAMP, 1) };
    specs[0].secret = specs[1].secret = 1;
    char *args[] = { "wait=2d", "at=2026-01-11 14:30:00+01:00" };
    cJSON *out = NULL;
    CHECK(params_resolve(&out, specs, 2, args, 2, NULL) == 0);
    params_register_secrets(specs, 2, out);
    cJSON_Delete(out);
    char *text = redact_text("at 2026-01-11T13:30:00Z for 172800 s");
    CHECK_STR(text, "at <redacted> for <redacted> s");
    free(text);
}

/* The warning for a too short secret names the param, never its value. */
static void a_too_short_secret_is_named_in_a_warning_and_not_registered(void)
{
    param_spec specs[2] = { spec("token", PARAM_STRING, 1), spec("flag", PARAM_BOOL, 1) };
    specs[0].secret = specs[1].secret = 1;
    char *args[] = { "token=b0x", "flag=yes" };
    cJSON *out = NULL;
    CHECK(params_resolve(&out, specs, 2, args, 2, NULL) == 0);
    fflush(stderr);
    int saved = dup(2);
    const char *path = test_write_file("stderr.txt", "");
    int fd = open(path, O_WRONLY | O_TRUNC);
    dup2(fd, 2);
    close(fd);
    params_register_secrets(specs, 2, out);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    cJSON_Delete(out);
    char err[2048] = "";
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(err, 1, sizeof err - 1, f) : 0;
    err[n] = '\0';
    if (f)
        fclose(f);
    CHECK_CONTAINS(err, "secret param 'token' is too short to be redacted safely");
    CHECK_CONTAINS(err, "secret param 'flag' is too short");
    CHECK_CONTAINS(err, "at least 6 characters");
    CHECK(strstr(err, "b0x") == NULL);
    char *text = redact_text("step-done b0x true");
    CHECK_STR(text, "step-done b0x true");
    free(text);
}

/* -p, then the environment (DRCTL_PARAM_<NAME>, then the spec's env), then
 * the team's setting, then the default; and each value says where it came
 * from. */
static void a_setting_gives_a_value_after_the_command_line_and_the_environment(void)
{
    param_spec s = spec("throwaway_ttl", PARAM_DURATION, 0);
    s.default_text = "1d";
    s.env = "DRCTL_TEST_TTL";
    s.config = "throwaway_ttl";
    cJSON *settings = cJSON_Parse("{\"throwaway_ttl\": \"2h\"}");
    unsetenv("DRCTL_TEST_TTL");
    unsetenv("DRCTL_PARAM_THROWAWAY_TTL");
    cJSON *out = NULL, *from = NULL;

    params_input none = { NULL, 0, NULL, NULL };
    CHECK(params_resolve_from(&out, &from, &s, 1, &none) == 0);
    CHECK(cJSON_GetObjectItem(out, "throwaway_ttl")->valuedouble == 86400);
    CHECK_STR(cJSON_GetObjectItem(from, "throwaway_ttl")->valuestring, "default");
    cJSON_Delete(out);
    cJSON_Delete(from);

    params_input configured = { NULL, 0, NULL, settings };
    CHECK(params_resolve_from(&out, &from, &s, 1, &configured) == 0);
    CHECK(cJSON_GetObjectItem(out, "throwaway_ttl")->valuedouble == 7200);
    CHECK_STR(cJSON_GetObjectItem(from, "throwaway_ttl")->valuestring, "config throwaway_ttl");
    cJSON_Delete(out);
    cJSON_Delete(from);

    setenv("DRCTL_TEST_TTL", "3h", 1);
    CHECK(params_resolve_from(&out, &from, &s, 1, &configured) == 0);
    CHECK(cJSON_GetObjectItem(out, "throwaway_ttl")->valuedouble == 10800);
    CHECK_STR(cJSON_GetObjectItem(from, "throwaway_ttl")->valuestring, "DRCTL_TEST_TTL");
    cJSON_Delete(out);
    cJSON_Delete(from);

    setenv("DRCTL_PARAM_THROWAWAY_TTL", "4h", 1);
    CHECK(params_resolve_from(&out, &from, &s, 1, &configured) == 0);
    CHECK(cJSON_GetObjectItem(out, "throwaway_ttl")->valuedouble == 14400);
    CHECK_STR(cJSON_GetObjectItem(from, "throwaway_ttl")->valuestring, "DRCTL_PARAM_THROWAWAY_TTL");
    cJSON_Delete(out);
    cJSON_Delete(from);

    char *args[] = { "throwaway_ttl=5h" };
    params_input given = { args, 1, NULL, settings };
    CHECK(params_resolve_from(&out, &from, &s, 1, &given) == 0);
    CHECK(cJSON_GetObjectItem(out, "throwaway_ttl")->valuedouble == 18000);
    CHECK_STR(cJSON_GetObjectItem(from, "throwaway_ttl")->valuestring, "-p");
    cJSON_Delete(out);
    cJSON_Delete(from);
    unsetenv("DRCTL_TEST_TTL");
    unsetenv("DRCTL_PARAM_THROWAWAY_TTL");

    /* a resumed run keeps its value, whatever the setting says now */
    cJSON *fixed = cJSON_Parse("{\"throwaway_ttl\": 600}");
    params_input resumed = { NULL, 0, fixed, settings };
    CHECK(params_resolve_from(&out, &from, &s, 1, &resumed) == 0);
    CHECK(cJSON_GetObjectItem(out, "throwaway_ttl")->valuedouble == 600);
    CHECK_STR(cJSON_GetObjectItem(from, "throwaway_ttl")->valuestring, "run");
    cJSON_Delete(out);
    cJSON_Delete(from);
    cJSON_Delete(fixed);

    /* a param without config never reads the settings */
    s.config = NULL;
    CHECK(params_resolve_from(&out, NULL, &s, 1, &configured) == 0);
    CHECK(cJSON_GetObjectItem(out, "throwaway_ttl")->valuedouble == 86400);
    cJSON_Delete(out);
    cJSON_Delete(settings);
}

static void a_setting_that_does_not_fit_names_the_setting(void)
{
    param_spec s = spec("keep", PARAM_DURATION, 0);
    s.config = "check.export_max_age";
    cJSON *settings = cJSON_Parse("{\"check.export_max_age\": \"soon\"}");
    params_input in = { NULL, 0, NULL, settings };
    cJSON *out = NULL, *from = NULL;
    CHECK(params_resolve_from(&out, &from, &s, 1, &in) == DR_EUSAGE);
    CHECK(out == NULL && from == NULL);
    CHECK_CONTAINS(err_last(), "param 'keep'");
    CHECK_CONTAINS(err_last(), "from config.json check.export_max_age");
    cJSON_Delete(settings);
    CHECK(params_use_config(&s, 1));
    s.config = NULL;
    CHECK(!params_use_config(&s, 1));
}

TEST_SUITE(params)
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
    REGISTER(a_secret_int_is_hidden_as_it_prints);
    REGISTER(a_secret_duration_and_timestamp_are_hidden_as_they_print);
    REGISTER(a_too_short_secret_is_named_in_a_warning_and_not_registered);
    REGISTER(a_setting_gives_a_value_after_the_command_line_and_the_environment);
    REGISTER(a_setting_that_does_not_fit_names_the_setting);
}
