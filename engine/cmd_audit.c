#include "cmd_audit.h"

#include "buf.h"
#include "cmd_status.h"
#include "err.h"
#include "journal.h"
#include "jsonfield.h"
#include "report.h"
#include "runs.h"
#include "term.h"
#include "verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- show ---------------------------------------------------------------------------- */

/* The run record, its replayed state and every event, as one document. */
static void print_show_json(cJSON *info, cJSON *events, const char *audit_path, const char *run_id)
{
    int live;
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "run", info);
    cJSON_AddItemToObject(out, "state", runs_state(&live, audit_path, run_id));
    cJSON_AddItemToObject(out, "events", events);
    cli_print_json(out);
    cJSON_Delete(out);
}

static int audit_show(cli *c, const char *run_id)
{
    const char *audit_path = cli_audit_dir(c);
    cJSON *info = NULL, *events = NULL;
    int rc = runs_read_info(&info, audit_path, run_id);
    if (rc)
        return rc;
    char *journal_path = runs_journal_path(audit_path, run_id);
    journal_chain chain;
    rc = journal_read_chained(&events, &chain, journal_path, run_id);
    free(journal_path);
    if (rc == 0 && c->json) {
        print_show_json(info, events, audit_path, run_id); /* takes info and events */
        journal_chain_dispose(&chain);
        return 0;
    }
    if (rc == 0) {
        char *text = report_render(info, events, chain.head);
        fputs(text, stdout);
        free(text);
    }
    if (rc == 0)
        journal_chain_dispose(&chain);
    cJSON_Delete(events);
    cJSON_Delete(info);
    return rc;
}

/* ---- verify --------------------------------------------------------------------------- */

/* "run R: FILE: problem (commit C)", each part when known. */
static void print_problem(const cJSON *p)
{
    buf line = BUF_INIT;
    if (*json_text(p, "run", ""))
        buf_printf(&line, "run %s: ", json_text(p, "run", ""));
    if (*json_text(p, "file", ""))
        buf_printf(&line, "%s: ", json_text(p, "file", ""));
    buf_puts(&line, json_text(p, "problem", ""));
    if (json_text(p, "commit", NULL))
        buf_printf(&line, " (commit %.12s)", json_text(p, "commit", ""));
    term_out("%s", buf_cstr(&line));
    buf_dispose(&line);
}

/* Takes result->problems. */
static void print_verify_result(const cli *c, verify_result *result, int problems)
{
    if (c->json) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddBoolToObject(out, "ok", problems == 0);
        cJSON_AddNumberToObject(out, "runs", (double)result->runs);
        cJSON_AddNumberToObject(out, "commits", (double)result->commits);
        cJSON_AddNumberToObject(out, "unchained_runs", (double)result->unchained);
        cJSON_AddNumberToObject(out, "partly_chained_runs", (double)result->partly_chained);
        if (c->allowed_signers)
            cJSON_AddNumberToObject(out, "signed_commits", (double)result->signed_commits);
        cJSON_AddNumberToObject(out, "uncommitted_runs", (double)result->uncommitted);
        cJSON_AddItemToObject(out, "problems", result->problems);
        cli_print_json(out);
        cJSON_Delete(out);
        return;
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, result->problems)
        print_problem(p);
    if (result->unchained || result->partly_chained)
        term_out("unchained journals (written by an older drctl, so no hash chain to check): %ld run%s wholly, "
                 "%ld up to a resume", result->unchained, result->unchained == 1 ? "" : "s", result->partly_chained);
    if (result->uncommitted)
        term_out("not yet in the trail: %ld run%s with events past the last commit (a run under way, or what a "
                 "crash left; drctl resume RUN_ID commits them): %s", result->uncommitted,
                 result->uncommitted == 1 ? "" : "s", result->uncommitted_runs);
    if (c->allowed_signers)
        term_out("signatures: %ld of %ld commits signed by an allowed key", result->signed_commits, result->commits);
    term_out("verified %ld runs and %ld commits: %s", result->runs, result->commits,
             problems ? "PROBLEMS FOUND" : "ok");
    cJSON_Delete(result->problems);
}

static int audit_verify(cli *c)
{
    verify_result result;
    int rc = verify_audit(&result, cli_audit_dir(c), c->allowed_signers);
    if (rc) {
        cJSON_Delete(result.problems);
        return rc;
    }
    int problems = cJSON_GetArraySize(result.problems);
    print_verify_result(c, &result, problems);
    return problems ? err_set(DR_EFAIL, "the audit trail has %d problem%s (listed above)", problems,
                              problems > 1 ? "s" : "")
                    : 0;
}

/* ---- dispatch ------------------------------------------------------------------------- */

int cmd_audit(cli *c)
{
    const char *sub = c->arg_count ? c->args[0] : "";
    if (c->allowed_signers && strcmp(sub, "verify") != 0)
        return err_set(DR_EUSAGE, "--allowed-signers applies to drctl audit verify only");
    if (strcmp(sub, "log") == 0 && c->arg_count == 1)
        return cmd_status_print_runs(c, 1);
    if (strcmp(sub, "show") == 0 && c->arg_count == 2)
        return audit_show(c, c->args[1]);
    if (strcmp(sub, "verify") == 0 && c->arg_count == 1)
        return audit_verify(c);
    return err_set(DR_EUSAGE, "usage: drctl audit log | show RUN_ID | verify [--allowed-signers FILE] (drctl audit "
                   "--help)");
}
