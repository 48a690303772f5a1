/* schedules: a branch's backup schedule (GET/PUT .../backup_schedule), and
 * the snapshots it takes when due on the schedule clock (--clock-speed runs
 * it faster, for rehearsals). */
#ifndef DRCTL_NL_SCHEDULES_H
#define DRCTL_NL_SCHEDULES_H

#include "api_internal.h"
#include "routes.h"

/* The latest instant a schedule item ({frequency: hourly|daily|weekly|
 * monthly|yearly, hour?, day?, month?}) fires at, at or before t (UTC). */
double nl_schedule_latest_slot(const cJSON *item, double t);

/* Takes the scheduled snapshots that are due (one per item and slot, never
 * for slots before the schedule was set); 1 when any (the state saved). */
int nl_schedules_take_due(nl_api *api);

nl_response nl_backup_schedule_get(nl_api *api, const nl_request *req, const nl_path_ids *ids);
nl_response nl_backup_schedule_put(nl_api *api, const nl_request *req, const nl_path_ids *ids);

#endif
