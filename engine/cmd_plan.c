#include "cmd_plan.h"

#include "buf.h"
#include "jsonfield.h"
#include "jsontext.h"
#include "runner.h"
#include "session.h"
#include "term.h"

#include <stdlib.h>
#include <string.h>

/* "N. name [flags]", what the step would do, and its confirmation. */
static void print_plan_step(int n, const cJSON *s)
{
    buf flags = BUF_INIT;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "destructive")))
        buf_puts(&flags, " [DESTRUCTIVE: asks for a typed confirmation]");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "idempotent")))
        buf_puts(&flags, " [idempotent]");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "always")))
        buf_puts(&flags, " [always: runs even after a failure]");
    const cJSON *approvers = cJSON_GetObjectItemCaseSensitive(s, "approvers");
    if (approvers)
        buf_printf(&flags, " [needs %.0f approvers: drctl approve]", json_number(approvers, "count", 0));
    term_out("%d. %s%s", n, json_text(s, "name", ""), buf_cstr(&flags));
    buf_dispose(&flags);
    term_out("     %s", json_text(s, "plan", ""));
    const cJSON *confirm = cJSON_GetObjectItemCaseSensitive(s, "confirm");
    if (confirm) {
        const char *summary = json_text(confirm, "summary", ""), *challenge = json_text(confirm, "challenge", "");
        term_out("     confirmation: %s (challenge: type '%s')", summary, challenge);
        if (strstr(summary, "<") || strchr(challenge, '<'))
            term_out("     (<step.field>: what that step finds, known at run time)");
    } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "destructive"))) {
        term_out("     confirmation: computed at run time, from what the steps before it find");
    }
}

static void print_plan_text(const cJSON *plan)
{
    term_out("plan: %s %s (blob %.12s)", json_text(plan, "runbook", ""), json_text(plan, "version", ""),
             json_text(plan, "blob_id", ""));
    term_out("  %s", json_text(plan, "summary", ""));
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(plan, "params");
    const cJSON *sources = cJSON_GetObjectItemCaseSensitive(plan, "param_sources");
    const cJSON *p;
    cJSON_ArrayForEach(p, params) {
        char *value = cJSON_IsString(p) ? xstrdup(p->valuestring) : json_print_exact(p, 0);
        const char *from = json_text(sources, p->string, NULL);
        term_out("  param %s = %s%s%s%s", p->string, value, from ? " (from " : "", from ? from : "", from ? ")" : "");
        free(value);
    }
    int n = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(plan, "steps"))
        print_plan_step(++n, s);
}

int cmd_plan(cli *c)
{
    int rc = cli_expect_args(c, 1, 1, "RUNBOOK [-p key=value]...");
    session s;
    if (rc || (rc = session_load(&s, c, c->args[0], NULL, 0)) != 0)
        return rc;
    cJSON *params = NULL, *sources = NULL, *plan = NULL;
    if ((rc = session_new_run_params(&params, &sources, &s, c)) != 0)
        goto cleanup;
    /* a plan function that failed is shown in the plan; a ctx that does
     * not fit in memory leaves no plan to show */
    rc = runner_plan(&plan, s.rb, params, &s.host, cli_audit_dir(c));
    if (plan && sources)
        cJSON_AddItemToObject(plan, "param_sources", cJSON_Duplicate(sources, 1));
    if (plan && c->json)
        cli_print_json(plan);
    else if (plan)
        print_plan_text(plan);
cleanup:
    cJSON_Delete(plan);
    cJSON_Delete(sources);
    cJSON_Delete(params);
    session_dispose(&s);
    return rc;
}
