#include "schedules.h"

#include "buf.h"
#include "err.h"
#include "jobs.h"
#include "jsonfield.h"
#include "operations.h"
#include "snapshots.h"
#include "state.h"
#include "timefmt.h"

#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <time.h>

/* One period of a frequency before slot (tm: slot's broken-down time). */
static double previous_period(const char *frequency, double slot, struct tm *tm)
{
    if (!strcmp(frequency, "hourly"))
        return slot - 3600;
    if (!strcmp(frequency, "daily"))
        return slot - 86400;
    if (!strcmp(frequency, "weekly"))
        return slot - 7 * 86400;
    if (!strcmp(frequency, "monthly"))
        tm->tm_mon -= 1;
    else
        tm->tm_year -= 1;
    return (double)timegm(tm);
}

double nl_schedule_latest_slot(const cJSON *item, double t)
{
    const char *frequency = json_text(item, "frequency", "");
    int hour = (int)json_number(item, "hour", 0), day = (int)json_number(item, "day", 1);
    int month = (int)json_number(item, "month", 1);
    time_t now = (time_t)t;
    struct tm tm;
    gmtime_r(&now, &tm);
    tm.tm_min = tm.tm_sec = 0;
    if (strcmp(frequency, "hourly") != 0)
        tm.tm_hour = hour;
    if (!strcmp(frequency, "monthly") || !strcmp(frequency, "yearly"))
        tm.tm_mday = day;
    if (!strcmp(frequency, "yearly"))
        tm.tm_mon = month - 1;
    double slot = (double)timegm(&tm);
    if (!strcmp(frequency, "weekly")) { /* day 1..7 = Monday..Sunday */
        int want = day % 7, have = tm.tm_wday;
        slot -= ((have - want + 7) % 7) * 86400.0;
    }
    /* Not reached yet in this period: the previous period's instant. */
    return slot > t ? previous_period(frequency, slot, &tm) : slot;
}

/* The snapshot one schedule item takes of branch at slot:
 * "<branch>-<frequency>-YYYY-MM-DD-HHMM", kept retention_seconds if set. */
static void take_snapshot(cJSON *project, const cJSON *branch, const cJSON *item, double slot, double now)
{
    char when[48], expires[48];
    timefmt_format_utc(when, sizeof when, slot);
    char *name = xasprintf("%s-%s-%.10s-%.2s%.2s", json_text(branch, "name", NULL), json_text(item, "frequency", NULL),
                           when, when + 11, when + 14);
    const cJSON *keep = cJSON_GetObjectItemCaseSensitive(item, "retention_seconds");
    if (cJSON_IsNumber(keep))
        timefmt_format_utc(expires, sizeof expires, now + keep->valuedouble);
    /* Of the branch's head when it is made. */
    nl_snapshot_spec spec = { name, NULL, NULL, NULL, cJSON_IsNumber(keep) ? expires : NULL, 1 };
    cJSON *snap = nl_snapshot_add(project, branch, &spec);
    nl_operation_new(project, "create_branch", json_text(snap, "id", NULL), NULL);
    free(name);
}

/* The due slots of one branch's schedule, taken; 1 when any was. While
 * its server is being changed, the next check takes the slot. */
static int take_due_of(cJSON *project, cJSON *branch, void *context)
{
    const double *now = context;
    cJSON *schedule = cJSON_GetObjectItemCaseSensitive(branch, NL_BACKUP_SCHEDULE);
    cJSON *last = cJSON_GetObjectItemCaseSensitive(branch, NL_SCHEDULE_LAST);
    int any = 0;
    if (!schedule || !last || !nl_job_readable_now(project, branch) || nl_branch_is_snapshot(branch))
        return 0;
    for (int i = 0; i < cJSON_GetArraySize(schedule); i++) {
        cJSON *item = cJSON_GetArrayItem(schedule, i);
        cJSON *done = cJSON_GetArrayItem(last, i);
        double slot = nl_schedule_latest_slot(item, *now);
        if (!done || slot <= done->valuedouble)
            continue;
        cJSON_SetNumberValue(done, slot);
        take_snapshot(project, branch, item, slot, *now);
        any = 1;
    }
    return any;
}

