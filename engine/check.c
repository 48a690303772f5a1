#include "check.h"

#include "buf.h"
#include "cli.h"
#include "cmd_list.h"
#include "docs.h"
#include "err.h"
#include "filesmod.h"
#include "fsio.h"
#include "jsonfield.h"
#include "notify.h"
#include "runbook.h"
#include "runs.h"
#include "s3.h"
#include "timefmt.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- what the items share -------------------------------------------------------------- */

typedef struct check_ctx {
    const check_input *in;
    cJSON *items;
    cJSON *metrics;
    cJSON *branches;       /* the project's branches (owned), NULL when they could not be read */
    const cJSON *branch;   /* the branch checked, in branches */
    char *api_error;       /* why the API could not be read */
    cJSON *runs;           /* the audit trail's runs: runs_record of each (owned) */
    const cJSON *newest_backup; /* {"name","kind","id","created_at","lsn"} (owned by backups below) */
    cJSON *backups;        /* every backup of the branch, newest first */
} check_ctx;

static const char *status_names[] = { "pass", "warn", "fail" };
enum { PASS, WARN, FAIL };

/* One item's verdict; evidence and fix are taken (fix may be NULL). */
static void verdict(check_ctx *x, const char *item, const char *title, int status, char *evidence, char *fix)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "item", item);
    cJSON_AddStringToObject(o, "title", title);
    cJSON_AddStringToObject(o, "status", status_names[status]);
    cJSON_AddStringToObject(o, "evidence", evidence);
    if (fix)
        cJSON_AddStringToObject(o, "fix", fix);
    else
        cJSON_AddNullToObject(o, "fix");
    cJSON_AddItemToArray(x->items, o);
    free(evidence);
    free(fix);
}

static void metric(check_ctx *x, const char *name, double value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(x->metrics, name);
    if (isfinite(value))
        cJSON_AddNumberToObject(x->metrics, name, value);
    else
        cJSON_AddNullToObject(x->metrics, name);
}

/* A span as a person reads it in a checklist: 30d, 1.5d, 26h, 2h05m, 12m, 40s. */
static char *age_text(double seconds)
{
    if (isinf(seconds))
        return xstrdup("forever");
    long long s = seconds < 0 ? 0 : llround(seconds);
    if (s >= 172800 || (s >= 86400 && s % 86400 == 0))
        return s % 86400 ? xasprintf("%.1fd", s / 86400.0) : xasprintf("%lldd", s / 86400);
    if (s >= 3600)
        return s % 3600 / 60 ? xasprintf("%lldh%02lldm", s / 3600, s % 3600 / 60) : xasprintf("%lldh", s / 3600);
    if (s >= 60)
        return xasprintf("%lldm", s / 60);
    return xasprintf("%llds", s);
}

static char *duration_text(double seconds)
{
    return age_text(seconds);
}

static double epoch_of(const char *text)
{
    double t;
    return text && timefmt_parse_timestamp(&t, text) == 0 ? t : NAN;
}

static char *utc_text(double epoch)
{
    char out[48];
    timefmt_format_utc(out, sizeof out, epoch);
    return xstrdup(out);
}

/* GET path; NULL with x->api_error set when the answer did not come. */
static cJSON *api_get(check_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static cJSON *api_get(check_ctx *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf path = BUF_INIT;
    char tmp[1];
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(tmp, sizeof tmp, fmt, copy);
    va_end(copy);
    char *text = xmalloc((size_t)n + 1);
    vsnprintf(text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf_puts(&path, text);
    free(text);
    cJSON *answer = NULL;
    neon_reply reply = { 0 };
    if (neon_call(&answer, &reply, x->in->neon, "GET", buf_cstr(&path), NULL) != 0) {
        free(x->api_error);
        x->api_error = xasprintf("GET %s: %s", buf_cstr(&path), err_last());
        answer = NULL;
    }
    neon_reply_dispose(&reply);
    buf_dispose(&path);
    return answer;
}

static char *escaped(const char *text)
{
    buf b = BUF_INIT;
    s3_escape(&b, text, 0);
    return buf_detach(&b);
}

/* ---- the project and its branches -------------------------------------------------------- */

static void load_branches(check_ctx *x)
{
    char *project = escaped(x->in->project);
    x->branches = cJSON_CreateArray();
    char *cursor = NULL;
    for (int page = 0; page < 1000; page++) {
        char *c = cursor ? escaped(cursor) : NULL;
        cJSON *answer = c ? api_get(x, "/projects/%s/branches?cursor=%s", project, c)
                          : api_get(x, "/projects/%s/branches", project);
        free(c);
        free(cursor);
        cursor = NULL;
        if (!answer) {
            cJSON_Delete(x->branches);
            x->branches = NULL;
            break;
        }
        cJSON *list = cJSON_GetObjectItemCaseSensitive(answer, "branches");
        int got = cJSON_GetArraySize(list);
        while (cJSON_GetArraySize(list) > 0)
            cJSON_AddItemToArray(x->branches, cJSON_DetachItemFromArray(list, 0));
        const char *next = json_text(cJSON_GetObjectItemCaseSensitive(answer, "pagination"), "next", NULL);
        if (next && *next && got > 0)
            cursor = xstrdup(next);
        cJSON_Delete(answer);
        if (!cursor)
            break;
    }
    free(cursor);
    free(project);
    if (!x->branches)
        return;
    const cJSON *b;
    cJSON_ArrayForEach(b, x->branches) {
        const char *want = x->in->branch;
        if (want ? !strcmp(json_text(b, "id", ""), want) || !strcmp(json_text(b, "name", ""), want)
                 : cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "default"))) {
            x->branch = b;
            break;
        }
    }
}

