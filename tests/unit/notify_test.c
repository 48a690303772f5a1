#include "test.h"

#include "notify.h"
#include "redact.h"
#include "runnotify.h"

#include <curl/curl.h>
#include <stdlib.h>

static void only_transient_failures_are_retried(void)
{
    CHECK(notify_classify(CURLE_OK, 200) == NOTIFY_DELIVERED);
    CHECK(notify_classify(CURLE_OK, 204) == NOTIFY_DELIVERED);
    CHECK(notify_classify(CURLE_COULDNT_CONNECT, 0) == NOTIFY_RETRY);
    CHECK(notify_classify(CURLE_OPERATION_TIMEDOUT, 0) == NOTIFY_RETRY);
    CHECK(notify_classify(CURLE_OK, 408) == NOTIFY_RETRY);
    CHECK(notify_classify(CURLE_OK, 425) == NOTIFY_RETRY);
    CHECK(notify_classify(CURLE_OK, 429) == NOTIFY_RETRY);
    CHECK(notify_classify(CURLE_OK, 500) == NOTIFY_RETRY);
    CHECK(notify_classify(CURLE_OK, 503) == NOTIFY_RETRY);
    CHECK(notify_classify(CURLE_OK, 410) == NOTIFY_GIVE_UP);
    CHECK(notify_classify(CURLE_OK, 404) == NOTIFY_GIVE_UP);
    CHECK(notify_classify(CURLE_OK, 400) == NOTIFY_GIVE_UP);
    CHECK(notify_classify(CURLE_OK, 301) == NOTIFY_GIVE_UP);
    CHECK(notify_classify(CURLE_PEER_FAILED_VERIFICATION, 0) == NOTIFY_GIVE_UP);
    CHECK(notify_classify(CURLE_URL_MALFORMAT, 0) == NOTIFY_GIVE_UP);
}

static void a_webhook_is_named_without_its_path(void)
{
    char *name = notify_webhook_name("https://alerts.example.org/drctl/T0K3N");
    CHECK_STR(name, "https://alerts.example.org/…");
    free(name);
    name = notify_webhook_name("slack:http://127.0.0.1:8080/hook");
    CHECK_STR(name, "slack:http://127.0.0.1:8080/…");
    free(name);
    name = notify_webhook_name("slack:env:HOOK");
    CHECK_STR(name, "slack:env:HOOK");
    free(name);
    name = notify_webhook_name("env:HOOK");
    CHECK_STR(name, "env:HOOK");
    free(name);
}

static void the_generic_body_leaves_out_what_does_not_apply(void)
{
    notify_event ev = { .event = "run-failed", .run_id = "r1", .runbook = "rb", .step = "boom", .error = "it broke" };
    char *body = notify_body(&ev, 0, "2024-01-02T03:04:05Z", "host1", "Op <op@x>");
    cJSON *doc = cJSON_Parse(body);
    free(body);
    CHECK(doc != NULL);
    CHECK_STR(cJSON_GetObjectItemCaseSensitive(doc, "event")->valuestring, "run-failed");
    CHECK_STR(cJSON_GetObjectItemCaseSensitive(doc, "step")->valuestring, "boom");
    CHECK_STR(cJSON_GetObjectItemCaseSensitive(doc, "host")->valuestring, "host1");
    CHECK(cJSON_GetObjectItemCaseSensitive(doc, "report") == NULL);
    CHECK(cJSON_GetObjectItemCaseSensitive(doc, "target") == NULL);
    cJSON_Delete(doc);
}

static void the_slack_body_is_one_escaped_text(void)
{
    cJSON *target = cJSON_Parse("{\"kind\":\"local\",\"project\":\"p1\",\"branch\":\"b<1>\"}");
    notify_event ev = { .event = "run-paused", .summary = "paused & waiting", .run_id = "r1", .step = "promote",
                        .target = target };
    char *body = notify_body(&ev, 1, "t", "h", "o");
    cJSON *doc = cJSON_Parse(body);
    free(body);
    cJSON_Delete(target);
    CHECK(doc != NULL && cJSON_GetArraySize(doc) == 1);
    const char *text = cJSON_GetObjectItemCaseSensitive(doc, "text")->valuestring;
    CHECK_CONTAINS(text, "*drctl: run-paused*: paused &amp; waiting");
    CHECK_CONTAINS(text, "*Step:* `promote`");
    CHECK_CONTAINS(text, "neon-local, project p1, branch b&lt;1&gt;");
    cJSON_Delete(doc);
}

static void a_registered_secret_never_reaches_a_body(void)
{
    redact_clear();
    redact_add_secret("hunter2-secret");
    cJSON *details = cJSON_Parse("{\"note\":\"saw hunter2-secret\"}");
    notify_event ev = { .event = "run-failed", .error = "login with hunter2-secret failed",
                        .step = "hunter2-secret", .details = details };
    for (int slack = 0; slack <= 1; slack++) {
        char *body = notify_body(&ev, slack, "t", "h", "o");
        int leaked = strstr(body, "hunter2") != NULL;
        free(body);
        CHECK(!leaked);
    }
    cJSON_Delete(details);
    redact_clear();
}

static void only_the_ends_that_need_someone_are_notified(void)
{
    CHECK_STR(runnotify_event("run-failed", 0), "run-failed");
    CHECK_STR(runnotify_event("run-paused", 0), "run-paused");
    CHECK_STR(runnotify_event("run-interrupted", 0), "run-interrupted");
    CHECK(runnotify_event("run-done", 0) == NULL);
    CHECK(runnotify_event("run-aborted", 0) == NULL);
    CHECK_STR(runnotify_event("run-done", 1), "drill");
    CHECK_STR(runnotify_event("run-failed", 1), "drill");
    CHECK_STR(runnotify_event("run-paused", 1), "run-paused");
}

TEST_SUITE(notify)
{
    REGISTER(only_transient_failures_are_retried);
    REGISTER(a_webhook_is_named_without_its_path);
    REGISTER(the_generic_body_leaves_out_what_does_not_apply);
    REGISTER(the_slack_body_is_one_escaped_text);
    REGISTER(a_registered_secret_never_reaches_a_body);
    REGISTER(only_the_ends_that_need_someone_are_notified);
}
