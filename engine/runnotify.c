#include "runnotify.h"

#include "buf.h"
#include "config.h"
#include "err.h"
#include "jsonfield.h"
#include "notify.h"
#include "runpath.h"
#include "signals.h"
#include "term.h"

#include <stdlib.h>
#include <string.h>

const char *runnotify_event(const char *kind, int is_drill)
{
    if (is_drill && (!strcmp(kind, "run-done") || !strcmp(kind, "run-failed")))
        return "drill";
    if (!strcmp(kind, "run-failed") || !strcmp(kind, "run-paused") || !strcmp(kind, "run-interrupted"))
        return kind;
    return NULL;
}

/* Where the run stopped: the first step, in order, that is not done (the
 * steps before it all are), or NULL when every step is. */
static const step_record *stopped_at(const checkpoint *cp)
{
    for (size_t i = 0; cp && i < cp->step_count; i++)
        if (cp->steps[i].state != STEP_DONE)
            return &cp->steps[i];
    return NULL;
}

static const cJSON *outputs_of(const checkpoint *cp, const char *step)
{
    int k = cp ? checkpoint_step_index(cp, step) : -1;
    return k >= 0 ? cp->steps[k].outputs : NULL;
}

/* What was acted on: run.json's target, with the project and branch the
 * run was given. */
static cJSON *target_of(const runnotify_run *in)
{
    const char *project = json_text(in->params, "project", NULL), *branch = json_text(in->params, "branch", NULL);
    if (!in->target && !project && !branch)
        return NULL;
    cJSON *t = cJSON_CreateObject();
    const char *kind = json_text(in->target, "kind", NULL), *api_host = json_text(in->target, "api_host", NULL);
    if (kind)
        cJSON_AddStringToObject(t, "kind", kind);
    if (api_host)
        cJSON_AddStringToObject(t, "api_host", api_host);
    if (project)
        cJSON_AddStringToObject(t, "project", project);
    if (branch)
        cJSON_AddStringToObject(t, "branch", branch);
    return t;
}

/* A drill's figures, as drctl drill shows them (cmd_drill.c). */
static cJSON *drill_details(const runnotify_run *in)
{
    const cJSON *measure = outputs_of(in->cp, "measure"), *cleanup = outputs_of(in->cp, "drill-cleanup");
    cJSON *d = cJSON_CreateObject();
    const char *scenario = json_text(in->drill, "scenario", NULL);
    if (scenario)
        cJSON_AddStringToObject(d, "scenario", scenario);
    const char *fields[] = { "rto_seconds", "rpo_seconds", "restore_point", "incident_time", "failure", NULL };
    for (int i = 0; fields[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(measure, fields[i]);
        if (v && !cJSON_IsNull(v))
            cJSON_AddItemToObject(d, fields[i], cJSON_Duplicate(v, 1));
    }
    const cJSON *left = cJSON_GetObjectItemCaseSensitive(cleanup, "left_behind");
    if (left && !cJSON_IsNull(left))
        cJSON_AddItemToObject(d, "left_behind", cJSON_Duplicate(left, 1));
    return d;
}

static char *drill_summary(const runnotify_run *in, const char *status, const cJSON *details, const char *step,
                           const char *error)
{
    buf b = BUF_INIT;
    buf_printf(&b, "drill %s of %s (run %s) %s", json_text(in->drill, "scenario", "?"), in->runbook, in->run_id,
               status);
    const cJSON *rto = cJSON_GetObjectItemCaseSensitive(details, "rto_seconds");
    const cJSON *rpo = cJSON_GetObjectItemCaseSensitive(details, "rpo_seconds");
    if (cJSON_IsNumber(rto))
        buf_printf(&b, ": RTO %.1f s", rto->valuedouble);
    if (cJSON_IsNumber(rpo))
        buf_printf(&b, "%s RPO %.3f s", cJSON_IsNumber(rto) ? "," : ":", rpo->valuedouble);
    if (step && error)
        buf_printf(&b, "; at step %s: %s", step, error);
    return buf_detach(&b);
}

static char *run_summary(const runnotify_run *in, const char *step, const char *error)
{
    const char *at = step ? " at step " : "";
    if (!strcmp(in->kind, "run-failed"))
        return xasprintf("run %s of %s failed%s%s: %s", in->run_id, in->runbook, at, step ? step : "",
                         error ? error : "?");
    if (!strcmp(in->kind, "run-paused"))
        return xasprintf("run %s of %s is paused%s%s, waiting for a confirmation; to go on: drctl resume %s",
                         in->run_id, in->runbook, at, step ? step : "", in->run_id);
    return xasprintf("run %s of %s was interrupted%s%s; to go on: drctl resume %s", in->run_id, in->runbook, at,
                     step ? step : "", in->run_id);
}

static const char *status_of(const char *kind)
{
    return !strcmp(kind, "run-done") ? "passed" : !strcmp(kind, "run-failed") ? "failed"
           : !strcmp(kind, "run-paused") ? "paused" : "interrupted";
}

/* One line on the terminal: what came of the notification. */
static void tell(const char *event, const cJSON *deliveries)
{
    int delivered = notify_delivered_count(deliveries), total = cJSON_GetArraySize(deliveries);
    if (delivered == total) {
        term_info("notified %s to %d webhook%s", event, total, total == 1 ? "" : "s");
        return;
    }
    buf failed = BUF_INIT;
    const cJSON *d;
    cJSON_ArrayForEach(d, deliveries)
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "delivered")))
            buf_printf(&failed, "%s%s: %s", failed.len ? "; " : "", json_text(d, "webhook", "?"),
                       json_text(d, "error", "not delivered"));
    term_warn("the %s notification reached %d of %d webhooks (%s); recorded in the journal", event, delivered,
              total, buf_cstr(&failed));
    buf_dispose(&failed);
}

