/* localtime: instants as the operator reads and types them.
 *
 * A time typed without an offset is a time on the operator's clock: in
 * the zone TZ names, else the system's (psql and the JavaScript neonctl
 * runs on read it so too). A clock time the zone skips (the spring DST
 * gap) or shows twice (the autumn overlap) is refused, the message naming
 * both readings. Every instant a person must judge is shown in both forms,
 * local and UTC: 2026-06-01 14:30:00 Europe/Paris (12:30:00Z). What is
 * recorded stays UTC, with the zone beside it. */
#ifndef DRCTL_LOCALTIME_H
#define DRCTL_LOCALTIME_H

#include <stddef.h>

/* The operator's zone, by name: TZ (Europe/Paris), else /etc/timezone,
 * else the zoneinfo file /etc/localtime links to, else "UTC". */
const char *localtime_zone(void);

/* Shows later instants in zone (the one a run recorded, so a resume shows
 * them as its start did): TZ is set to it when zoneinfo knows it. */
void localtime_use_zone(const char *zone);

/* A timestamp an operator typed (timefmt's forms): with an offset as it
 * says; without one, on the operator's clock. DR_EUSAGE and a message on
 * a bad time, or one the zone skips or shows twice. */
int localtime_parse(double *epoch_out, const char *text);

/* epoch in both forms; in a zone that is UTC, RFC 3339 UTC alone. out
 * must hold 96 bytes. */
void localtime_show(char *out, size_t size, double epoch);

#endif
