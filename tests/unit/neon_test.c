#include "test.h"

#include "neon.h"

#include <curl/curl.h>

/* ---- which tries are retried ---- */

static void the_busy_and_failing_statuses_are_retried(void)
{
    static const long retried[] = { 423, 429, 500, 502, 503, 504 };
    for (size_t i = 0; i < sizeof retried / sizeof *retried; i++) {
        CHECK(neon_retryable_status(retried[i]));
        CHECK(neon_classify("GET", CURLE_OK, retried[i], 1, 0) == NEON_RETRY);
        CHECK(neon_classify("POST", CURLE_OK, retried[i], 1, 0) == NEON_RETRY);
    }
}

static void client_errors_and_other_server_errors_are_not_retried(void)
{
    static const long final[] = { 400, 403, 404, 405, 409, 412, 422, 501, 505, 599, 302 };
    for (size_t i = 0; i < sizeof final / sizeof *final; i++) {
        CHECK(!neon_retryable_status(final[i]));
        CHECK(neon_classify("GET", CURLE_OK, final[i], 1, 0) == NEON_FAILED);
    }
}

static void a_refused_key_is_told_apart(void)
{
    CHECK(!neon_retryable_status(401));
    CHECK(neon_classify("GET", CURLE_OK, 401, 1, 0) == NEON_KEY_REFUSED);
    CHECK(neon_classify("DELETE", CURLE_OK, 401, 1, 1) == NEON_KEY_REFUSED);
}

static void every_2xx_succeeds(void)
{
    CHECK(neon_classify("GET", CURLE_OK, 200, 1, 0) == NEON_SUCCEEDED);
    CHECK(neon_classify("POST", CURLE_OK, 201, 1, 0) == NEON_SUCCEEDED);
    CHECK(neon_classify("DELETE", CURLE_OK, 204, 1, 1) == NEON_SUCCEEDED);
    CHECK(neon_classify("PATCH", CURLE_OK, 299, 1, 0) == NEON_SUCCEEDED);
    CHECK(neon_classify("GET", CURLE_OK, 300, 1, 0) == NEON_FAILED);
}

static void connection_failures_are_retried_unless_a_post_was_sent(void)
{
    static const char *const methods[] = { "GET", "PATCH", "PUT", "DELETE" };
    static const int broken[] = { CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_RECV_ERROR,
                                  CURLE_SEND_ERROR, CURLE_GOT_NOTHING, CURLE_COULDNT_RESOLVE_HOST };
    for (size_t m = 0; m < sizeof methods / sizeof *methods; m++)
        for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
            CHECK(neon_classify(methods[m], broken[i], 0, 1, 0) == NEON_RETRY);
            CHECK(neon_classify(methods[m], broken[i], 0, 0, 0) == NEON_RETRY);
        }
    /* A POST that never left can be sent again: nothing happened. */
    CHECK(neon_classify("POST", CURLE_COULDNT_CONNECT, 0, 0, 0) == NEON_RETRY);
}

static void a_post_sent_without_answer_has_an_unknown_outcome(void)
{
    CHECK(neon_classify("POST", CURLE_GOT_NOTHING, 0, 1, 0) == NEON_OUTCOME_UNKNOWN);
    CHECK(neon_classify("POST", CURLE_OPERATION_TIMEDOUT, 0, 1, 0) == NEON_OUTCOME_UNKNOWN);
    CHECK(neon_classify("POST", CURLE_RECV_ERROR, 0, 1, 1) == NEON_OUTCOME_UNKNOWN);
}

static void a_malformed_request_is_never_retried(void)
{
    static const int permanent[] = { CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL, CURLE_BAD_FUNCTION_ARGUMENT,
                                     CURLE_NOT_BUILT_IN };
    for (size_t i = 0; i < sizeof permanent / sizeof *permanent; i++) {
        CHECK(neon_classify("GET", permanent[i], 0, 0, 0) == NEON_REQUEST_REFUSED);
        /* even a sent POST: the request is what is wrong */
        CHECK(neon_classify("POST", permanent[i], 0, 1, 0) == NEON_REQUEST_REFUSED);
    }
}

static void a_delete_whose_answer_was_lost_then_404_is_done(void)
{
    CHECK(neon_classify("DELETE", CURLE_OK, 404, 1, 1) == NEON_ALREADY_DONE);
    /* Without a lost answer before, 404 is a failure... */
    CHECK(neon_classify("DELETE", CURLE_OK, 404, 1, 0) == NEON_FAILED);
    /* ...and only a DELETE is taken as done by its 404. */
    CHECK(neon_classify("GET", CURLE_OK, 404, 1, 1) == NEON_FAILED);
    CHECK(neon_classify("PATCH", CURLE_OK, 404, 1, 1) == NEON_FAILED);
}

/* ---- Retry-After ---- */

