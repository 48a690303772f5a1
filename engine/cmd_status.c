#include "cmd_status.h"

#include "err.h"
#include "buf.h"
#include "jsonfield.h"
#include "jsontext.h"
#include "localtime.h"
#include "runs.h"
#include "term.h"
#include "timefmt.h"

#include <stdlib.h>
#include <string.h>

/* ---- every run ------------------------------------------------------------------ */

static void print_run_line(const cJSON *row, int with_duration)
{
    char *rbv = xasprintf("%s@%s", json_text(row, "runbook", "?"), json_text(row, "version", "?"));
    char took[32] = "";
    if (with_duration)
        timefmt_format_duration(took, sizeof took,
                                cJSON_GetObjectItemCaseSensitive(row, "duration_seconds")->valuedouble);
    term_out("%-44s %-24s %-12s %-28s %s%s%s", json_text(row, "run_id", "?"), rbv,
             json_text(row, "shown_status", "?"), json_text(row, "started_at", "?"), took,
             with_duration ? "  " : "", json_text(row, "operator", "?"));
    free(rbv);
}

/* The default: runs not ended, and this many of the most recent. */
#define RECENT_RUNS 10

static int prefix_since_error(const char *text)
{
    char *why = xstrdup(err_last());
    int rc = err_set(DR_EUSAGE, "--since '%s': %s", text, why);
    free(why);
    return rc;
}

/* --since: a duration ago, or a time. */
static int parse_since(double *since, const char *text)
{
    double seconds;
    if (timefmt_parse_duration(&seconds, text) == 0) {
        *since = timefmt_now() - seconds;
        return 0;
    }
    /* a time, on the operator's clock when it has no offset (a DST gap or
     * overlap says so itself) */
    if (timefmt_parse_timestamp(since, text) == 0)
        return localtime_parse(since, text) == 0 ? 0 : prefix_since_error(text);
    /* a day alone: from its start on the operator's clock */
    if (strlen(text) == 10) {
        char *midnight = xasprintf("%sT00:00:00", text);
        int rc = timefmt_parse_timestamp(since, midnight) == 0 ? localtime_parse(since, midnight) : -1;
        free(midnight);
        if (rc == 0)
            return 0;
        if (rc > 0)
            return prefix_since_error(text);
    }
    return err_set(DR_EUSAGE, "--since '%s' is neither a duration ago (30m, 12h, 7d) nor a time "
                   "(2026-01-11, 2026-01-11 14:30:00 on your clock, 2026-01-11T14:30:00Z)", text);
}

static int filter_of(runs_filter *f, const cli *c)
{
    *f = (runs_filter){ .all = c->all, .since = -1, .runbook = c->runbook_filter, .status = c->status_filter,
                        .recent = RECENT_RUNS };
    if (c->since && parse_since(&f->since, c->since) != 0)
        return DR_EUSAGE;
    if (c->status_filter && !runs_known_status(c->status_filter))
        return err_set(DR_EUSAGE, "--status '%s' is not a status: it is one of %s", c->status_filter,
                       RUNS_STATUSES);
    return 0;
}

/* What was left out, when something was: on stderr, so that the rows on
 * stdout stay the runs alone. */
static void say_what_is_shown(const runs_filter *f, size_t shown, size_t total)
{
    if (f->all || f->since >= 0 || f->runbook || f->status)
        term_info("%zu of %zu run%s", shown, total, total == 1 ? "" : "s");
    else if (shown < total)
        term_info("%zu of %zu runs: those not ended and the %d most recent (--all shows every run; --since, "
                  "--runbook and --status pick some)", shown, total, RECENT_RUNS);
}

/* status and audit log: the same rows, the latter with durations. JSON
 * leaves out shown_status, which is for people ("live" says it). */
int cmd_status_print_runs(cli *c, int with_duration)
{
    const char *audit_path = cli_audit_dir(c);
    runs_filter filter;
    int rc = filter_of(&filter, c);
    if (rc)
        return rc;
    size_t total;
    cJSON *rows = runs_select(&total, audit_path, &filter);
    const cJSON *row;
    size_t shown = (size_t)cJSON_GetArraySize(rows);
    if (c->json) {
        cJSON_ArrayForEach(row, rows)
            cJSON_DeleteItemFromObjectCaseSensitive((cJSON *)row, "shown_status");
        cli_print_json(rows);
    } else if (total == 0) {
        term_info("no runs in %s", audit_path);
    } else {
        cJSON_ArrayForEach(row, rows)
            print_run_line(row, with_duration);
    }
    if (!c->json && total)
        say_what_is_shown(&filter, shown, total);
    cJSON_Delete(rows);
    return 0;
}

