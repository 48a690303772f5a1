#include "test.h"

#include "err.h"
#include "timefmt.h"

#include <math.h>

static void a_utc_timestamp_parses_to_its_epoch(void)
{
    double t;
    CHECK(timefmt_parse_timestamp(&t, "2026-01-11T14:30:00Z") == 0);
    CHECK(t == 1768141800.0);
}

static void an_offset_is_applied_and_shown_back_in_utc(void)
{
    double t;
    char out[48];
    CHECK(timefmt_parse_timestamp(&t, "2026-01-11 14:30:00+01:00") == 0);
    timefmt_format_utc(out, sizeof out, t);
    CHECK_STR(out, "2026-01-11T13:30:00Z");
    CHECK(timefmt_parse_timestamp(&t, "2026-01-11T14:30:00-05:30") == 0);
    timefmt_format_utc(out, sizeof out, t);
    CHECK_STR(out, "2026-01-11T20:00:00Z");
}

static void a_time_without_offset_is_utc(void)
{
    double a, b;
    CHECK(timefmt_parse_timestamp(&a, "2026-01-11 14:30:00") == 0);
    CHECK(timefmt_parse_timestamp(&b, "2026-01-11T14:30:00Z") == 0);
    CHECK(a == b);
}

static void fractions_of_a_second_are_kept(void)
{
    double t;
    char out[48];
    CHECK(timefmt_parse_timestamp(&t, "2026-01-11T14:30:00.25Z") == 0);
    timefmt_format_utc(out, sizeof out, t);
    CHECK_STR(out, "2026-01-11T14:30:00.25Z");
}

static void dates_that_do_not_exist_are_refused(void)
{
    double t;
    CHECK(timefmt_parse_timestamp(&t, "2026-02-30T00:00:00Z") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "no such day");
    CHECK(timefmt_parse_timestamp(&t, "2026-13-01T00:00:00Z") == DR_EUSAGE);
    CHECK(timefmt_parse_timestamp(&t, "2026-01-01T24:00:00Z") == DR_EUSAGE);
    CHECK(timefmt_parse_timestamp(&t, "2024-02-29T00:00:00Z") == 0); /* leap year */
    CHECK(timefmt_parse_timestamp(&t, "2026-02-29T00:00:00Z") == DR_EUSAGE);
}

static void malformed_timestamps_say_the_expected_form(void)
{
    double t;
    CHECK(timefmt_parse_timestamp(&t, "yesterday") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "2026-01-11T14:30:00Z");
    CHECK(timefmt_parse_timestamp(&t, "2026-01-11") == DR_EUSAGE);
    CHECK(timefmt_parse_timestamp(&t, "2026-01-11T14:30:00Zjunk") == DR_EUSAGE);
    CHECK(timefmt_parse_timestamp(&t, "2026-01-11T14:30:00+1") == DR_EUSAGE);
}

static void durations_take_units_and_combinations(void)
{
    double s;
    CHECK(timefmt_parse_duration(&s, "90s") == 0 && s == 90);
    CHECK(timefmt_parse_duration(&s, "15m") == 0 && s == 900);
    CHECK(timefmt_parse_duration(&s, "7d") == 0 && s == 604800);
    CHECK(timefmt_parse_duration(&s, "1h30m") == 0 && s == 5400);
    CHECK(timefmt_parse_duration(&s, "250ms") == 0 && s == 0.25);
    CHECK(timefmt_parse_duration(&s, "2w") == 0 && s == 1209600);
}

static void durations_without_unit_or_with_junk_are_refused(void)
{
    double s;
    CHECK(timefmt_parse_duration(&s, "90") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "unit is missing");
    CHECK(timefmt_parse_duration(&s, "5y") == DR_EUSAGE);
    CHECK(timefmt_parse_duration(&s, "") == DR_EUSAGE);
    CHECK(timefmt_parse_duration(&s, "-5s") == DR_EUSAGE);
}

static void durations_of_a_century_are_shown_in_hours_exactly(void)
{
    char out[48];
    timefmt_format_duration(out, sizeof out, 100 * 365.25 * 86400);
    CHECK_STR(out, "876600h00m");
    timefmt_format_duration(out, sizeof out, 2147483648.0); /* one past INT_MAX seconds */
    CHECK_STR(out, "596523h14m");
    timefmt_format_duration(out, sizeof out, 3599.5);
    CHECK_STR(out, "59m59s");
    timefmt_format_duration(out, sizeof out, 5400);
    CHECK_STR(out, "1h30m");
}

static void durations_no_clock_can_reach_are_still_written(void)
{
    char out[48];
    timefmt_format_duration(out, sizeof out, 1e300);
    CHECK_STR(out, "2.78e+296h");
    timefmt_format_duration(out, sizeof out, INFINITY);
    CHECK_STR(out, "infh");
    timefmt_format_duration(out, sizeof out, NAN);
    CHECK_STR(out, "an unknown time");
}

static void times_beyond_four_digit_years_are_written_as_the_nearest_end(void)
{
    char out[48];
    timefmt_format_utc(out, sizeof out, 1e300);
    CHECK_STR(out, "9999-12-31T23:59:59Z");
    timefmt_format_utc(out, sizeof out, -1e300);
    CHECK_STR(out, "0000-01-01T00:00:00Z");
    timefmt_format_utc(out, sizeof out, TIMEFMT_EPOCH_MAX + 0.5);
    CHECK_STR(out, "9999-12-31T23:59:59Z");
    CHECK(timefmt_epoch_in_range(0) && timefmt_epoch_in_range(TIMEFMT_EPOCH_MAX));
    CHECK(!timefmt_epoch_in_range(TIMEFMT_EPOCH_MAX + 1) && !timefmt_epoch_in_range(NAN));
    double t;
    CHECK(timefmt_parse_timestamp(&t, "9999-12-31T23:59:59Z") == 0 && t == TIMEFMT_EPOCH_MAX);
    CHECK(timefmt_parse_timestamp(&t, "0000-01-01T00:00:00Z") == 0 && t == TIMEFMT_EPOCH_MIN);
}

TEST_SUITE(timefmt)
{
    REGISTER(a_utc_timestamp_parses_to_its_epoch);
    REGISTER(an_offset_is_applied_and_shown_back_in_utc);
    REGISTER(a_time_without_offset_is_utc);
    REGISTER(fractions_of_a_second_are_kept);
    REGISTER(dates_that_do_not_exist_are_refused);
    REGISTER(malformed_timestamps_say_the_expected_form);
    REGISTER(durations_take_units_and_combinations);
    REGISTER(durations_without_unit_or_with_junk_are_refused);
    REGISTER(durations_of_a_century_are_shown_in_hours_exactly);
    REGISTER(durations_no_clock_can_reach_are_still_written);
    REGISTER(times_beyond_four_digit_years_are_written_as_the_nearest_end);
}
