#include "test.h"

#include "report.h"

#include <stdlib.h>

#define INFO                                                                                       \
    "{\"run_id\":\"r-42\",\"host\":\"db-admin-1\",\"drctl_version\":\"0.9\","                      \
    "\"runbook\":{\"name\":\"restore-branch\",\"version\":\"3\",\"blob_id\":\"abc123\"},"           \
    "\"params\":{\"branch\":\"main\",\"keep\":true}}"

/* A run of two steps: "snapshot" done in 90 s, "restore" confirmed by ana,
 * then failed on its second attempt with an error holding a table's
 * separator and a line break. */
#define EVENTS                                                                                                   \
    "["                                                                                                          \
    "{\"seq\":1,\"time\":\"2026-01-11T14:00:00Z\",\"kind\":\"run-started\",\"step\":null,"                        \
    "\"data\":{\"steps\":[\"snapshot\",\"restore\"],\"operator\":\"ana\"}},"                                       \
    "{\"seq\":2,\"time\":\"2026-01-11T14:00:00Z\",\"kind\":\"step-started\",\"step\":\"snapshot\",\"data\":{\"attempt\":1}}," \
    "{\"seq\":3,\"time\":\"2026-01-11T14:01:30Z\",\"kind\":\"step-done\",\"step\":\"snapshot\","                  \
    "\"data\":{\"duration_ms\":90000,\"outputs\":{\"lsn\":\"0/16B3748\"}}},"                                      \
    "{\"seq\":4,\"time\":\"2026-01-11T14:01:31Z\",\"kind\":\"figure\",\"step\":\"snapshot\","                     \
    "\"data\":{\"label\":\"rows copied\",\"value\":1200}},"                                                       \
    "{\"seq\":5,\"time\":\"2026-01-11T14:02:00Z\",\"kind\":\"confirmation-asked\",\"step\":\"restore\","          \
    "\"data\":{\"reason\":\"destructive\",\"summary\":\"replaces main\",\"challenge\":\"main\"}},"               \
    "{\"seq\":6,\"time\":\"2026-01-11T14:02:09Z\",\"kind\":\"confirmation-given\",\"step\":\"restore\","          \
    "\"data\":{\"operator\":\"ana\",\"reason\":\"destructive\",\"answer\":\"main\"}},"                            \
    "{\"seq\":7,\"time\":\"2026-01-11T14:02:10Z\",\"kind\":\"step-started\",\"step\":\"restore\",\"data\":{\"attempt\":2}}," \
    "{\"seq\":8,\"time\":\"2026-01-11T14:03:10Z\",\"kind\":\"step-failed\",\"step\":\"restore\","                 \
    "\"data\":{\"duration_ms\":60000,\"error\":\"409 a|b\\nbranch busy\"}},"                                     \
    "{\"seq\":9,\"time\":\"2026-01-11T15:30:10Z\",\"kind\":\"run-failed\",\"step\":null,"                        \
    "\"data\":{\"reason\":\"step restore failed\"}}"                                                              \
    "]"

static char *render(const char *info_json, const char *events_json)
{
    cJSON *info = cJSON_Parse(info_json), *events = cJSON_Parse(events_json);
    char *text = info && events ? report_render(info, events, NULL) : NULL;
    cJSON_Delete(info);
    cJSON_Delete(events);
    return text;
}

