#include "branchtime.h"

#include "buf.h"
#include "jsonfield.h"
#include "postgres.h"
#include "state.h"
#include "timefmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int valid_lsn(const char *text)
{
    const char *slash = strchr(text, '/');
    if (!slash || slash == text || !slash[1] || strlen(text) > 17)
        return 0;
    for (const char *p = text; *p; p++)
        if (p != slash && !strchr("0123456789ABCDEFabcdef", *p))
            return 0;
    return 1;
}

static unsigned long long lsn_value(const char *text)
{
    unsigned hi = 0, lo = 0;
    sscanf(text, "%X/%X", &hi, &lo);
    return (unsigned long long)hi << 32 | lo;
}

/* The recovery target of parent_lsn: a valid LSN not beyond the end of
 * the parent's WAL (read from its server when it runs). */
static int lsn_target(char **target, nl_response *bad, cJSON *project, const cJSON *parent, const cJSON *lsn)
{
    if (!cJSON_IsString(lsn) || !valid_lsn(lsn->valuestring)) {
        *bad = nl_error(400, "", "parent_lsn must be an LSN like 0/1A2B3C4");
        return -1;
    }
    const char *parent_id = json_text(parent, "id", NULL);
    int port = nl_endpoint_port(nl_endpoint_of(project, parent_id));
    char *end = port ? nl_pg_current_lsn(port) : NULL;
    int beyond = end && lsn_value(lsn->valuestring) > lsn_value(end);
    if (beyond)
        *bad = nl_error(400, "", "parent_lsn %s is beyond the end of branch %s's WAL (%s)", lsn->valuestring,
                        parent_id, end);
    free(end);
    if (beyond)
        return -1;
    *target = xasprintf("recovery_target_lsn = '%s'", lsn->valuestring);
    return 0;
}

/* Why instant t cannot be reached on parent (*bad set, -1), or 0. */
static int check_reachable(nl_response *bad, cJSON *project, const cJSON *parent, const char *text, double t)
{
    double now = timefmt_now();
    const char *parent_id = json_text(parent, "id", NULL);
    const cJSON *retention = cJSON_GetObjectItemCaseSensitive(project, "history_retention_seconds");
    const cJSON *history = cJSON_GetObjectItemCaseSensitive(parent, NL_HISTORY_FROM);
    if (t > now) {
        *bad = nl_error(400, "", "parent_timestamp %s is in the future", text);
        return -1;
    }
    if (cJSON_IsNumber(retention) && t < now - retention->valuedouble) {
        *bad = nl_error(400, "", "parent_timestamp %s is outside the project's history retention window (%.0f "
                        "seconds)", text, retention->valuedouble);
        return -1;
    }
    if (!cJSON_IsNumber(history) && nl_endpoint_of(project, parent_id)) {
        *bad = nl_error(423, "", "the history of branch %s is still being recorded; try again in a moment",
                        parent_id);
        return -1;
    }
    if (!cJSON_IsNumber(history) || t < history->valuedouble) {
        char from[48] = "?";
        if (cJSON_IsNumber(history))
            timefmt_format_utc(from, sizeof from, history->valuedouble);
        *bad = nl_error(400, "", "parent_timestamp %s is before the history of branch %s starts (%s)", text,
                        parent_id, from);
        return -1;
    }
    return 0;
}

/* The recovery target of parent_timestamp: an instant the parent's history holds. */
static int time_target(char **target, nl_response *bad, cJSON *project, const cJSON *parent, const cJSON *when)
{
    double t;
    if (!cJSON_IsString(when) || timefmt_parse_timestamp(&t, when->valuestring) != 0) {
        *bad = nl_error(400, "", "parent_timestamp must be an RFC 3339 time like 2026-01-11T14:29:59Z");
        return -1;
    }
    if (check_reachable(bad, project, parent, when->valuestring, t) != 0)
        return -1;
    /* PostgreSQL reads recovery_target_time before it knows timezone
     * abbreviations: "Z" is refused at startup, so the offset is numeric. */
    char normal[48];
    timefmt_format_utc(normal, sizeof normal, t);
    normal[10] = ' ';
    normal[strlen(normal) - 1] = '\0';
    *target = xasprintf("recovery_target_time = '%s+00'", normal);
    return 0;
}

int nl_point_in_time(char **target, nl_response *bad, cJSON *project, const cJSON *parent, const cJSON *spec)
{
    const cJSON *when = cJSON_GetObjectItemCaseSensitive(spec, "parent_timestamp");
    const cJSON *lsn = cJSON_GetObjectItemCaseSensitive(spec, "parent_lsn");
    *target = NULL;
    if (when && lsn) {
        *bad = nl_error(400, "", "give parent_timestamp or parent_lsn, not both");
        return -1;
    }
    if (lsn)
        return lsn_target(target, bad, project, parent, lsn);
    return when ? time_target(target, bad, project, parent, when) : 0;
}

/* After a timestamp timefmt has parsed: is a time zone there? The spec asks
 * for RFC 3339 section 5.6 (time-offset is not optional); timefmt also takes
 * times without one, as UTC. */
static int has_time_zone(const char *text)
{
    const char *p = text + 19; /* YYYY-MM-DDTHH:MM:SS */
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    return *p != '\0';
}

int nl_parse_expires_at(double *due, nl_response *bad, const cJSON *value)
{
    const char *text = cJSON_IsString(value) ? value->valuestring : NULL;
    double t, now = timefmt_now();
    if (!text || timefmt_parse_timestamp(&t, text) != 0 || (text[10] != 'T' && text[10] != 't') ||
        !has_time_zone(text)) {
        *bad = nl_error(400, "", "expires_at must be an RFC 3339 time with a time zone, like 2026-01-11T14:30:00Z");
        return -1;
    }
    t = floor(t);
    if (t <= now) {
        *bad = nl_error(400, "", "expires_at %s is not in the future", text);
        return -1;
    }
    if (t > now + NL_MAX_BRANCH_TTL_SECONDS) {
        *bad = nl_error(400, "", "expires_at %s is more than 30 days from now; a branch can expire at most 30 days "
                        "ahead", text);
        return -1;
    }
    *due = t;
    return 0;
}

void nl_branch_set_expiry(cJSON *branch, double due)
{
    char text[48];
    timefmt_format_utc(text, sizeof text, due);
    nl_state_set_text(branch, "expires_at", text);
    nl_state_set(branch, "ttl_interval_seconds", cJSON_CreateNumber(ceil(due - timefmt_now())));
}

void nl_branch_clear_expiry(cJSON *branch)
{
    cJSON_DeleteItemFromObjectCaseSensitive(branch, "expires_at");
    cJSON_DeleteItemFromObjectCaseSensitive(branch, "ttl_interval_seconds");
}