/* Why an item that needs the API cannot be scored, or NULL. */
static char *api_problem(const check_ctx *x)
{
    if (!x->branches)
        return xasprintf("the Neon API could not be read: %s", x->api_error ? x->api_error : "?");
    if (!x->branch)
        return x->in->branch ? xasprintf("project %s has no branch '%s' (-p branch=NAME names it)", x->in->project,
                                         x->in->branch)
                             : xasprintf("project %s has no default branch", x->in->project);
    return NULL;
}

static const char *branch_id(const check_ctx *x)
{
    return json_text(x->branch, "id", "");
}

/* ---- the audit trail ------------------------------------------------------------------------ */

/* Whether a recorded run acted on the project checked: a run that names no
 * project (an older record) counts. */
static int run_is_of_project(const cJSON *record, const char *project)
{
    const char *p = json_text(cJSON_GetObjectItemCaseSensitive(record, "params"), "project", NULL);
    return !p || !strcmp(p, project);
}

static void load_runs(check_ctx *x)
{
    x->runs = cJSON_CreateArray();
    if (!fsio_is_dir(x->in->audit_dir))
        return;
    cJSON *rows = runs_collect(x->in->audit_dir);
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        cJSON *record = NULL;
        if (runs_record(&record, x->in->audit_dir, json_text(row, "run_id", "")) != 0)
            continue;
        if (!run_is_of_project(record, x->in->project)) {
            cJSON_Delete(record);
            continue;
        }
        cJSON *info = NULL;
        if (runs_read_info(&info, x->in->audit_dir, json_text(row, "run_id", "")) == 0 &&
            cJSON_GetObjectItemCaseSensitive(info, "drill"))
            cJSON_AddItemToObject(record, "drill", cJSON_DetachItemFromObjectCaseSensitive(info, "drill"));
        cJSON_Delete(info);
        cJSON_AddItemToArray(x->runs, record);
    }
    cJSON_Delete(rows);
    err_clear();
}

/* When a run ended (its last update), as epoch seconds. */
static double run_end(const cJSON *record)
{
    double t = epoch_of(json_text(record, "updated_at", NULL));
    return isnan(t) ? epoch_of(json_text(record, "started_at", NULL)) : t;
}

static const cJSON *run_outputs(const cJSON *record, const char *step)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(record, "outputs"), step);
}

static int run_done(const cJSON *record)
{
    return !strcmp(json_text(record, "status", ""), "done");
}

/* The newest done run of runbook (runs are newest first), or NULL. */
static const cJSON *newest_done(const check_ctx *x, const char *runbook_name)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, x->runs)
        if (!strcmp(json_text(r, "runbook", ""), runbook_name) && run_done(r) && !cJSON_GetObjectItemCaseSensitive(r, "drill"))
            return r;
    return NULL;
}

/* ---- backups ---------------------------------------------------------------------------- */

static const char *const backup_prefixes[] = { "backup-", "auto-backup-", "github-backup-", NULL };

static int has_backup_prefix(const char *name)
{
    for (int i = 0; backup_prefixes[i]; i++)
        if (!strncmp(name, backup_prefixes[i], strlen(backup_prefixes[i])))
            return 1;
    return 0;
}

/* The names snapshot runs made, whatever their prefix. */
static int made_by_snapshot_run(const check_ctx *x, const char *name)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, x->runs)
        if (!strcmp(json_text(r, "runbook", ""), "snapshot") &&
            !strcmp(json_text(run_outputs(r, "backup"), "name", ""), name))
            return 1;
    return 0;
}

static void add_backup(cJSON *list, const char *kind, const cJSON *object, const char *time_field)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "kind", kind);
    cJSON_AddStringToObject(b, "id", json_text(object, "id", ""));
    cJSON_AddStringToObject(b, "name", json_text(object, "name", ""));
    cJSON_AddStringToObject(b, "created_at", json_text(object, time_field, json_text(object, "created_at", "")));
    const char *lsn = json_text(object, kind[0] == 'b' ? "parent_lsn" : "lsn", NULL);
    if (lsn)
        cJSON_AddStringToObject(b, "lsn", lsn);
    cJSON_AddItemToArray(list, b);
}

