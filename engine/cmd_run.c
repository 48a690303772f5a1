#include "cmd_run.h"

#include "audit.h"
#include "audit_remote.h"
#include "buf.h"
#include "cmd_drill.h"
#include "err.h"
#include "jsonfield.h"
#include "runs.h"
#include "session.h"
#include "term.h"

#include <stdlib.h>
#include <string.h>

/* ---- what run, resume, abort and drill share ------------------------------------------ */

runner_options cmd_run_options(const cli *c, dr_host *host)
{
    return (runner_options){ .audit_dir = cli_audit_dir(c), .approvals = c->approvals,
                             .approval_count = c->approval_count,
                             .allow_runbook_change = c->allow_runbook_change, .run_id = c->run_id,
                             .host = host };
}

static void print_outcome_json(const char *run_id, cJSON *state, int rc)
{
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "run_id", run_id);
    cJSON_AddStringToObject(out, "status", json_text(state, "status", "?"));
    cJSON_AddNumberToObject(out, "exit_code", err_exit_status(rc));
    if (rc)
        cJSON_AddStringToObject(out, "message", err_last());
    cJSON_AddItemToObject(out, "steps", cJSON_DetachItemFromObjectCaseSensitive(state, "steps"));
    cli_print_json(out);
    cJSON_Delete(out);
}

int cmd_run_report_outcome(cli *c, const char *run_id, int rc)
{
    if (!run_id)
        return rc;
    if (rc)
        term_error("%s", err_last());
    c->reported = 1;
    int live;
    cJSON *state = runs_state(&live, cli_audit_dir(c), run_id), *info = NULL;
    runs_read_info(&info, cli_audit_dir(c), run_id);
    if (cJSON_GetObjectItemCaseSensitive(info, "drill"))
        cmd_drill_outcome(c, run_id, info, state, rc);
    else if (c->json)
        print_outcome_json(run_id, state, rc);
    else
        term_out("run %s: %s", run_id, json_text(state, "status", "?"));
    cJSON_Delete(info);
    cJSON_Delete(state);
    return rc;
}

/* ---- run ----------------------------------------------------------------------------- */

int cmd_run_start(cli *c, session *s, const cJSON *params, audit *trail)
{
    cJSON *target_info = s->neon.required ? target_json(&s->target) : NULL;
    runner_options opts = cmd_run_options(c, &s->host);
    opts.audit = trail;
    opts.target = target_info;
    char *run_id = NULL;
    int rc = runner_start(&run_id, s->rb, params, &opts);
    cmd_run_report_outcome(c, run_id, rc);
    free(run_id);
    cJSON_Delete(target_info);
    return rc;
}

int cmd_run(cli *c)
{
    int rc = cli_expect_args(c, 1, 1, "RUNBOOK [-p key=value]... [--approve STEP]...");
    session s;
    if (rc || (rc = session_load(&s, c, c->args[0], NULL, 0)) != 0)
        return rc;
    cJSON *params = NULL;
    audit *trail = NULL;
    if ((rc = session_check_policy(&s, c)) == 0 && (rc = session_new_run_params(&params, NULL, &s, c)) == 0 &&
        (rc = audit_open(&trail, cli_audit_dir(c), 1)) == 0 && (rc = audit_check_clean(trail)) == 0)
        rc = cmd_run_start(c, &s, params, trail);
    audit_free(trail);
    cJSON_Delete(params);
    session_dispose(&s);
    return rc;
}

/* ---- resume and abort ---------------------------------------------------------------- */

/* The runbook a run recorded (a drill's scenario, by its name), on the
 * search path or else at the path the run recorded; a drill gets its
 * scope back. */
static int load_recorded_runbook(session *s, const cli *c, const char *run_id, const cJSON *info)
{
    const cJSON *rb = cJSON_GetObjectItemCaseSensitive(info, "runbook");
    const cJSON *drill = cJSON_GetObjectItemCaseSensitive(info, "drill");
    int rc = drill ? session_load(s, c, json_text(drill, "scenario", "?"), json_text(rb, "path", NULL), 1)
                   : session_load(s, c, json_text(rb, "name", "?"), json_text(rb, "path", NULL), 0);
    if (rc == 0 && drill)
        cmd_drill_resume_scope(s, c, run_id, drill);
    return rc;
}

/* A run must be closable even when its runbook is gone: it is closed
 * without its cleanup steps, and the operator is told so. */
static int abort_without_runbook(cli *c, const char *run_id, audit *trail)
{
    char *why = xasprintf("its runbook cannot be loaded: %s", err_last());
    term_warn("%s; closing run %s WITHOUT its cleanup steps: check what it left behind", why, run_id);
    runner_options opts = cmd_run_options(c, NULL);
    opts.audit = trail;
    int rc = runner_close_without_runbook(run_id, &opts, why);
    free(why);
    return cmd_run_report_outcome(c, run_id, rc);
}

static int go_on_with_run(cli *c, session *s, const char *run_id, audit *trail, int aborting)
{
    runner_options opts = cmd_run_options(c, &s->host);
    opts.audit = trail;
    char **approvals = NULL;
    size_t approval_count = 0;
    if (s->host.drill) {
        cmd_drill_approvals(&approvals, &approval_count, c, s->rb);
        opts.approvals = approvals;
        opts.approval_count = approval_count;
    }
    int rc = aborting ? runner_abort(s->rb, run_id, c->params, c->param_count, &opts)
                      : runner_resume(s->rb, run_id, c->params, c->param_count, &opts);
    cmd_run_report_outcome(c, run_id, rc);
    free(approvals);
    return rc;
}

/* resume and abort find the runbook by the name the run recorded. */
static int with_existing_run(cli *c, int aborting)
{
    int rc = cli_expect_args(c, 1, 1, "RUN_ID");
    if (rc)
        return rc;
    const char *run_id = c->args[0];
    if (!runs_valid_id(run_id))
        return err_set(DR_EUSAGE, "'%s' is not a run id (drctl status lists the runs)", run_id);
    cJSON *info = NULL;
    audit *trail = NULL;
    session s = { 0 };
    /* A run paused on another machine arrives with the fetch. */
    if ((rc = audit_open(&trail, cli_audit_dir(c), 0)) != 0)
        goto cleanup;
    audit_sync(trail);
    if ((rc = runs_read_info(&info, cli_audit_dir(c), run_id)) != 0)
        goto cleanup;
    if ((rc = load_recorded_runbook(&s, c, run_id, info)) != 0) {
        if (rc == DR_EUSAGE && aborting && (rc = audit_check_clean(trail)) == 0)
            rc = abort_without_runbook(c, run_id, trail);
        goto cleanup;
    }
    /* the target the run recorded, so that it goes on where it started */
    if ((rc = session_prepare_target(&s, cJSON_GetObjectItemCaseSensitive(info, "params"),
                                     cJSON_GetObjectItemCaseSensitive(info, "target"))) != 0 ||
        (rc = audit_check_clean(trail)) != 0 || (!aborting && (rc = session_check_policy(&s, c)) != 0))
        goto cleanup;
    rc = go_on_with_run(c, &s, run_id, trail, aborting);
cleanup:
    session_dispose(&s);
    cJSON_Delete(info);
    audit_free(trail);
    return rc;
}

int cmd_resume(cli *c)
{
    return with_existing_run(c, 0);
}

int cmd_abort(cli *c)
{
    return with_existing_run(c, 1);
}
