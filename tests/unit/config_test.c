#include "test.h"

#include "config.h"
#include "err.h"

#include <stdlib.h>

static void an_absent_file_gives_every_default(void)
{
    config *c = NULL;
    CHECK(config_load(&c, test_tmpdir()) == 0);
    CHECK_STR(config_text(c, "check.backup_max_age"), "26h");
    CHECK(config_seconds(c, "check.history_min") == 7 * 86400.0);
    CHECK(config_seconds(c, "check.history_warn") == 30 * 86400.0);
    CHECK(config_seconds(c, "check.restore_test_max_age") == 31 * 86400.0);
    CHECK(config_seconds(c, "check.export_max_age") == 8 * 86400.0);
    CHECK(config_text(c, "contact") == NULL);
    CHECK(config_webhook_count(c) == 0);
    config_free(c);
}

static void set_validates_and_webhooks_accumulate_once(void)
{
    config *c = NULL;
    int changed;
    CHECK(config_parse(&c, "{}", "config.json") == 0);
    CHECK(config_set(c, "notify.webhook", "env:HOOK", &changed) == 0 && changed);
    CHECK(config_set(c, "notify.webhook", "https://a.example.org/x", &changed) == 0 && changed);
    CHECK(config_set(c, "notify.webhook", "env:HOOK", &changed) == 0 && !changed);
    CHECK(config_webhook_count(c) == 2);
    CHECK(config_set(c, "check.backup_max_age", "soon", &changed) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "check.backup_max_age: 'soon' is not valid: expected a duration");
    char *text = config_to_text(c);
    CHECK_CONTAINS(text, "\"notify.webhook\"");
    config *again = NULL;
    int rc = config_parse(&again, text, "config.json");
    free(text);
    CHECK(rc == 0 && config_webhook_count(again) == 2);
    CHECK_STR(config_webhook(again, 1), "https://a.example.org/x");
    config_free(again);
    CHECK(config_unset(c, "notify.webhook", "env:HOOK", &changed) == 0 && changed);
    CHECK(config_webhook_count(c) == 1);
    CHECK(config_unset(c, "notify.webhook", NULL, &changed) == 0 && changed);
    CHECK(!config_is_set(c, "notify.webhook"));
    config_free(c);
}

static void urls_that_could_carry_a_secret_are_refused(void)
{
    CHECK(config_validate("notify.webhook", "https://h.example.org/hook") == 0);
    CHECK(config_validate("notify.webhook", "https://h.example.org/hook?token=x") == DR_EUSAGE);
    CHECK(config_validate("notify.webhook", "https://me:pw@h.example.org/hook") == DR_EUSAGE);
    CHECK(config_validate("notify.webhook", "http:///nohost") == DR_EUSAGE);
    CHECK(config_validate("notify.webhook", "env:") == DR_EUSAGE);
    CHECK(config_validate("contact", "a\tb") == DR_EUSAGE);
    CHECK(config_validate("nope", "x") == DR_EUSAGE);
}

static void a_bad_file_names_the_file_and_the_key(void)
{
    config *c = NULL;
    CHECK(config_parse(&c, "{\"throwaway_ttl\": 5}", "/a/config.json") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "/a/config.json: throwaway_ttl: expected a string");
    CHECK(config_parse(&c, "{\"colour\": \"x\"}", "/a/config.json") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "'colour' is not a setting");
    CHECK(config_parse(&c, "[1]", "/a/config.json") == DR_EUSAGE);
    CHECK(c == NULL);
}

static void an_env_webhook_is_resolved_only_when_used(void)
{
    setenv("DRCTL_TEST_HOOK", "https://h.example.org/hook?token=s3cret", 1);
    char *url = config_resolve_url("env:DRCTL_TEST_HOOK");
    CHECK_STR(url, "https://h.example.org/hook?token=s3cret");
    free(url);
    unsetenv("DRCTL_TEST_HOOK");
    CHECK(config_resolve_url("env:DRCTL_TEST_HOOK") == NULL);
    CHECK_CONTAINS(err_last(), "DRCTL_TEST_HOOK is not set");
}

TEST_SUITE(config)
{
    REGISTER(an_absent_file_gives_every_default);
    REGISTER(set_validates_and_webhooks_accumulate_once);
    REGISTER(urls_that_could_carry_a_secret_are_refused);
    REGISTER(a_bad_file_names_the_file_and_the_key);
    REGISTER(an_env_webhook_is_resolved_only_when_used);
}