static int newer_first(const void *a, const void *b)
{
    double ta = epoch_of(json_text(*(const cJSON *const *)a, "created_at", NULL));
    double tb = epoch_of(json_text(*(const cJSON *const *)b, "created_at", NULL));
    return (tb > ta) - (tb < ta);
}

static void sort_backups(cJSON *list)
{
    int n = cJSON_GetArraySize(list);
    if (n < 2)
        return;
    cJSON **items = xcalloc((size_t)n, sizeof *items);
    for (int i = 0; i < n; i++)
        items[i] = cJSON_DetachItemFromArray(list, 0);
    qsort(items, (size_t)n, sizeof *items, newer_first);
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(list, items[i]);
    free(items);
}

/* Backup branches (children of the branch named as backups, or made by a
 * snapshot run) and snapshots of the branch, newest first. */
static void find_backups(check_ctx *x)
{
    x->backups = cJSON_CreateArray();
    const cJSON *b;
    cJSON_ArrayForEach(b, x->branches) {
        const char *name = json_text(b, "name", "");
        if (strcmp(json_text(b, "parent_id", ""), branch_id(x)) != 0)
            continue;
        if (has_backup_prefix(name) || made_by_snapshot_run(x, name))
            add_backup(x->backups, "branch", b, "created_at");
    }
    char *project = escaped(x->in->project);
    cJSON *answer = api_get(x, "/projects/%s/snapshots", project);
    free(project);
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(answer, "snapshots"))
        if (!strcmp(json_text(s, "source_branch_id", ""), branch_id(x)))
            add_backup(x->backups, "snapshot", s, "created_at");
    cJSON_Delete(answer);
    sort_backups(x->backups);
    x->newest_backup = cJSON_GetArrayItem(x->backups, 0);
}

/* "daily at 3h, weekly" from a backup schedule, or NULL when none. *daily
 * says whether one of its frequencies is at least daily. */
static char *schedule_text(check_ctx *x, int *daily)
{
    *daily = 0;
    char *project = escaped(x->in->project), *branch = escaped(branch_id(x));
    cJSON *answer = api_get(x, "/projects/%s/branches/%s/backup_schedule", project, branch);
    free(project);
    free(branch);
    buf out = BUF_INIT;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(answer, "schedule")) {
        const char *f = json_text(item, "frequency", "?");
        buf_printf(&out, "%s%s", out.len ? ", " : "", f);
        if (!strcmp(f, "hourly") || !strcmp(f, "daily"))
            *daily = 1;
    }
    cJSON_Delete(answer);
    return out.len ? buf_detach(&out) : (buf_dispose(&out), NULL);
}

static void check_backups(check_ctx *x)
{
    const char *title = "daily automatic backups";
    char *problem = api_problem(x);
    if (problem) {
        metric(x, "drctl_last_backup_age_seconds", NAN);
        verdict(x, "backups", title, FAIL, problem, NULL);
        return;
    }
    find_backups(x);
    int daily;
    char *schedule = schedule_text(x, &daily);
    double max_age = config_seconds(x->in->settings, "check.backup_max_age");
    const cJSON *newest = x->newest_backup;
    double age = newest ? x->in->now - epoch_of(json_text(newest, "created_at", NULL)) : INFINITY;
    metric(x, "drctl_last_backup_age_seconds", isnan(age) ? INFINITY : age);
    buf ev = BUF_INIT;
    if (newest) {
        char *a = age_text(age);
        buf_printf(&ev, "newest backup of %s: %s (%s), made %s, %s ago", json_text(x->branch, "name", "?"),
                   json_text(newest, "name", "?"), json_text(newest, "kind", "?"), json_text(newest, "created_at", "?"), a);
        free(a);
    } else {
        buf_printf(&ev, "no backup branch (%s...) nor snapshot of %s", "backup-", json_text(x->branch, "name", "?"));
    }
    char *limit = duration_text(max_age);
    buf_printf(&ev, "; the limit is %s (check.backup_max_age)", limit);
    buf_printf(&ev, schedule ? "; backup schedule: %s" : "; no backup schedule on the branch", schedule);
    int fresh = newest && age <= max_age;
    int status = fresh || daily ? PASS : FAIL;
    char *fix = status == PASS ? NULL
                               : xasprintf("drctl run snapshot -p project=%s -p branch=%s, and schedule it daily "
                                           "(examples/crontab)", x->in->project, json_text(x->branch, "name", "?"));
    verdict(x, "backups", title, status, buf_detach(&ev), fix);
    free(limit);
    free(schedule);
}

/* ---- history window ------------------------------------------------------------------------------ */

