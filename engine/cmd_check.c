#include "cmd_check.h"

#include "audit.h"
#include "audit_remote.h"
#include "buf.h"
#include "check.h"
#include "config.h"
#include "err.h"
#include "fsio.h"
#include "identity.h"
#include "jsonfield.h"
#include "neon.h"
#include "notify.h"
#include "signals.h"
#include "target.h"
#include "term.h"
#include "timefmt.h"

#include <stdlib.h>
#include <string.h>

/* -p project=ID and -p branch=NAME: the only params a check takes. */
static int read_params(const char **project, const char **branch, const cli *c)
{
    *project = getenv("NEON_PROJECT_ID");
    *branch = NULL;
    for (size_t i = 0; i < c->param_count; i++) {
        const char *p = c->params[i];
        if (!strncmp(p, "project=", 8) && p[8])
            *project = p + 8;
        else if (!strncmp(p, "branch=", 7) && p[7])
            *branch = p + 7;
        else
            return err_set(DR_EUSAGE, "-p %s: a check takes -p project=ID and -p branch=NAME only", p);
    }
    if (!*project || !**project)
        return err_set(DR_EUSAGE, "which project? give -p project=ID or set NEON_PROJECT_ID");
    return 0;
}

static void print_item(const cJSON *item)
{
    const char *status = json_text(item, "status", "?");
    char tag[8];
    size_t i = 0;
    for (; status[i] && i < sizeof tag - 1; i++)
        tag[i] = (char)(status[i] - 'a' + 'A');
    tag[i] = 0;
    term_out("%-5s %-14s %s", tag, json_text(item, "item", "?"), json_text(item, "title", ""));
    term_out("      %s", json_text(item, "evidence", ""));
    const char *fix = json_text(item, "fix", NULL);
    if (fix)
        term_out("      fix: %s", fix);
}

static void print_result(const cJSON *result, const char *where)
{
    term_out("readiness of project %s, branch %s, on %s, at %s", json_text(result, "project", "?"),
             json_text(result, "branch", "?"), where, json_text(result, "time", "?"));
    int counts[3] = { 0 };
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(result, "items")) {
        print_item(item);
        const char *s = json_text(item, "status", "fail");
        counts[!strcmp(s, "pass") ? 0 : !strcmp(s, "warn") ? 1 : 2]++;
    }
    term_out("%d pass, %d warn, %d fail: %s", counts[0], counts[1], counts[2], json_text(result, "result", "?"));
}

static int write_prometheus(const char *file, const cJSON *result)
{
    char *text = check_prometheus_text(result);
    int rc = fsio_write_durable_mode(file, text, strlen(text), 0644);
    free(text);
    if (rc)
        return err_set(DR_EUSAGE, "cannot write the metrics to %s: %s", file, err_last());
    return 0;
}

/* The failing items, for the notification and the error line. */
static cJSON *failing_items(const cJSON *result, buf *names)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(result, "items")) {
        if (strcmp(json_text(item, "status", ""), "fail") != 0)
            continue;
        buf_printf(names, "%s%s", names->len ? ", " : "", json_text(item, "item", "?"));
        cJSON_AddItemToArray(out, cJSON_Duplicate(item, 1));
    }
    return out;
}

static int second_signal(void)
{
    return signals_pending() != 0;
}

/* A failing check tells the team, and the notification is recorded. */
static void notify_failure(const cli *c, const config *settings, const cJSON *result, const cJSON *target_info,
                           cJSON *failing, const char *names)
{
    cJSON *details = cJSON_CreateObject();
    cJSON_AddItemToObject(details, "failing", failing);
    char *summary = xasprintf("drctl check: project %s is not ready: %s fail", json_text(result, "project", "?"), names);
    notify_event ev = { .event = "check-failed", .summary = summary, .status = "failed", .target = target_info,
                        .details = details, .error = names };
    cJSON *deliveries = notify_send(settings, &ev, second_signal);
    if (deliveries) {
        int sent = notify_delivered_count(deliveries), total = cJSON_GetArraySize(deliveries);
        if (sent == total)
            term_info("notified %d webhook(s) that the check fails", total);
        else
            term_warn("the check's failure reached %d of %d webhook(s) (drctl notify test shows why)", sent, total);
        audit *a = NULL;
        char *operator = identity_operator();
        if (audit_open(&a, cli_audit_dir(c), 1) != 0 || audit_sync(a) != 0 ||
            notify_record(a, &ev, deliveries, operator) != 0 || audit_settle(a, NULL) != 0)
            term_warn("the notification could not be recorded in the audit trail: %s", err_last());
        free(operator);
        audit_free(a);
        cJSON_Delete(deliveries);
    }
    free(summary);
    cJSON_Delete(details);
}

static cJSON *target_of_check(const target *t, const char *project, const char *branch)
{
    cJSON *out = target_json(t);
    cJSON_AddStringToObject(out, "project", project);
    if (branch)
        cJSON_AddStringToObject(out, "branch", branch);
    return out;
}

static int score(const cli *c, const config *settings, const char *project, const char *branch, target *t)
{
    neon_client *neon = NULL;
    int rc = neon_client_new(&neon, t->api_host, t->api_key);
    if (rc)
        return rc;
    neon_client_set_policy(neon, &(neon_policy){ .attempts = 4, .deadline = 30, .connect_timeout = 10,
                                                 .transfer_timeout = 30, .first_backoff = 0.2, .max_backoff = 4 });
    char **dirs = NULL;
    size_t dir_count = 0;
    cli_search_dirs(&dirs, &dir_count, c);
    check_input in = { .neon = neon, .project = project, .branch = branch, .audit_dir = cli_audit_dir(c),
                       .settings = settings, .runbook_dirs = dirs, .runbook_dir_count = dir_count,
                       .now = timefmt_now() };
    cJSON *result = check_run(&in);
    char *where = target_describe(t);
    if (c->json)
        cli_print_json(result);
    else
        print_result(result, where);
    if (c->prometheus_file && (rc = write_prometheus(c->prometheus_file, result)) != 0)
        goto cleanup;
    if (!strcmp(json_text(result, "result", ""), "fail")) {
        buf names = BUF_INIT;
        cJSON *failing = failing_items(result, &names);
        cJSON *target_info = target_of_check(t, project, json_text(result, "branch", branch));
        notify_failure(c, settings, result, target_info, failing, buf_cstr(&names));
        cJSON_Delete(target_info);
        rc = err_set(DR_EFAIL, "not ready: %s fail%s", buf_cstr(&names),
                     c->json ? "" : " (each with its fix above)");
        buf_dispose(&names);
    }
cleanup:
    free(where);
    cJSON_Delete(result);
    cli_free_list(dirs, dir_count);
    neon_client_free(neon);
    return rc;
}

int cmd_check(cli *c)
{
    int rc = cli_expect_args(c, 0, 0, "[-p project=ID] [-p branch=NAME] [--prometheus FILE]");
    const char *project = NULL, *branch = NULL;
    if (rc || (rc = read_params(&project, &branch, c)) != 0)
        return rc;
    config *settings = NULL;
    if ((rc = config_load(&settings, cli_audit_dir(c))) != 0)
        return rc;
    target t;
    target_resolve(&t, c->local);
    if (t.kind == TARGET_NONE)
        rc = target_refuse();
    else if ((rc = target_connect(&t)) == 0)
        rc = score(c, settings, project, branch, &t);
    target_dispose(&t);
    config_free(settings);
    return rc;
}
