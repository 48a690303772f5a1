/* timefmt: timestamps and durations as operators and runbooks type them.
 *
 * Beyond "no crash": a timestamp that parses and is in RFC 3339's range is
 * formatted as UTC, and that text parses back to the same instant (to the
 * microsecond the formatter keeps) and formats to the same text again; one
 * out of the range is written as the nearest end, which parses back inside
 * it. A duration that parses is finite, not negative and at most the
 * documented bound; every formatter writes a NUL-terminated text that fits
 * the buffer, for the parsed values and for any double the input's bytes
 * make. */
#include "fuzz.h"

#include "timefmt.h"

#include <math.h>

/* The formatter keeps microseconds; a double near year 9999 holds a little
 * less, so a few units in the last place are allowed too. */
static int same_instant(double a, double b)
{
    double ulp = fabs(a) * 2.3e-16;
    return fabs(a - b) <= 0.5e-6 + 4 * ulp + 1e-9;
}

static void check_formatted_reparses(double epoch)
{
    char text[48], again[48];
    timefmt_format_utc(text, sizeof text, epoch);
    FUZZ_CHECK(strlen(text) < 40);
    double back;
    FUZZ_CHECK(timefmt_parse_timestamp(&back, text) == 0);
    FUZZ_CHECK(timefmt_epoch_in_range(back));
    if (timefmt_epoch_in_range(epoch))
        FUZZ_CHECK(same_instant(epoch, back));
    timefmt_format_utc(again, sizeof again, back);
    FUZZ_CHECK(strcmp(text, again) == 0);
}

static void check_duration_text(double seconds)
{
    char out[64], tiny[6];
    timefmt_format_duration(out, sizeof out, seconds);
    FUZZ_CHECK(strlen(out) > 0 && strlen(out) < sizeof out);
    timefmt_format_duration(tiny, sizeof tiny, seconds);
    FUZZ_CHECK(strlen(tiny) < sizeof tiny);
}

static void fuzz_text(const char *text)
{
    double epoch;
    if (timefmt_parse_timestamp(&epoch, text) == 0) {
        FUZZ_CHECK(isfinite(epoch));
        check_formatted_reparses(epoch);
    }
    double seconds;
    if (timefmt_parse_duration(&seconds, text) == 0) {
        FUZZ_CHECK(isfinite(seconds) && seconds >= 0 && seconds <= 3.2e9);
        check_duration_text(seconds);
    }
}

/* The first eight bytes as a double: every value the formatters may be
 * handed, NaN and the infinities included. */
static void fuzz_double(const uint8_t *data, size_t size)
{
    if (size < sizeof(double))
        return;
    double v;
    memcpy(&v, data, sizeof v);
    char text[48];
    timefmt_format_utc(text, sizeof text, v);
    FUZZ_CHECK(strlen(text) < 40);
    if (isfinite(v))
        check_formatted_reparses(v);
    check_duration_text(v);
    /* A cut buffer still ends with a NUL. */
    char cut[12];
    timefmt_format_utc(cut, sizeof cut, v);
    FUZZ_CHECK(strlen(cut) < sizeof cut);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstring(data, size);
    fuzz_text(text);
    free(text);
    fuzz_double(data, size);
    return 0;
}