static void check_history(check_ctx *x)
{
    const char *title = "point-in-time restore window (7 or 30 days)";
    char *project = escaped(x->in->project);
    cJSON *answer = api_get(x, "/projects/%s", project);
    free(project);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(answer, "project");
    const cJSON *seconds = cJSON_GetObjectItemCaseSensitive(p, "history_retention_seconds");
    if (!cJSON_IsNumber(seconds)) {
        metric(x, "drctl_history_window_seconds", NAN);
        verdict(x, "history", title, FAIL,
                answer ? xasprintf("project %s says no history_retention_seconds", x->in->project)
                       : xasprintf("the Neon API could not be read: %s", x->api_error ? x->api_error : "?"),
                NULL);
        cJSON_Delete(answer);
        return;
    }
    double have = seconds->valuedouble, min = config_seconds(x->in->settings, "check.history_min"),
           warn = config_seconds(x->in->settings, "check.history_warn");
    metric(x, "drctl_history_window_seconds", have);
    char *h = duration_text(have), *m = duration_text(min), *w = duration_text(warn);
    int status = have < min ? FAIL : have < warn ? WARN : PASS;
    char *evidence = xasprintf("project %s keeps %s of history (history_retention_seconds %.0f); fail below %s "
                               "(check.history_min), warn below %s (check.history_warn)",
                               x->in->project, h, have, m, w);
    char *fix = status == PASS ? NULL
                               : xasprintf("raise the project's history window to %.0f s or more: PATCH /projects/%s "
                                           "{\"project\":{\"history_retention_seconds\":%.0f}} (the console: "
                                           "Settings > Storage)", status == FAIL ? min : warn, x->in->project,
                                           status == FAIL ? min : warn);
    verdict(x, "history", title, status, evidence, fix);
    free(h);
    free(m);
    free(w);
    cJSON_Delete(answer);
}

/* ---- schema at the newest backup ---------------------------------------------------------------- */

/* The schema difference between the newest backup and the branch now, for
 * one database: the diff text (empty when the same), or NULL with why. */
static char *schema_diff(check_ctx *x, const char *db, char **why)
{
    const cJSON *b = x->newest_backup;
    char *project = escaped(x->in->project), *branch = escaped(branch_id(x)), *dbe = escaped(db);
    cJSON *answer;
    if (!strcmp(json_text(b, "kind", ""), "branch")) {
        char *base = escaped(json_text(b, "id", ""));
        answer = api_get(x, "/projects/%s/branches/%s/compare_schema?base_branch_id=%s&db_name=%s", project, branch,
                         base, dbe);
        free(base);
    } else {
        const char *lsn = json_text(b, "lsn", NULL);
        char *at = escaped(lsn ? lsn : json_text(b, "created_at", ""));
        answer = api_get(x, "/projects/%s/branches/%s/compare_schema?base_branch_id=%s&db_name=%s&%s=%s", project,
                         branch, branch, dbe, lsn ? "base_lsn" : "base_timestamp", at);
        free(at);
    }
    free(project);
    free(branch);
    free(dbe);
    if (!answer) {
        *why = xstrdup(x->api_error ? x->api_error : "?");
        return NULL;
    }
    char *diff = xstrdup(json_text(answer, "diff", ""));
    cJSON_Delete(answer);
    return diff;
}

/* At most lines lines of text, with how many were left out. */
static void append_first_lines(buf *out, const char *text, int lines)
{
    int shown = 0, total = 0;
    for (const char *p = text; *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (shown < lines) {
            buf_puts(out, "\n    ");
            buf_append(out, p, len);
            shown++;
        }
        total++;
        p += len + (end ? 1 : 0);
    }
    if (total > shown)
        buf_printf(out, "\n    (%d more lines)", total - shown);
}

