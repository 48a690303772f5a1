/* timefmt: the time forms a runbook and an operator use.
 *
 * Timestamps: RFC 3339 (2026-01-11T14:30:00Z, 2026-01-11T14:30:00.250+01:00)
 * and the form operators type at 3 a.m., 2026-01-11 14:30:00[Z|+hh:mm]. Here
 * a time without an offset is UTC (the API's texts and the trail's own);
 * drctl reads what an operator types on the operator's clock
 * (engine/localtime.h), then records it in UTC.
 * Durations: one or more number+unit pairs, units ms s m h d w (90s, 15m,
 * 1h30m, 7d). */
#ifndef DRCTL_TIMEFMT_H
#define DRCTL_TIMEFMT_H

#include <stddef.h>

/* Parses text to seconds since the epoch (fractions kept). Rejects dates
 * that do not exist (2026-02-30) with DR_EUSAGE and a message. */
int timefmt_parse_timestamp(double *epoch_out, const char *text);

/* The instants RFC 3339 can write: 0000-01-01T00:00:00Z to
 * 9999-12-31T23:59:59Z. */
#define TIMEFMT_EPOCH_MIN (-62167219200.0)
#define TIMEFMT_EPOCH_MAX 253402300799.0
int timefmt_epoch_in_range(double epoch);

/* Formats epoch as RFC 3339 UTC; fractional digits only when present
 * (up to microseconds). out must hold 40 bytes. An epoch out of range
 * (or NaN) is written as the nearest end of the range. */
void timefmt_format_utc(char *out, size_t size, double epoch);

/* Parses a duration to seconds; a bare number without unit is refused. */
int timefmt_parse_duration(double *seconds_out, const char *text);

/* Formats seconds as a short duration for people: 12 ms, 3.4s, 2m05s,
 * 876600h00m; any double is safe. */
void timefmt_format_duration(char *out, size_t size, double seconds);

/* Wall clock, seconds since the epoch with microseconds. */
double timefmt_now(void);

/* Monotonic clock in seconds, for deadlines and durations. */
double timefmt_monotonic(void);

#endif