/* ---- one run -------------------------------------------------------------------- */

static void print_step_lines(const cJSON *state)
{
    int n = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(state, "steps")) {
        const cJSON *attempts = cJSON_GetObjectItemCaseSensitive(s, "attempts");
        term_out("  %d. %-28s %-12s attempts %d", ++n, json_text(s, "name", "?"),
                 json_text(s, "state", "?"), cJSON_IsNumber(attempts) ? attempts->valueint : 0);
        const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(s, "outputs");
        if (outputs && !cJSON_IsNull(outputs)) {
            char *text = json_print_exact(outputs, 0);
            term_out("       outputs: %s", text);
            free(text);
        }
        if (cJSON_GetObjectItemCaseSensitive(s, "error"))
            term_out("       error: %s", json_text(s, "error", ""));
    }
}

/* The undo links, both ways: what this run undoes (its param run, when it
 * is an undo) and the undos of it. */
static void print_undo_links(const cJSON *info, const cJSON *undone_by)
{
    const char *runbook_name = json_text(cJSON_GetObjectItemCaseSensitive(info, "runbook"), "name", "");
    if (!strcmp(runbook_name, RUNS_UNDO_RUNBOOK))
        term_out("undoes:   %s", json_text(cJSON_GetObjectItemCaseSensitive(info, "params"), "run", "?"));
    const cJSON *u;
    cJSON_ArrayForEach(u, undone_by)
        term_out("undone by: %s (%s)", json_text(u, "run_id", "?"), json_text(u, "status", "?"));
}

static void print_run_text(const char *run_id, const cJSON *info, const cJSON *state, int live,
                           const cJSON *undone_by)
{
    const cJSON *rb = cJSON_GetObjectItemCaseSensitive(info, "runbook");
    term_out("run:      %s", run_id);
    term_out("runbook:  %s %s (blob %.12s)", json_text(rb, "name", "?"), json_text(rb, "version", "?"),
             json_text(rb, "blob_id", "?"));
    term_out("status:   %s%s%s", runs_shown_status(state, live),
             cJSON_GetObjectItemCaseSensitive(state, "detail") ? ": " : "", json_text(state, "detail", ""));
    term_out("operator: %s on %s, started %s", json_text(info, "operator", "?"), json_text(info, "host", "?"),
             json_text(info, "started_at", "?"));
    print_undo_links(info, undone_by);
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(info, "params")) {
        char *value = cJSON_IsString(p) ? xstrdup(p->valuestring) : json_print_exact(p, 0);
        term_out("param:    %s = %s", p->string, value);
        free(value);
    }
    term_out("steps:");
    print_step_lines(state);
}

static int status_one(cli *c, const char *run_id)
{
    const char *audit_path = cli_audit_dir(c);
    cJSON *info = NULL;
    int rc = runs_read_info(&info, audit_path, run_id);
    if (rc)
        return rc;
    int live;
    cJSON *state = runs_state(&live, audit_path, run_id);
    cJSON *undone_by = runs_undone_by(audit_path, run_id);
    if (c->json) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddItemToObject(out, "run", info);
        cJSON_AddItemToObject(out, "state", state);
        cJSON_AddBoolToObject(out, "live", live);
        cJSON_AddItemToObject(out, "undone_by", undone_by);
        cli_print_json(out);
        cJSON_Delete(out); /* info, state and undone_by with it */
        return 0;
    }
    print_run_text(run_id, info, state, live, undone_by);
    cJSON_Delete(undone_by);
    cJSON_Delete(state);
    cJSON_Delete(info);
    return 0;
}

int cmd_status(cli *c)
{
    int rc = cli_expect_args(c, 0, 1, "[RUN_ID]");
    if (rc)
        return rc;
    return c->arg_count ? status_one(c, c->args[0]) : cmd_status_print_runs(c, 0);
}