static void check_schema(check_ctx *x)
{
    const char *title = "a snapshot before each schema change";
    char *problem = api_problem(x);
    if (problem || !x->newest_backup) {
        verdict(x, "schema-backup", title, FAIL,
                problem ? problem : xasprintf("no backup of %s to compare today's schema with", json_text(x->branch, "name", "?")),
                problem ? NULL : xasprintf("drctl run snapshot -p project=%s -p branch=%s", x->in->project,
                                           json_text(x->branch, "name", "?")));
        return;
    }
    char *project = escaped(x->in->project), *branch = escaped(branch_id(x));
    cJSON *dbs = api_get(x, "/projects/%s/branches/%s/databases", project, branch);
    free(project);
    free(branch);
    buf changed = BUF_INIT, failed = BUF_INIT;
    int compared = 0;
    const cJSON *db;
    cJSON_ArrayForEach(db, cJSON_GetObjectItemCaseSensitive(dbs, "databases")) {
        const char *name = json_text(db, "name", "?");
        char *why = NULL, *diff = schema_diff(x, name, &why);
        if (!diff) {
            buf_printf(&failed, "%s%s: %s", failed.len ? "; " : "", name, why);
        } else {
            compared++;
            if (*diff) {
                buf_printf(&changed, "\n  database %s:", name);
                append_first_lines(&changed, diff, 20);
            }
        }
        free(why);
        free(diff);
    }
    const cJSON *b = x->newest_backup;
    char *backup = xasprintf("%s (%s, %s)", json_text(b, "name", "?"), json_text(b, "kind", "?"),
                             json_text(b, "created_at", "?"));
    char *fix = xasprintf("drctl run snapshot -p project=%s -p branch=%s", x->in->project, json_text(x->branch, "name", "?"));
    if (!dbs)
        verdict(x, "schema-backup", title, FAIL, xasprintf("the databases of %s could not be listed: %s",
                                                            json_text(x->branch, "name", "?"), x->api_error), NULL);
    else if (changed.len)
        verdict(x, "schema-backup", title, FAIL,
                xasprintf("the schema changed since the last backup, %s:%s", backup, buf_cstr(&changed)), xstrdup(fix));
    else if (failed.len)
        verdict(x, "schema-backup", title, WARN,
                xasprintf("the schema at the last backup, %s, could not be compared: %s", backup, buf_cstr(&failed)),
                xstrdup(fix));
    else
        verdict(x, "schema-backup", title, PASS,
                xasprintf("the schema of %d database(s) is the same as at the last backup, %s", compared, backup), NULL);
    free(fix);
    free(backup);
    buf_dispose(&changed);
    buf_dispose(&failed);
    cJSON_Delete(dbs);
}

/* ---- notifications -------------------------------------------------------------------------- */

/* The delivery of the last test to webhook, or NULL. */
static const cJSON *delivery_to(const cJSON *test, const char *webhook)
{
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(test, "deliveries"))
        if (!strcmp(json_text(d, "webhook", ""), webhook))
            return d;
    return NULL;
}

static void check_notifications(check_ctx *x)
{
    const char *title = "backup-failure notifications on";
    size_t count = config_webhook_count(x->in->settings);
    if (count == 0) {
        verdict(x, "notifications", title, FAIL, xstrdup("no webhook configured (notify.webhook)"),
                xstrdup("drctl config set notify.webhook URL (or env:NAME), then drctl notify test"));
        return;
    }
    cJSON *test = notify_last_test(x->in->audit_dir);
    buf untested = BUF_INIT;
    size_t delivered = 0;
    for (size_t i = 0; i < count; i++) {
        char *name = notify_webhook_name(config_webhook(x->in->settings, i));
        const cJSON *d = delivery_to(test, name);
        if (d && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "delivered")))
            delivered++;
        else
            buf_printf(&untested, "%s%s (%s)", untested.len ? ", " : "", name,
                       d ? json_text(d, "error", "not delivered") : "never tested");
        free(name);
    }
    char *when = test ? xasprintf("the last test, %s by %s", json_text(test, "time", "?"), json_text(test, "operator", "?"))
                      : xstrdup("no test notification recorded");
    int status = delivered == count ? PASS : delivered ? WARN : FAIL;
    char *evidence = status == PASS
                         ? xasprintf("%zu webhook(s) configured; %s, was delivered to each", count, when)
                         : xasprintf("%zu webhook(s) configured, %zu got a test; %s; not delivered: %s", count,
                                     delivered, when, buf_cstr(&untested));
    verdict(x, "notifications", title, status, evidence, status == PASS ? NULL : xstrdup("drctl notify test"));
    free(when);
    buf_dispose(&untested);
    cJSON_Delete(test);
}

/* ---- restore tested ----------------------------------------------------------------------------- */