/* A second thought while the team is being told of a failure or a pause
 * ends the telling; an interruption is told within notify.timeout anyway
 * (its signal is already pending; a second one stops drctl at once). */
static int stop_on_signal(void)
{
    return signals_pending() != 0;
}

cJSON *runnotify_send(const runnotify_run *in)
{
    const char *event = runnotify_event(in->kind, in->drill != NULL);
    if (!event)
        return NULL;
    config *cfg = NULL;
    if (config_load(&cfg, in->audit_dir) != 0) {
        term_warn("no notification sent: %s", err_last());
        return NULL;
    }
    if (config_webhook_count(cfg) == 0) {
        config_free(cfg);
        return NULL;
    }
    const step_record *where = stopped_at(in->cp);
    const char *step = where ? where->name : NULL;
    const char *error = where && where->error ? where->error : in->reason;
    const char *status = status_of(in->kind);
    cJSON *target = target_of(in), *details = NULL;
    char *summary;
    if (!strcmp(event, "drill")) {
        details = drill_details(in);
        summary = drill_summary(in, status, details, step, where ? error : NULL);
    } else {
        summary = run_summary(in, step, error);
    }
    char *dir = realpath(in->audit_dir, NULL);
    char *folder = runpath_of(in->audit_dir, in->run_id);
    char *report = xasprintf("%s/%s/report.md", dir ? dir : in->audit_dir, folder);
    free(folder);
    notify_event ev = { .event = event, .summary = summary, .run_id = in->run_id, .runbook = in->runbook,
                        .status = status, .step = step, .error = where || strcmp(event, "drill") ? error : NULL,
                        .report = report, .chain_head = in->chain_head, .chain_seq = in->chain_seq,
                        .target = target, .details = details };
    cJSON *deliveries = notify_send(cfg, &ev, strcmp(in->kind, "run-interrupted") ? stop_on_signal : NULL);
    tell(event, deliveries);
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "event", event);
    cJSON_AddItemToObject(data, "deliveries", deliveries);
    free(report);
    free(dir);
    free(summary);
    cJSON_Delete(target);
    cJSON_Delete(details);
    config_free(cfg);
    return data;
}
