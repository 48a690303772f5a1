#include "cmd_drill.h"

#include "audit.h"
#include "buf.h"
#include "cmd_run.h"
#include "drill.h"
#include "err.h"
#include "journal.h"
#include "jsonfield.h"
#include "runner.h"
#include "runs.h"
#include "term.h"
#include "timefmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a write rate may be: more would measure the writer, not the recovery. */
#define MAX_WRITE_RATE 1000

static const char *const drill_scenarios[] = { "accidental-deletion", "corruption", "total-loss", NULL };

/* ---- approvals and scope ---------------------------------------------------------- */

void cmd_drill_approvals(char ***out, size_t *count, const cli *c, const runbook *rb)
{
    *out = NULL;
    *count = 0;
    for (size_t i = 0; i < c->approval_count; i++)
        cli_push_arg(out, count, c->approvals[i]);
    for (size_t i = 0; i < rb->step_count; i++)
        if (rb->steps[i].destructive)
            cli_push_arg(out, count, rb->steps[i].name);
}

void cmd_drill_resume_scope(session *s, const cli *c, const char *run_id, const cJSON *drill)
{
    const cJSON *started = cJSON_GetObjectItemCaseSensitive(drill, "started");
    s->host.drill = drill_scope_new(run_id, cJSON_IsNumber(started) ? started->valuedouble : 0);
    drill_scope_set_expiry(s->host.drill, json_text(drill, "expires_at", NULL));
    char *path = runs_journal_path(cli_audit_dir(c), run_id);
    cJSON *events = NULL;
    if (journal_read(&events, NULL, path) == 0)
        drill_scope_replay(s->host.drill, events);
    cJSON_Delete(events);
    free(path);
}

/* ---- the figures -------------------------------------------------------------------- */

static const cJSON *step_outputs(const cJSON *state, const char *step)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(state, "steps"))
        if (strcmp(json_text(s, "name", ""), step) == 0)
            return cJSON_GetObjectItemCaseSensitive(s, "outputs");
    return NULL;
}

/* passed, failed, or the run's state while it is not over. */
static const char *drill_result(const cJSON *state)
{
    const char *status = json_text(state, "status", "?");
    if (strcmp(status, "done") == 0)
        return "passed";
    if (strcmp(status, "failed") == 0 || strcmp(status, "aborted") == 0)
        return "failed";
    return status;
}

/* One drill's row: who, when, the result, and what its measure and
 * drill-cleanup steps found (null where they did not run). */
static cJSON *drill_summary(const char *run_id, const cJSON *info, const cJSON *state)
{
    const cJSON *m = step_outputs(state, "measure"), *clean = step_outputs(state, "drill-cleanup");
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "run_id", run_id);
    cJSON_AddStringToObject(out, "scenario", json_text(cJSON_GetObjectItemCaseSensitive(info, "drill"), "scenario", "?"));
    cJSON_AddStringToObject(out, "started_at", json_text(info, "started_at", "?"));
    cJSON_AddStringToObject(out, "operator", json_text(info, "operator", "?"));
    cJSON_AddStringToObject(out, "result", drill_result(state));
    const char *fields[] = { "rto_seconds", "rto_steps", "rpo_seconds", "rpo_rows", "restore_point", "incident_time",
                             "exactness", "recovered", "writes_after_incident", "writer", "failure", NULL };
    for (int i = 0; fields[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, fields[i]);
        cJSON_AddItemToObject(out, fields[i], v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
    }
    const cJSON *left = cJSON_GetObjectItemCaseSensitive(clean, "left_behind");
    cJSON_AddItemToObject(out, "left_behind", left ? cJSON_Duplicate(left, 1) : cJSON_CreateNull());
    return out;
}

/* "RTO  N s (step N s, ...)": the recovery time and each step's share. */
static void print_rto(const cJSON *d)
{
    const cJSON *rto = cJSON_GetObjectItemCaseSensitive(d, "rto_seconds");
    if (!cJSON_IsNumber(rto))
        return;
    buf shares = BUF_INIT;
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(d, "rto_steps"))
        buf_printf(&shares, "%s%s %.1f s", shares.len ? ", " : "", json_text(s, "step", "?"),
                   json_number(s, "seconds", 0));
    term_out("  RTO  %.1f s (%s)", rto->valuedouble, buf_cstr(&shares));
    buf_dispose(&shares);
}