static double output_number(const cJSON *record, const char *step, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(run_outputs(record, step), field);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void check_restore_test(check_ctx *x)
{
    const char *title = "a restore test done";
    const cJSON *drill = NULL, *verify = NULL, *r;
    cJSON_ArrayForEach(r, x->runs) {
        if (!run_done(r))
            continue;
        int is_drill = cJSON_GetObjectItemCaseSensitive(r, "drill") != NULL;
        if (!drill && is_drill)
            drill = r;
        if (!verify && !is_drill && !strcmp(json_text(r, "runbook", ""), "verify-backup"))
            verify = r;
    }
    metric(x, "drctl_last_drill_rto_seconds", drill ? output_number(drill, "measure", "rto_seconds") : NAN);
    metric(x, "drctl_last_drill_rpo_seconds", drill ? output_number(drill, "measure", "rpo_seconds") : NAN);
    const cJSON *newest = drill && verify ? (run_end(drill) >= run_end(verify) ? drill : verify) : drill ? drill : verify;
    double age = newest ? x->in->now - run_end(newest) : INFINITY;
    metric(x, "drctl_last_restore_test_age_seconds", age);
    double max_age = config_seconds(x->in->settings, "check.restore_test_max_age");
    char *limit = duration_text(max_age);
    char *fix = xasprintf("drctl drill accidental-deletion -p project=%s (or drctl run verify-backup -p project=%s)",
                          x->in->project, x->in->project);
    if (!newest) {
        verdict(x, "restore-test", title, FAIL,
                xasprintf("no drill or verify-backup of project %s has passed (audit trail %s)", x->in->project,
                          x->in->audit_dir), fix);
    } else {
        char *a = age_text(age);
        buf ev = BUF_INIT;
        buf_printf(&ev, "the last passed %s: %s, ended %s, %s ago; the limit is %s (check.restore_test_max_age)",
                   newest == drill ? "drill" : "verify-backup", json_text(newest, "run_id", "?"),
                   json_text(newest, "updated_at", "?"), a, limit);
        if (drill) {
            double rto = output_number(drill, "measure", "rto_seconds"), rpo = output_number(drill, "measure", "rpo_seconds");
            if (!isnan(rto))
                buf_printf(&ev, "; last drill RTO %.1f s, RPO %.3f s", rto, rpo);
        }
        int ok = age <= max_age;
        verdict(x, "restore-test", title, ok ? PASS : FAIL, buf_detach(&ev), ok ? NULL : xstrdup(fix));
        free(a);
        free(fix);
    }
    free(limit);
}

/* ---- external export ------------------------------------------------------------------------------ */

/* A local copy of path or s3 url: *local gets where to read it, *temp
 * whether it is a download to remove. */
static int fetch(char **local, int *temp, const char *where)
{
    *temp = 0;
    if (!s3_is_url(where)) {
        if (!fsio_exists(where))
            return err_set(DR_EFAIL, "%s is not there", where);
        *local = xstrdup(where);
        return 0;
    }
    char dir[] = "/tmp/drctl-check-XXXXXX";
    if (!mkdtemp(dir))
        return err_set(DR_EFAIL, "cannot make a temporary folder to fetch %s", where);
    *local = xasprintf("%s/object", dir);
    *temp = 1;
    if (s3_download(where, *local) != 0) {
        char *why = xstrdup(err_last());
        unlink(*local);
        rmdir(dir);
        free(*local);
        *local = NULL;
        err_set(DR_EFAIL, "%s could not be fetched: %s", where, why);
        free(why);
        return DR_EFAIL;
    }
    return 0;
}

static void release(char *local, int temp)
{
    if (local && temp) {
        unlink(local);
        char *dir = fsio_dirname(local);
        rmdir(dir);
        free(dir);
    }
    free(local);
}

/* NULL when the export's manifest and dump check at their destination,
 * else what is wrong. */
static char *export_problem(const cJSON *record)
{
    const char *manifest_at = json_text(run_outputs(record, "manifest"), "manifest", NULL);
    const char *recorded_sha = json_text(run_outputs(record, "dump"), "sha256", NULL);
    if (!manifest_at)
        return xstrdup("the run recorded no manifest");
    char *local = NULL, *text = NULL, *problem = NULL, *dump_at = NULL, *dump_local = NULL;
    int temp = 0, dump_temp = 0;
    cJSON *manifest = NULL;
    if (fetch(&local, &temp, manifest_at) != 0 || fsio_read_file(&text, NULL, local) != 0) {
        problem = xasprintf("the manifest: %s", err_last());
        goto done;
    }
    manifest = cJSON_Parse(text);
    const char *sha = json_text(manifest, "sha256", NULL), *dump = json_text(manifest, "dump", NULL);
    if (!sha || !dump || strchr(dump, '/')) {
        problem = xasprintf("%s is not an export manifest (no sha256 or dump)", manifest_at);
        goto done;
    }
    if (recorded_sha && strcmp(sha, recorded_sha) != 0) {
        problem = xasprintf("%s says sha256 %s, the export run recorded %s: the manifest was changed", manifest_at,
                            sha, recorded_sha);
        goto done;
    }
    char *dir = fsio_dirname(manifest_at);
    dump_at = xasprintf("%s/%s", dir, dump);
    free(dir);
    char hex[65];
    if (fetch(&dump_local, &dump_temp, dump_at) != 0 || files_sha256(dump_local, hex) != 0) {
        problem = xasprintf("the dump: %s", err_last());
        goto done;
    }
    if (strcmp(hex, sha) != 0)
        problem = xasprintf("%s has sha256 %s, its manifest says %s: the dump is damaged", dump_at, hex, sha);
done:
    release(dump_local, dump_temp);
    release(local, temp);
    free(dump_at);
    free(text);
    cJSON_Delete(manifest);
    return problem;
}

static void check_export(check_ctx *x)
{
    const char *title = "an export to external storage";
    const cJSON *r = newest_done(x, "export");
    double age = r ? x->in->now - run_end(r) : INFINITY;
    metric(x, "drctl_last_export_age_seconds", age);
    double max_age = config_seconds(x->in->settings, "check.export_max_age");
    char *limit = duration_text(max_age);
    char *fix = xasprintf("drctl run export -p project=%s -p dest=DIR_OR_S3_URL", x->in->project);
    if (!r) {
        verdict(x, "export", title, FAIL, xasprintf("no export of project %s in the audit trail", x->in->project), fix);
        free(limit);
        return;
    }
    char *a = age_text(age);
    const char *manifest = json_text(run_outputs(r, "manifest"), "manifest", "?");
    char *problem = export_problem(r);
    int status = problem || age > max_age ? FAIL : PASS;
    char *evidence = problem ? xasprintf("the last export, %s (run %s, %s ago), does not check: %s", manifest,
                                         json_text(r, "run_id", "?"), a, problem)
                             : xasprintf("the last export, %s (run %s), ended %s, %s ago (limit %s, "
                                         "check.export_max_age); its manifest and sha256 check at the destination",
                                         manifest, json_text(r, "run_id", "?"), json_text(r, "updated_at", "?"), a, limit);
    verdict(x, "export", title, status, evidence, status == PASS ? (free(fix), NULL) : fix);
    free(problem);
    free(a);
    free(limit);
}

/* ---- procedures documented ------------------------------------------------------------------------- */

/* The blob ids named by the pages of dir (their first lines). */
static void page_blobs(str_list *blobs, const char *dir)
{
    char **pages = NULL;
    size_t count = 0;
    cmd_list_files_ending(&pages, &count, dir, ".md");
    for (size_t i = 0; i < count; i++) {
        char *text = NULL;
        char name[256], blob[41];
        if (fsio_read_file(&text, NULL, pages[i]) == 0 && docs_parse_marker(name, blob, text))
            str_list_push(blobs, blob);
        free(text);
    }
    cli_free_list(pages, count);
}

static char *docs_dir(const check_ctx *x)
{
    const char *dir = config_text(x->in->settings, "docs.dir");
    if (!dir)
        return NULL;
    return dir[0] == '/' ? xstrdup(dir) : xasprintf("%s/%s", x->in->audit_dir, dir);
}

static void check_docs(check_ctx *x)
{
    const char *title = "recovery procedures documented";
    char *dir = docs_dir(x);
    if (!dir) {
        verdict(x, "docs", title, FAIL, xstrdup("no docs.dir configured: where are the runbooks' pages?"),
                xstrdup("drctl docs --out DIR, then drctl config set docs.dir DIR"));
        return;
    }
    str_list blobs = { 0 };
    page_blobs(&blobs, dir);
    buf stale = BUF_INIT;
    int runbooks = 0, missing = 0;
    for (size_t i = 0; i < x->in->runbook_dir_count; i++) {
        char **files = NULL;
        size_t count = 0;
        cmd_list_runbook_files(&files, &count, x->in->runbook_dirs[i]);
        for (size_t k = 0; k < count; k++) {
            char blob[41];
            runbooks++;
            if (runbook_blob_id(blob, files[k]) == 0 && str_list_has(&blobs, blob))
                continue;
            missing++;
            const char *base = strrchr(files[k], '/');
            buf_printf(&stale, "%s%s", stale.len ? ", " : "", base ? base + 1 : files[k]);
        }
        cli_free_list(files, count);
    }
    char *fix = xasprintf("drctl docs --out %s", dir);
    if (runbooks == 0)
        verdict(x, "docs", title, FAIL, xstrdup("no runbook on the search path (--runbooks DIR)"), NULL);
    else if (missing)
        verdict(x, "docs", title, FAIL,
                xasprintf("%d of %d runbooks have no page in %s, or an older one: %s", missing, runbooks, dir,
                          buf_cstr(&stale)), xstrdup(fix));
    else
        verdict(x, "docs", title, PASS,
                xasprintf("every runbook (%d) has its page in %s, of its current version", runbooks, dir), NULL);
    free(fix);
    buf_dispose(&stale);
    str_list_dispose(&blobs);
    free(dir);
}

/* ---- emergency contact ---------------------------------------------------------------------------- */

static void check_contact(check_ctx *x)
{
    const char *contact = config_text(x->in->settings, "contact");
    verdict(x, "contact", "Neon's emergency contact noted", contact ? PASS : FAIL,
            contact ? xasprintf("contact: %s", contact) : xstrdup("no emergency contact recorded"),
            contact ? NULL : xstrdup("drctl config set contact \"Neon support: ... (plan, account id)\""));
}

/* ---- the whole ------------------------------------------------------------------------------------ */

static const char *overall(const cJSON *items)
{
    int worst = PASS;
    const cJSON *i;
    cJSON_ArrayForEach(i, items) {
        const char *s = json_text(i, "status", "fail");
        int v = !strcmp(s, "pass") ? PASS : !strcmp(s, "warn") ? WARN : FAIL;
        if (v > worst)
            worst = v;
    }
    return status_names[worst];
}

cJSON *check_run(const check_input *in)
{
    check_ctx x = { .in = in, .items = cJSON_CreateArray(), .metrics = cJSON_CreateObject() };
    load_runs(&x);
    load_branches(&x);
    check_backups(&x);
    check_history(&x);
    check_schema(&x);
    check_notifications(&x);
    check_restore_test(&x);
    check_export(&x);
    check_docs(&x);
    check_contact(&x);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "project", in->project);
    cJSON_AddStringToObject(out, "branch", x.branch ? json_text(x.branch, "name", "?") : in->branch ? in->branch : "?");
    char *now = utc_text(in->now);
    cJSON_AddStringToObject(out, "time", now);
    free(now);
    cJSON_AddStringToObject(out, "result", overall(x.items));
    cJSON_AddItemToObject(out, "items", x.items);
    cJSON_AddItemToObject(out, "metrics", x.metrics);
    cJSON_Delete(x.branches);
    cJSON_Delete(x.runs);
    cJSON_Delete(x.backups);
    free(x.api_error);
    return out;
}

