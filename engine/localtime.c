#include "localtime.h"

#include "err.h"
#include "fsio.h"
#include "timefmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char zone_name[128];

/* The part of a zoneinfo path after ".../zoneinfo/", or NULL. */
static const char *after_zoneinfo(const char *path)
{
    const char *at = strstr(path, "zoneinfo/");
    return at ? at + strlen("zoneinfo/") : NULL;
}

static void set_zone_name(const char *name)
{
    snprintf(zone_name, sizeof zone_name, "%s", name && *name ? name : "UTC");
    zone_name[strcspn(zone_name, "\r\n")] = '\0';
}

static void find_zone(void)
{
    const char *tz = getenv("TZ");
    if (tz) {
        if (*tz == ':')
            tz++;
        set_zone_name(after_zoneinfo(tz) ? after_zoneinfo(tz) : tz);
        return;
    }
    char *text = NULL;
    if (fsio_read_file(&text, NULL, "/etc/timezone") == 0 && text[0] && text[0] != '\n') {
        set_zone_name(text);
        free(text);
        return;
    }
    free(text);
    char link[512];
    ssize_t n = readlink("/etc/localtime", link, sizeof link - 1);
    if (n > 0) {
        link[n] = '\0';
        set_zone_name(after_zoneinfo(link));
        return;
    }
    set_zone_name("UTC");
}

const char *localtime_zone(void)
{
    if (!zone_name[0]) {
        tzset();
        find_zone();
    }
    return zone_name;
}

void localtime_use_zone(const char *zone)
{
    if (!zone || !*zone || strcmp(zone, localtime_zone()) == 0)
        return;
    /* A zone name, never a path: it comes from a run's files. */
    char path[256];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", zone);
    if (zone[0] == '/' || strstr(zone, "..") || !fsio_exists(path))
        return;
    setenv("TZ", zone, 1);
    tzset();
    set_zone_name(zone);
}

/* The zone's offset from UTC at t, in seconds. */
static long offset_at(double t)
{
    time_t whole = (time_t)floor(t);
    struct tm tm;
    if (!localtime_r(&whole, &tm))
        return 0;
    return tm.tm_gmtoff;
}

/* Whether text ends with an offset (Z, +hh:mm, -hh:mm) after its time. */
static int has_offset(const char *text)
{
    size_t n = strlen(text);
    if (n > 19 && (text[n - 1] == 'Z' || text[n - 1] == 'z'))
        return 1;
    return n > 19 + 5 && (text[n - 6] == '+' || text[n - 6] == '-') && text[n - 3] == ':';
}

/* "+02:00" */
static void format_offset(char out[8], long offset)
{
    long a = labs(offset);
    snprintf(out, 8, "%c%02ld:%02ld", offset < 0 ? '-' : '+', (a / 3600) % 100, a / 60 % 60);
}

/* The time of day of an RFC 3339 UTC text, "12:30:00Z". */
static const char *time_part(const char *utc)
{
    const char *t = strchr(utc, 'T');
    return t ? t + 1 : utc;
}

int localtime_parse(double *epoch_out, const char *text)
{
    double civil;
    int rc = timefmt_parse_timestamp(&civil, text);
    if (rc || has_offset(text)) {
        if (rc == 0)
            *epoch_out = civil;
        return rc;
    }
    /* civil is the clock time read as if in UTC. An offset the zone has
     * within a day either side gives a reading; it is one only if the
     * zone has that offset at that instant. */
    long before = offset_at(civil - 86400), after = offset_at(civil + 86400);
    double readings[2];
    int count = 0;
    long candidates[2] = { before, after };
    for (int i = 0; i < (before == after ? 1 : 2); i++)
        if (offset_at(civil - candidates[i]) == candidates[i]) {
            readings[count++] = civil - candidates[i];
        }
    if (count == 1) {
        *epoch_out = readings[0];
        return 0;
    }
    const char *zone = localtime_zone();
    char off_a[8], off_b[8], utc_a[48], utc_b[48];
    format_offset(off_a, before);
    format_offset(off_b, after);
    timefmt_format_utc(utc_a, sizeof utc_a, civil - before);
    timefmt_format_utc(utc_b, sizeof utc_b, civil - after);
    if (count == 0)
        return err_set(DR_EUSAGE,
                       "'%s' does not exist in %s: its clocks skip that time (read at %s it is %s, at %s %s); "
                       "give the offset you mean, e.g. %s%s",
                       text, zone, off_a, time_part(utc_a), off_b, time_part(utc_b), text, off_a);
    return err_set(DR_EUSAGE,
                   "'%s' happens twice in %s: at %s (%s) and at %s (%s); give the offset you mean, e.g. %s%s", text,
                   zone, off_a, time_part(utc_a), off_b, time_part(utc_b), text, off_a);
}

static int zone_is_utc(const char *zone)
{
    static const char *const names[] = { "UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal",
                                         "Zulu", "Etc/Zulu", "UTC0", "GMT", "Etc/GMT", "GMT0", NULL };
    for (const char *const *n = names; *n; n++)
        if (strcmp(zone, *n) == 0)
            return 1;
    return 0;
}

void localtime_show(char *out, size_t size, double epoch)
{
    char utc[48], local[48];
    timefmt_format_utc(utc, sizeof utc, epoch);
    long offset = offset_at(epoch);
    const char *zone = localtime_zone();
    if (offset == 0 && zone_is_utc(zone)) {
        snprintf(out, size, "%s", utc);
        return;
    }
    timefmt_format_utc(local, sizeof local, epoch + (double)offset);
    local[strcspn(local, "Z")] = '\0';
    char *t = strchr(local, 'T');
    if (t)
        *t = ' ';
    /* The UTC date only when it is not the local one. */
    snprintf(out, size, "%s %s (%s)", local, zone, strncmp(local, utc, 10) == 0 ? time_part(utc) : utc);
}