static void retry_after_in_seconds_is_read(void)
{
    CHECK(neon_parse_retry_after(" 3\r\n") == 3);
    CHECK(neon_parse_retry_after("120") == 120);
    CHECK(neon_parse_retry_after("\t7") == 7);
    CHECK(neon_parse_retry_after(" 1.5\r\n") == 1.5);
}

static void an_http_date_is_not_read_as_seconds(void)
{
    CHECK(neon_parse_retry_after(" Wed, 21 Oct 2015 07:28:00 GMT\r\n") == 0);
    CHECK(neon_parse_retry_after("Fri, 31 Dec 1999 23:59:59 GMT") == 0);
}

static void garbage_zero_and_negative_values_give_no_wait(void)
{
    CHECK(neon_parse_retry_after("") == 0);
    CHECK(neon_parse_retry_after(" \r\n") == 0);
    CHECK(neon_parse_retry_after(" soon\r\n") == 0);
    CHECK(neon_parse_retry_after(" 0\r\n") == 0);
    CHECK(neon_parse_retry_after(" -5\r\n") == 0);
    CHECK(neon_parse_retry_after(" -0.1") == 0);
    CHECK(neon_parse_retry_after(" inf") == 0);
    CHECK(neon_parse_retry_after(" nan") == 0);
    CHECK(neon_parse_retry_after(" 1e999") == 0); /* overflows to infinity */
}

static void a_number_followed_by_text_counts_its_number(void)
{
    CHECK(neon_parse_retry_after(" 12 seconds") == 12);
}

static void a_huge_retry_after_is_kept_and_ends_the_call(void)
{
    double huge = neon_parse_retry_after(" 86400000\r\n");
    CHECK(huge == 86400000);
    /* Waiting it would outlast the call: the call gives up instead. */
    CHECK(neon_gives_up(1, 6, 120, neon_retry_wait(huge, 0.2, 0.5)));
}

/* ---- waits and their caps ---- */

static void retry_after_is_the_wait_when_given(void)
{
    CHECK(neon_retry_wait(3, 0.2, 0) == 3);
    CHECK(neon_retry_wait(3, 8, 1) == 3);
}

static void without_retry_after_the_backoff_is_jittered_into_its_upper_half(void)
{
    CHECK(neon_retry_wait(0, 0.2, 0) == 0.1);
    CHECK(neon_retry_wait(0, 0.2, 1) == 0.2);
    CHECK(neon_retry_wait(0, 4, 0.5) == 3);
}

static void the_backoff_doubles_up_to_its_cap(void)
{
    double b = 0.2;
    static const double expected[] = { 0.4, 0.8, 1.6, 3.2, 6.4, 8, 8, 8 };
    for (size_t i = 0; i < sizeof expected / sizeof *expected; i++) {
        b = neon_next_backoff(b, 8);
        CHECK(b == expected[i]);
    }
    CHECK(neon_next_backoff(5, 8) == 8);
    CHECK(neon_next_backoff(3, 8) == 6);
}

static void a_call_gives_up_at_its_attempts_or_its_deadline(void)
{
    CHECK(!neon_gives_up(1, 6, 100, 0.2));
    CHECK(!neon_gives_up(5, 6, 100, 0.2));
    CHECK(neon_gives_up(6, 6, 100, 0.2));
    CHECK(neon_gives_up(7, 6, 100, 0.2));
    CHECK(neon_gives_up(1, 6, 2.9, 3));
    CHECK(!neon_gives_up(1, 6, 3, 3));
    CHECK(neon_gives_up(1, 6, -1, 0.1)); /* the deadline has passed */
}

TEST_SUITE(neon)
{
    REGISTER(the_busy_and_failing_statuses_are_retried);
    REGISTER(client_errors_and_other_server_errors_are_not_retried);
    REGISTER(a_refused_key_is_told_apart);
    REGISTER(every_2xx_succeeds);
    REGISTER(connection_failures_are_retried_unless_a_post_was_sent);
    REGISTER(a_post_sent_without_answer_has_an_unknown_outcome);
    REGISTER(a_malformed_request_is_never_retried);
    REGISTER(a_delete_whose_answer_was_lost_then_404_is_done);
    REGISTER(retry_after_in_seconds_is_read);
    REGISTER(an_http_date_is_not_read_as_seconds);
    REGISTER(garbage_zero_and_negative_values_give_no_wait);
    REGISTER(a_number_followed_by_text_counts_its_number);
    REGISTER(a_huge_retry_after_is_kept_and_ends_the_call);
    REGISTER(retry_after_is_the_wait_when_given);
    REGISTER(without_retry_after_the_backoff_is_jittered_into_its_upper_half);
    REGISTER(the_backoff_doubles_up_to_its_cap);
    REGISTER(a_call_gives_up_at_its_attempts_or_its_deadline);
}