/* ---- Prometheus ---------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    const char *help;
} gauges[] = {
    { "drctl_last_backup_age_seconds", "Age of the newest backup branch or snapshot of the branch (+Inf: none)." },
    { "drctl_last_export_age_seconds", "Age of the newest export in the audit trail (+Inf: none)." },
    { "drctl_last_restore_test_age_seconds", "Age of the newest passed drill or verify-backup (+Inf: none)." },
    { "drctl_last_drill_rto_seconds", "RTO measured by the newest passed drill (NaN: none)." },
    { "drctl_last_drill_rpo_seconds", "RPO measured by the newest passed drill (NaN: none)." },
    { "drctl_history_window_seconds", "The project's point-in-time history window (NaN: unknown)." },
};

static void sample(buf *out, double v)
{
    if (isnan(v))
        buf_puts(out, "NaN\n");
    else if (isinf(v))
        buf_puts(out, v > 0 ? "+Inf\n" : "-Inf\n");
    else
        buf_printf(out, "%.17g\n", v);
}

/* A label value as the text format wants it: \, " and newline escaped. */
static void label_value(buf *out, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '\\' || *p == '"')
            buf_putc(out, '\\');
        if (*p == '\n')
            buf_puts(out, "\\n");
        else
            buf_putc(out, *p);
    }
}

