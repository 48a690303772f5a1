#include "cmd_status.h"

#include "err.h"
#include "buf.h"
#include "jsonfield.h"
#include "jsontext.h"
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

/* status and audit log: the same rows, the latter with durations. JSON
 * leaves out shown_status, which is for people ("live" says it). */
int cmd_status_print_runs(cli *c, int with_duration)
{
    const char *audit_path = cli_audit_dir(c);
    cJSON *rows = runs_collect(audit_path);
    const cJSON *row;
    if (c->json) {
        cJSON_ArrayForEach(row, rows)
            cJSON_DeleteItemFromObjectCaseSensitive((cJSON *)row, "shown_status");
        cli_print_json(rows);
    } else if (cJSON_GetArraySize(rows) == 0) {
        term_info("no runs in %s", audit_path);
    } else {
        cJSON_ArrayForEach(row, rows)
            print_run_line(row, with_duration);
    }
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
