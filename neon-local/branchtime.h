/* branchtime: when a branch is. A branch (or a restore, or a snapshot) can
 * be made at a point of its parent's past, parent_timestamp or parent_lsn,
 * and a branch can expire at expires_at. Both are checked here, before
 * anything changes. */
#ifndef DRCTL_NL_BRANCHTIME_H
#define DRCTL_NL_BRANCHTIME_H

#include "server.h"

#include <cjson/cJSON.h>

/* Neon's limit: "Maximum expiration is 30 days from the current time". */
#define NL_MAX_BRANCH_TTL_SECONDS (30 * 86400.0)

/* spec's parent_timestamp / parent_lsn: *target is the recovery target
 * setting of a branch at that point of parent's past (NULL when spec names
 * none, the parent's head), checked against the future, the project's
 * history retention window and the start of the parent's own history
 * (423 while that is still being recorded). -1 with *bad set when refused. */
int nl_point_in_time(char **target, nl_response *bad, cJSON *project, const cJSON *parent, const cJSON *spec);

/* branch.expires_at as the spec and Neon's branch expiration guide take
 * it: an RFC 3339 date-time with 'T' and a time zone (Z or +hh:mm),
 * fractions allowed but only whole seconds kept, in the future and at most
 * 30 days ahead. Checked on the real clock, which is the one clients read;
 * the instant goes to *due. -1 with *bad set when refused. */
int nl_parse_expires_at(double *due, nl_response *bad, const cJSON *value);

/* expires_at in UTC, whole seconds, and ttl_interval_seconds: the time from
 * now to then, which a reset from the parent applies again. */
void nl_branch_set_expiry(cJSON *branch, double due);

void nl_branch_clear_expiry(cJSON *branch);

#endif