/* "RPO  N s ...; rows lost: table N, ...": only the tables that lost rows. */
static void print_rpo(const cJSON *d)
{
    const cJSON *rpo = cJSON_GetObjectItemCaseSensitive(d, "rpo_seconds");
    if (!cJSON_IsNumber(rpo))
        return;
    buf rows = BUF_INIT;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(d, "rpo_rows"))
        if (cJSON_IsNumber(r) && r->valuedouble != 0)
            buf_printf(&rows, "%s%s %.0f", rows.len ? ", " : "", r->string, r->valuedouble);
    term_out("  RPO  %.3f s between the restore point (%s) and the incident; rows lost: %s", rpo->valuedouble,
             json_text(d, "restore_point", "?"), rows.len ? buf_cstr(&rows) : "none");
    buf_dispose(&rows);
}

static void print_drill_text(const cJSON *d)
{
    term_out("drill %s (%s): %s", json_text(d, "scenario", "?"), json_text(d, "run_id", "?"),
             json_text(d, "result", "?"));
    print_rto(d);
    print_rpo(d);
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(d, "exactness"))
        term_out("  %-32s %-8s %s", json_text(e, "table", "?"),
                 cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "match")) ? "ok" : "MISMATCH", json_text(e, "note", ""));
    const cJSON *left = cJSON_GetObjectItemCaseSensitive(d, "left_behind");
    if (cJSON_IsNumber(left))
        term_out("  left behind: %.0f", left->valuedouble);
    if (json_text(d, "failure", NULL))
        term_out("  %s", json_text(d, "failure", ""));
    term_out("  report: drctl audit show %s", json_text(d, "run_id", "?"));
}

void cmd_drill_outcome(const cli *c, const char *run_id, const cJSON *info, cJSON *state, int rc)
{
    cJSON *d = drill_summary(run_id, info, state);
    if (c->json) {
        cJSON_AddNumberToObject(d, "exit_code", err_exit_status(rc));
        if (rc)
            cJSON_AddStringToObject(d, "message", err_last());
        cJSON_AddItemToObject(d, "steps", cJSON_DetachItemFromObjectCaseSensitive(state, "steps"));
        cli_print_json(d);
    } else {
        print_drill_text(d);
    }
    cJSON_Delete(d);
}

/* ---- --history ------------------------------------------------------------------------ */

/* The summary of every drill in the audit folder, newest first. */
static cJSON *collect_drills(const char *audit_path)
{
    cJSON *rows = runs_collect(audit_path), *out = cJSON_CreateArray();
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        const char *id = json_text(row, "run_id", "");
        cJSON *info = NULL;
        if (runs_read_info(&info, audit_path, id) != 0)
            continue;
        if (cJSON_GetObjectItemCaseSensitive(info, "drill")) {
            int live;
            cJSON *state = runs_state(&live, audit_path, id);
            cJSON_AddItemToArray(out, drill_summary(id, info, state));
            cJSON_Delete(state);
        }
        cJSON_Delete(info);
    }
    cJSON_Delete(rows);
    return out;
}

static void print_history_line(const cJSON *d)
{
    char rto[32] = "-", rpo[32] = "-";
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(d, "rto_seconds");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(d, "rpo_seconds");
    if (cJSON_IsNumber(a))
        snprintf(rto, sizeof rto, "%.1f", a->valuedouble);
    if (cJSON_IsNumber(b))
        snprintf(rpo, sizeof rpo, "%.3f", b->valuedouble);
    /* to the second, and the operator cut to its column: one line a drill */
    term_out("%-20s %.19sZ %-28.28s %8s %8s %-8s %s", json_text(d, "scenario", "?"),
             json_text(d, "started_at", "?"), json_text(d, "operator", "?"), rto, rpo,
             json_text(d, "result", "?"), json_text(d, "run_id", "?"));
}

static int drill_history(cli *c)
{
    int rc = cli_expect_args(c, 0, 0, "--history");
    if (rc)
        return rc;
    const char *audit_path = cli_audit_dir(c);
    cJSON *out = collect_drills(audit_path);
    if (c->json) {
        cli_print_json(out);
    } else if (cJSON_GetArraySize(out) == 0) {
        term_info("no drills in %s (drctl drill SCENARIO runs one)", audit_path);
    } else {
        term_out("%-20s %-20s %-28s %8s %8s %-8s %s", "scenario", "started", "operator", "RTO (s)", "RPO (s)",
                 "result", "run");
        const cJSON *d;
        cJSON_ArrayForEach(d, out)
            print_history_line(d);
    }
    cJSON_Delete(out);
    return 0;
}

