#include "test.h"

#include "err.h"
#include "localtime.h"
#include "timefmt.h"

#include <stdio.h>
#include <string.h>

static double parsed(const char *text)
{
    double t = -1;
    if (localtime_parse(&t, text) != 0)
        fprintf(stderr, "cannot parse %s: %s\n", text, err_last());
    return t;
}

static void a_time_without_offset_is_read_on_the_operators_clock(void)
{
    localtime_use_zone("Europe/Paris");
    CHECK_STR(localtime_zone(), "Europe/Paris");
    char out[48];
    timefmt_format_utc(out, sizeof out, parsed("2026-06-01 14:30:00"));
    CHECK_STR(out, "2026-06-01T12:30:00Z"); /* summer: +02:00 */
    timefmt_format_utc(out, sizeof out, parsed("2026-01-11T14:30:00.25"));
    CHECK_STR(out, "2026-01-11T13:30:00.25Z"); /* winter: +01:00 */
    /* An offset given is the offset meant, whatever the zone. */
    timefmt_format_utc(out, sizeof out, parsed("2026-06-01T14:30:00Z"));
    CHECK_STR(out, "2026-06-01T14:30:00Z");
    timefmt_format_utc(out, sizeof out, parsed("2026-06-01T14:30:00-05:00"));
    CHECK_STR(out, "2026-06-01T19:30:00Z");
    localtime_use_zone("UTC");
}

static void a_time_the_clocks_skip_or_show_twice_is_refused_with_both_readings(void)
{
    localtime_use_zone("Europe/Paris");
    double t = 0;
    CHECK(localtime_parse(&t, "2026-03-29 02:30:00") == DR_EUSAGE);
    CHECK(strstr(err_last(), "does not exist in Europe/Paris") != NULL);
    CHECK(strstr(err_last(), "+01:00 it is 01:30:00Z") != NULL);
    CHECK(strstr(err_last(), "+02:00 00:30:00Z") != NULL);
    CHECK(localtime_parse(&t, "2026-10-25 02:30:00") == DR_EUSAGE);
    CHECK(strstr(err_last(), "happens twice in Europe/Paris") != NULL);
    CHECK(strstr(err_last(), "+02:00 (00:30:00Z)") != NULL);
    CHECK(strstr(err_last(), "+01:00 (01:30:00Z)") != NULL);
    /* With the offset, either reading is taken. */
    char out[48];
    timefmt_format_utc(out, sizeof out, parsed("2026-10-25 02:30:00+01:00"));
    CHECK_STR(out, "2026-10-25T01:30:00Z");
    /* Around the change, each time has one reading. */
    timefmt_format_utc(out, sizeof out, parsed("2026-10-25 03:30:00"));
    CHECK_STR(out, "2026-10-25T02:30:00Z");
    CHECK(localtime_parse(&t, "2026-02-30 10:00:00") == DR_EUSAGE); /* still no such day */
    localtime_use_zone("UTC");
}

static void an_instant_is_shown_local_and_utc(void)
{
    char out[128];
    localtime_use_zone("Europe/Paris");
    localtime_show(out, sizeof out, parsed("2026-06-01T12:30:00Z"));
    CHECK_STR(out, "2026-06-01 14:30:00 Europe/Paris (12:30:00Z)");
    localtime_use_zone("America/New_York");
    localtime_show(out, sizeof out, parsed("2026-06-01T02:30:00.5Z"));
    CHECK_STR(out, "2026-05-31 22:30:00.5 America/New_York (2026-06-01T02:30:00.5Z)");
    localtime_use_zone("UTC");
    localtime_show(out, sizeof out, parsed("2026-06-01T12:30:00Z"));
    CHECK_STR(out, "2026-06-01T12:30:00Z");
}

static void a_zone_that_is_not_a_zone_name_is_not_taken(void)
{
    localtime_use_zone("UTC");
    localtime_use_zone("../../etc/passwd");
    CHECK_STR(localtime_zone(), "UTC");
    localtime_use_zone("/etc/localtime");
    CHECK_STR(localtime_zone(), "UTC");
    localtime_use_zone("No/Such_Zone");
    CHECK_STR(localtime_zone(), "UTC");
}

TEST_SUITE(localtime)
{
    REGISTER(a_time_without_offset_is_read_on_the_operators_clock);
    REGISTER(a_time_the_clocks_skip_or_show_twice_is_refused_with_both_readings);
    REGISTER(an_instant_is_shown_local_and_utc);
    REGISTER(a_zone_that_is_not_a_zone_name_is_not_taken);
}