char *check_prometheus_text(const cJSON *result)
{
    buf out = BUF_INIT;
    const char *project = json_text(result, "project", "");
    buf_puts(&out, "# HELP drctl_check_ok 1 when the readiness item passes (a warning passes), 0 when it fails.\n"
                   "# TYPE drctl_check_ok gauge\n");
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(result, "items")) {
        buf_puts(&out, "drctl_check_ok{project=\"");
        label_value(&out, project);
        buf_puts(&out, "\",item=\"");
        label_value(&out, json_text(item, "item", "?"));
        buf_printf(&out, "\"} %d\n", strcmp(json_text(item, "status", "fail"), "fail") != 0);
    }
    buf_puts(&out, "# HELP drctl_check_warn 1 when the readiness item passes with a warning.\n"
                   "# TYPE drctl_check_warn gauge\n");
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(result, "items")) {
        buf_puts(&out, "drctl_check_warn{project=\"");
        label_value(&out, project);
        buf_puts(&out, "\",item=\"");
        label_value(&out, json_text(item, "item", "?"));
        buf_printf(&out, "\"} %d\n", strcmp(json_text(item, "status", ""), "warn") == 0);
    }
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(result, "metrics");
    for (size_t i = 0; i < sizeof gauges / sizeof *gauges; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(metrics, gauges[i].name);
        if (!v)
            continue;
        buf_printf(&out, "# HELP %s %s\n# TYPE %s gauge\n%s{project=\"", gauges[i].name, gauges[i].help,
                   gauges[i].name, gauges[i].name);
        label_value(&out, project);
        buf_puts(&out, "\"} ");
        sample(&out, cJSON_IsNumber(v) ? v->valuedouble
                                       : strstr(gauges[i].name, "_age_") ? INFINITY : NAN);
    }
    double when = epoch_of(json_text(result, "time", NULL));
    buf_printf(&out, "# HELP drctl_check_timestamp_seconds When the check ran.\n"
                     "# TYPE drctl_check_timestamp_seconds gauge\ndrctl_check_timestamp_seconds{project=\"");
    label_value(&out, project);
    buf_puts(&out, "\"} ");
    sample(&out, when);
    return buf_detach(&out);
}
