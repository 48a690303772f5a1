#include "timefmt.h"

#include "err.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * algorithm): exact for every year, no timezone state involved. */
static long days_from_civil(long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long)doe - 719468;
}

static void civil_from_days(long *y, unsigned *m, unsigned *d, long z)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long yy = (long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static int days_in_month(long y, unsigned m)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* Reads exactly n digits. */
static int read_digits(int *out, const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int bad_timestamp(const char *text, const char *why)
{
    return err_set(DR_EUSAGE,
                   "'%s' is not a valid time (%s); expected RFC 3339 like "
                   "2026-01-11T14:30:00Z or 2026-01-11 14:30:00+01:00", text, why);
}

int timefmt_parse_timestamp(double *epoch_out, const char *text)
{
    const char *p = text;
    int year, month, day, hour, minute, second;
    if (read_digits(&year, &p, 4) || *p++ != '-' || read_digits(&month, &p, 2) ||
        *p++ != '-' || read_digits(&day, &p, 2))
        return bad_timestamp(text, "the date must be YYYY-MM-DD");
    if (*p != 'T' && *p != 't' && *p != ' ')
        return bad_timestamp(text, "a time of day must follow the date");
    p++;
    if (read_digits(&hour, &p, 2) || *p++ != ':' || read_digits(&minute, &p, 2) ||
        *p++ != ':' || read_digits(&second, &p, 2))
        return bad_timestamp(text, "the time of day must be HH:MM:SS");
    if (month < 1 || month > 12)
        return bad_timestamp(text, "no such month");
    if (day < 1 || day > days_in_month(year, (unsigned)month))
        return bad_timestamp(text, "no such day in that month");
    if (hour > 23 || minute > 59 || second > 59)
        return bad_timestamp(text, "no such time of day");
    double fraction = 0;
    if (*p == '.') {
        p++;
        double scale = 0.1;
        if (!isdigit((unsigned char)*p))
            return bad_timestamp(text, "digits must follow the decimal point");
        while (isdigit((unsigned char)*p)) {
            fraction += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
    }
    long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (read_digits(&oh, &p, 2) || *p++ != ':' || read_digits(&om, &p, 2) || oh > 23 || om > 59)
            return bad_timestamp(text, "the offset must be +hh:mm or -hh:mm");
        offset = sign * (oh * 3600L + om * 60L);
    }
    if (*p != '\0')
        return bad_timestamp(text, "unexpected text after the time");
    long days = days_from_civil(year, (unsigned)month, (unsigned)day);
    *epoch_out = (double)(days * 86400L + hour * 3600L + minute * 60L + second - offset) + fraction;
    return 0;
}

int timefmt_epoch_in_range(double epoch)
{
    return epoch >= TIMEFMT_EPOCH_MIN && epoch <= TIMEFMT_EPOCH_MAX;
}

void timefmt_format_utc(char *out, size_t size, double epoch)
{
    /* RFC 3339 has four-digit years; and past them the casts below would
     * overflow. */
    if (!(epoch >= TIMEFMT_EPOCH_MIN))
        epoch = TIMEFMT_EPOCH_MIN;
    else if (epoch > TIMEFMT_EPOCH_MAX)
        epoch = TIMEFMT_EPOCH_MAX;
    double whole = floor(epoch);
    long micros = lround((epoch - whole) * 1e6);
    if (micros >= 1000000) {
        whole += 1;
        micros -= 1000000;
    }
    long long secs = (long long)whole;
    long long days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    long rem = (long)(secs - days * 86400);
    long y;
    unsigned m, d;
    civil_from_days(&y, &m, &d, (long)days);
    int n = snprintf(out, size, "%04ld-%02u-%02uT%02ld:%02ld:%02ld", y, m, d,
                     rem / 3600, rem / 60 % 60, rem % 60);
    if (n < 0 || (size_t)n >= size)
        return;
    if (micros) {
        char frac[24];
        snprintf(frac, sizeof frac, "%06ld", micros);
        for (int i = 5; i > 0 && frac[i] == '0'; i--)
            frac[i] = '\0';
        snprintf(out + n, size - (size_t)n, ".%sZ", frac);
    } else {
        snprintf(out + n, size - (size_t)n, "Z");
    }
}

static int bad_duration(const char *text, const char *why)
{
    return err_set(DR_EUSAGE, "'%s' is not a valid duration (%s); expected a number and a unit "
                   "(ms, s, m, h, d, w) like 90s, 15m, 1h30m or 7d", text, why);
}

int timefmt_parse_duration(double *seconds_out, const char *text)
{
    const char *p = text;
    double total = 0;
    if (!*p)
        return bad_duration(text, "it is empty");
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return bad_duration(text, "a number must come first");
        char *end;
        double value = strtod(p, &end);
        p = end;
        double unit;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 0.001;
            p += 2;
        } else if (*p == 's') {
            unit = 1;
            p++;
        } else if (*p == 'm') {
            unit = 60;
            p++;
        } else if (*p == 'h') {
            unit = 3600;
            p++;
        } else if (*p == 'd') {
            unit = 86400;
            p++;
        } else if (*p == 'w') {
            unit = 604800;
            p++;
        } else {
            return bad_duration(text, *p ? "unknown unit" : "the unit is missing");
        }
        total += value * unit;
    }
    if (!isfinite(total) || total > 3.2e9)
        return bad_duration(text, "it is too long");
    *seconds_out = total;
    return 0;
}

/* Whole seconds beyond which a duration is shown in hours only: past it a
 * double no longer holds whole seconds, and long long would overflow. */
#define DURATION_EXACT_LIMIT 9.0e15

void timefmt_format_duration(char *out, size_t size, double seconds)
{
    if (isnan(seconds)) {
        snprintf(out, size, "an unknown time");
    } else if (seconds < 1) {
        snprintf(out, size, "%.0f ms", seconds * 1000);
    } else if (seconds < 60) {
        snprintf(out, size, "%.1fs", seconds);
    } else if (seconds < DURATION_EXACT_LIMIT) {
        long long whole = (long long)seconds;
        if (whole < 3600)
            snprintf(out, size, "%lldm%02llds", whole / 60, whole % 60);
        else
            snprintf(out, size, "%lldh%02lldm", whole / 3600, whole / 60 % 60);
    } else {
        snprintf(out, size, "%.3gh", seconds / 3600);
    }
}

double timefmt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double timefmt_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