int nl_schedules_take_due(nl_api *api)
{
    return nl_api_sweep_branches(api, take_due_of);
}

/* The branch a schedule request names (never a snapshot), or NULL. */
static cJSON *scheduled_branch(nl_api *api, const nl_path_ids *ids)
{
    cJSON *project = nl_state_live_project(api->state, ids->project_id);
    cJSON *branch = nl_state_item_in(project, NL_BRANCHES, ids->branch_id);
    return branch && !nl_branch_is_snapshot(branch) ? branch : NULL;
}

static nl_response schedule_body(const cJSON *branch)
{
    const cJSON *stored = cJSON_GetObjectItemCaseSensitive(branch, NL_BACKUP_SCHEDULE);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "schedule", stored ? cJSON_Duplicate(stored, 1) : cJSON_CreateArray());
    return nl_json(200, body);
}

nl_response nl_backup_schedule_get(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    (void)req;
    cJSON *branch = scheduled_branch(api, ids);
    if (!branch)
        return nl_api_no_branch(ids->project_id, ids->branch_id);
    return schedule_body(branch);
}

/* Whether a field is a whole number (the spec's integers). */
static int whole_number(const cJSON *value)
{
    return cJSON_IsNumber(value) && value->valuedouble == floor(value->valuedouble);
}

/* Whether an integer field is absent, or an integer from low to high. */
static int in_range(const cJSON *item, const char *key, double low, double high)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(item, key);
    return !value || (whole_number(value) && value->valuedouble >= low && value->valuedouble <= high);
}

/* The checks of one schedule item; -1 with *bad set when refused. */
static int valid_item(nl_response *bad, const cJSON *item)
{
    static const char *const frequencies[] = { "hourly", "daily", "weekly", "monthly", "yearly" };
    const char *f = json_text(item, "frequency", NULL);
    const cJSON *keep = cJSON_GetObjectItemCaseSensitive(item, "retention_seconds");
    int known = 0;
    for (size_t i = 0; f && i < sizeof frequencies / sizeof *frequencies; i++)
        known |= !strcmp(f, frequencies[i]);
    if (!known) {
        *bad = nl_error(400, "", "frequency must be hourly, daily, weekly, monthly or yearly");
        return -1;
    }
    if (!in_range(item, "hour", 0, 23) || !in_range(item, "day", 1, 31) || !in_range(item, "month", 1, 12) ||
        (keep && (!whole_number(keep) || keep->valuedouble < 3600))) {
        *bad = nl_error(400, "", "hour 0-23, day 1-31, month 1-12, retention_seconds at least 3600, "
                        "each a whole number");
        return -1;
    }
    return 0;
}

nl_response nl_backup_schedule_put(nl_api *api, const nl_request *req, const nl_path_ids *ids)
{
    cJSON *branch = scheduled_branch(api, ids);
    if (!branch)
        return nl_api_no_branch(ids->project_id, ids->branch_id);
    const cJSON *schedule = cJSON_GetObjectItemCaseSensitive(req->body, "schedule");
    if (!cJSON_IsArray(schedule))
        return nl_error(400, "", "the body must be {\"schedule\": [{\"frequency\": \"daily\", ...}]}");
    const cJSON *item;
    nl_response bad;
    cJSON_ArrayForEach(item, schedule)
        if (valid_item(&bad, item) != 0)
            return bad;
    nl_state_set(branch, NL_BACKUP_SCHEDULE, cJSON_Duplicate(schedule, 1));
    /* Slots before now are not backfilled. */
    cJSON *last = cJSON_CreateArray();
    cJSON_ArrayForEach(item, schedule)
        cJSON_AddItemToArray(last, cJSON_CreateNumber(nl_schedule_latest_slot(item, nl_api_schedule_now(api))));
    nl_state_set(branch, NL_SCHEDULE_LAST, last);
    if (nl_api_save(api) != 0)
        return nl_error(500, "", "cannot save neon-local's state: %s", err_last());
    return schedule_body(branch);
}