/* Each check on the rendered text; the text is freed whatever happens. */
#define CHECK_REPORT(text, needle)                                            \
    do {                                                                      \
        if (!(text) || !strstr((text), (needle))) {                           \
            test_fail(__FILE__, __LINE__, "report contains " #needle, text);  \
            free(text);                                                       \
            return;                                                           \
        }                                                                     \
    } while (0)

static void the_header_names_the_run_its_runbook_status_and_elapsed_time(void)
{
    char *t = render(INFO, EVENTS);
    CHECK_REPORT(t, "# Run r-42\n");
    CHECK_REPORT(t, "| runbook | restore-branch 3 (blob abc123) |");
    CHECK_REPORT(t, "| status | **failed**: step restore failed |");
    CHECK_REPORT(t, "| operators | ana |");
    CHECK_REPORT(t, "| host | db-admin-1 |");
    CHECK_REPORT(t, "| started | 2026-01-11T14:00:00Z |");
    CHECK_REPORT(t, "| last event | 2026-01-11T15:30:10Z |");
    CHECK_REPORT(t, "| elapsed | 1h30m |");
    CHECK_REPORT(t, "| branch | main |");
    CHECK_REPORT(t, "| keep | true |");
    free(t);
}

static void the_timeline_gives_each_step_event_with_its_duration(void)
{
    char *t = render(INFO, EVENTS);
    CHECK_REPORT(t, "| 2026-01-11T14:01:30Z | snapshot | step-done | took 1m30s |");
    CHECK_REPORT(t, "| 2026-01-11T14:02:10Z | restore | step-started | attempt 2 |");
    CHECK_REPORT(t, "| 2026-01-11T15:30:10Z |  | run-failed | step restore failed |");
    free(t);
}

static void an_error_stays_inside_its_table_cell(void)
{
    char *t = render(INFO, EVENTS);
    CHECK_REPORT(t, "| 2026-01-11T14:03:10Z | restore | step-failed | took 1m00s: 409 a\\|b<br>branch busy |");
    CHECK_REPORT(t, "| restore | failed | 2 | error: 409 a\\|b<br>branch busy |");
    free(t);
}

static void confirmations_show_the_question_and_who_answered_what(void)
{
    char *t = render(INFO, EVENTS);
    CHECK_REPORT(t, "## Confirmations");
    CHECK_REPORT(t, "| 2026-01-11T14:02:00Z | restore | asked |  | replaces main (challenge: `main`) |");
    CHECK_REPORT(t, "| 2026-01-11T14:02:09Z | restore | given | ana | typed: main |");
    free(t);
}

static void figures_and_outputs_are_listed(void)
{
    char *t = render(INFO, EVENTS);
    CHECK_REPORT(t, "| snapshot | rows copied | 1200 |");
    CHECK_REPORT(t, "| snapshot | done | 1 | `{\"lsn\":\"0/16B3748\"}` |");
    free(t);
}

static void a_run_without_confirmations_or_figures_has_no_such_sections(void)
{
    char *t = render(INFO,
                     "[{\"seq\":1,\"time\":\"2026-01-11T14:00:00Z\",\"kind\":\"run-started\",\"step\":null,"
                     "\"data\":{\"steps\":[\"a\"]}}]");
    CHECK_REPORT(t, "| a | pending | 0 |  |");
    int extra = strstr(t, "## Confirmations") || strstr(t, "## Figures");
    free(t);
    CHECK(!extra);
}

static void a_journal_that_cannot_be_replayed_says_so(void)
{
    char *t = render(INFO, "[{\"seq\":1,\"time\":\"t\",\"kind\":\"log\",\"step\":null,\"data\":{}}]");
    CHECK_REPORT(t, "# Run r-42\n\nThe journal cannot be replayed: ");
    free(t);
}

static void secrets_never_reach_the_report(void)
{
    char *t = render(INFO,
                     "[{\"seq\":1,\"time\":\"2026-01-11T14:00:00Z\",\"kind\":\"run-started\",\"step\":null,"
                     "\"data\":{\"steps\":[\"a\"]}},"
                     "{\"seq\":2,\"time\":\"2026-01-11T14:00:01Z\",\"kind\":\"step-failed\",\"step\":\"a\","
                     "\"data\":{\"error\":\"cannot connect to postgresql://app:hunter2@db.example/app\"}}]");
    int leaked = !t || strstr(t, "hunter2") != NULL;
    free(t);
    CHECK(!leaked);
}

TEST_SUITE(report)
{
    REGISTER(the_header_names_the_run_its_runbook_status_and_elapsed_time);
    REGISTER(the_timeline_gives_each_step_event_with_its_duration);
    REGISTER(an_error_stays_inside_its_table_cell);
    REGISTER(confirmations_show_the_question_and_who_answered_what);
    REGISTER(figures_and_outputs_are_listed);
    REGISTER(a_run_without_confirmations_or_figures_has_no_such_sections);
    REGISTER(a_journal_that_cannot_be_replayed_says_so);
    REGISTER(secrets_never_reach_the_report);
}
