#include "test.h"

#include "err.h"
#include "gate.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the challenge and the answer ---- */

static void the_prompt_names_the_step_why_and_the_challenge(void)
{
    char *p = gate_prompt("restore", "destructive", "replaces branch main with its state at 14:30", "main");
    int ok = strstr(p, "step 'restore' (destructive)") && strstr(p, "replaces branch main with its state at 14:30") &&
             strstr(p, "Type 'main' to proceed (anything else refuses): ");
    free(p);
    CHECK(ok);
    p = gate_prompt("restore", "rerun", "again", "main");
    ok = strstr(p, "(re-run of an unfinished step)") != NULL;
    free(p);
    CHECK(ok);
}

static void the_prompt_shows_no_secret(void)
{
    char *p = gate_prompt("export", "destructive", "writes to postgresql://app:hunter2@db.example/app", "app");
    int leaked = strstr(p, "hunter2") != NULL;
    free(p);
    CHECK(!leaked);
}

static void only_the_exact_challenge_matches(void)
{
    CHECK(gate_answer_matches("main", "main"));
    CHECK(gate_answer_matches("prod-db/main", "prod-db/main"));
    CHECK(!gate_answer_matches("Main", "main"));
    CHECK(!gate_answer_matches("MAIN", "main"));
    CHECK(!gate_answer_matches(" main", "main"));
    CHECK(!gate_answer_matches("main ", "main"));
    CHECK(!gate_answer_matches("main\t", "main"));
    CHECK(!gate_answer_matches("mai", "main"));
    CHECK(!gate_answer_matches("mainx", "main"));
    CHECK(!gate_answer_matches("", "main"));
    CHECK(!gate_answer_matches("yes", "main"));
    CHECK(!gate_answer_matches("y", "main"));
}

/* ---- asking on a terminal (a socket pair stands for it) ---- */

typedef struct seen {
    char kinds[8][32];
    char answer[64];
    int count;
} seen;

static int record(void *ud, const char *kind, cJSON *data)
{
    seen *s = ud;
    if (s->count < 8)
        snprintf(s->kinds[s->count++], sizeof s->kinds[0], "%s", kind);
    const cJSON *answer = cJSON_GetObjectItemCaseSensitive(data, "answer");
    if (cJSON_IsString(answer))
        snprintf(s->answer, sizeof s->answer, "%s", answer->valuestring);
    cJSON_Delete(data);
    return 0;
}

/* Asks with typed as the operator's input (then end of input); *shown gets
 * what was written to the terminal (caller frees). */
static int ask(seen *s, char **shown, const char *typed)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
        return -1000;
    if (write(pair[1], typed, strlen(typed)) != (ssize_t)strlen(typed))
        return -1000;
    shutdown(pair[1], SHUT_WR);
    gate g = { .operator = "ana", .resume_hint = "drctl resume r-1", .on_event = record, .ud = s };
    int rc = gate_ask(&g, pair[0], "restore", "destructive", "replaces main", "main");
    close(pair[0]);
    char text[4096];
    ssize_t n = read(pair[1], text, sizeof text - 1);
    text[n > 0 ? n : 0] = '\0';
    *shown = strdup(text);
    close(pair[1]);
    return rc;
}

static void the_challenge_typed_confirms(void)
{
    seen s = { 0 };
    char *shown = NULL;
    int rc = ask(&s, &shown, "main\n");
    int prompted = strstr(shown, "Type 'main' to proceed") && strstr(shown, "confirmed.");
    free(shown);
    CHECK(rc == 0);
    CHECK(prompted);
    CHECK(s.count == 1);
    CHECK_STR(s.kinds[0], "confirmation-given");
    CHECK_STR(s.answer, "main");
}

static void a_carriage_return_before_the_line_feed_is_not_part_of_the_answer(void)
{
    seen s = { 0 };
    char *shown = NULL;
    int rc = ask(&s, &shown, "main\r\n");
    free(shown);
    CHECK(rc == 0);
    CHECK_STR(s.answer, "main");
}

static void a_last_line_without_line_feed_still_counts(void)
{
    seen s = { 0 };
    char *shown = NULL;
    int rc = ask(&s, &shown, "main");
    free(shown);
    CHECK(rc == 0);
}

static void a_wrong_answer_refuses_and_says_how_to_go_on(void)
{
    static const char *const wrong[] = { "Main\n", "main \n", " main\n", "yes\n", "\n", "ma in\n" };
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        seen s = { 0 };
        char *shown = NULL;
        int rc = ask(&s, &shown, wrong[i]);
        int told = strstr(shown, "refused: the answer did not match; nothing was changed.") != NULL;
        free(shown);
        CHECK(rc == DR_EREFUSED);
        CHECK(told);
        CHECK_CONTAINS(err_last(), "drctl resume r-1");
        CHECK(s.count == 1);
        CHECK_STR(s.kinds[0], "confirmation-refused");
    }
}

static void only_the_first_line_is_the_answer(void)
{
    seen s = { 0 };
    char *shown = NULL;
    int rc = ask(&s, &shown, "no\nmain\n");
    free(shown);
    CHECK(rc == DR_EREFUSED);
    CHECK_STR(s.answer, "no");
}

static void end_of_input_refuses(void)
{
    seen s = { 0 };
    char *shown = NULL;
    int rc = ask(&s, &shown, "");
    free(shown);
    CHECK(rc == DR_EREFUSED);
    CHECK_STR(s.kinds[0], "confirmation-refused");
    CHECK_STR(s.answer, "(end of input)");
}

static void pre_approval_is_by_exact_step_name(void)
{
    char *approved[] = { "restore", "drop-old" };
    gate g = { .approved = approved, .approved_count = 2 };
    CHECK(gate_is_preapproved(&g, "restore"));
    CHECK(gate_is_preapproved(&g, "drop-old"));
    CHECK(!gate_is_preapproved(&g, "Restore"));
    CHECK(!gate_is_preapproved(&g, "restor"));
    CHECK(!gate_is_preapproved(&g, "verify"));
    gate none = { 0 };
    CHECK(!gate_is_preapproved(&none, "restore"));
}

TEST_SUITE(gate)
{
    REGISTER(the_prompt_names_the_step_why_and_the_challenge);
    REGISTER(the_prompt_shows_no_secret);
    REGISTER(only_the_exact_challenge_matches);
    REGISTER(the_challenge_typed_confirms);
    REGISTER(a_carriage_return_before_the_line_feed_is_not_part_of_the_answer);
    REGISTER(a_last_line_without_line_feed_still_counts);
    REGISTER(a_wrong_answer_refuses_and_says_how_to_go_on);
    REGISTER(only_the_first_line_is_the_answer);
    REGISTER(end_of_input_refuses);
    REGISTER(pre_approval_is_by_exact_step_name);
}