/* ---- drill SCENARIO ----------------------------------------------------------------- */

static int valid_scenario(const char *name)
{
    for (int i = 0; drill_scenarios[i]; i++)
        if (strcmp(drill_scenarios[i], name) == 0)
            return 1;
    return 0;
}

/* The params a drill refuses before it makes anything. */
static int check_drill_params(const cJSON *params)
{
    const cJSON *rate = cJSON_GetObjectItemCaseSensitive(params, "write_rate");
    if (cJSON_IsNumber(rate) && (rate->valuedouble < 0 || rate->valuedouble > MAX_WRITE_RATE))
        return err_set(DR_EUSAGE, "-p write_rate=%.0f: give 0 (no writer) to 1000 writes a second", rate->valuedouble);
    return 0;
}

/* The drill's own record in run.json ("drill"), and the scope that keeps
 * it to what it made: every branch it makes expires after ttl (a day
 * unless given). */
static cJSON *begin_drill(session *s, const char *scenario, const char *run_id, const cJSON *params)
{
    double now = timefmt_now();
    const cJSON *ttl = cJSON_GetObjectItemCaseSensitive(params, "ttl");
    char expires[48];
    timefmt_format_utc(expires, sizeof expires, floor(now + (cJSON_IsNumber(ttl) ? ttl->valuedouble : 86400)));
    s->host.drill = drill_scope_new(run_id, now);
    drill_scope_set_expiry(s->host.drill, expires);
    cJSON *info = cJSON_CreateObject();
    cJSON_AddStringToObject(info, "scenario", scenario);
    cJSON_AddStringToObject(info, "scenario_blob_id", s->rb->blob_id);
    cJSON_AddNumberToObject(info, "started", floor(now));
    cJSON_AddStringToObject(info, "expires_at", expires);
    return info;
}

/* Runs the scenario as a new run, approved as a drill, and reports it. */
static int start_drill(cli *c, session *s, const char *scenario, const cJSON *params, audit *trail)
{
    char *run_id = c->run_id ? xstrdup(c->run_id) : runs_new_id(s->rb->name);
    cJSON *info = begin_drill(s, scenario, run_id, params);
    cJSON *target_info = target_json(&s->target);
    char **approvals;
    size_t approval_count;
    cmd_drill_approvals(&approvals, &approval_count, c, s->rb);
    runner_options opts = cmd_run_options(c, &s->host);
    opts.audit = trail;
    opts.target = target_info;
    opts.drill = info;
    opts.run_id = run_id;
    opts.approvals = approvals;
    opts.approval_count = approval_count;
    char *started_id = NULL;
    int rc = runner_start(&started_id, s->rb, params, &opts);
    cmd_run_report_outcome(c, started_id, rc);
    free(started_id);
    free(approvals);
    cJSON_Delete(target_info);
    cJSON_Delete(info);
    free(run_id);
    return rc;
}

int cmd_drill(cli *c)
{
    if (c->history)
        return drill_history(c);
    int rc = cli_expect_args(c, 1, 1, "accidental-deletion|corruption|total-loss [-p key=value]...");
    if (rc)
        return rc;
    const char *scenario = c->args[0];
    if (!valid_scenario(scenario))
        return err_set(DR_EUSAGE, "drill: '%s' is not a scenario a drill rehearses; give accidental-deletion, "
                       "corruption or total-loss", scenario);
    session s;
    if ((rc = session_load(&s, c, scenario, NULL, 1)) != 0)
        return rc;
    cJSON *params = NULL;
    audit *trail = NULL;
    if ((rc = session_new_run_params(&params, NULL, &s, c)) != 0 || (rc = check_drill_params(params)) != 0)
        goto cleanup;
    if ((rc = audit_open(&trail, cli_audit_dir(c), 1)) != 0 || (rc = audit_check_clean(trail)) != 0)
        goto cleanup;
    rc = start_drill(c, &s, scenario, params, trail);
cleanup:
    audit_free(trail);
    cJSON_Delete(params);
    session_dispose(&s);
    return rc;
}
