#include "cmd_notify.h"

#include "audit.h"
#include "audit_remote.h"
#include "buf.h"
#include "config.h"
#include "err.h"
#include "identity.h"
#include "jsonfield.h"
#include "notify.h"
#include "signals.h"
#include "term.h"

#include <stdlib.h>
#include <string.h>

static void print_delivery(const cJSON *d)
{
    const char *webhook = json_text(d, "webhook", "?");
    int attempts = (int)json_number(d, "attempts", 0);
    double seconds = json_number(d, "seconds", 0);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "delivered")))
        term_out("%s: delivered (HTTP %.0f, %d attempt%s, %.2f s)", webhook, json_number(d, "status", 0), attempts,
                 attempts == 1 ? "" : "s", seconds);
    else
        term_out("%s: failed: %s (%d attempt%s, %.2f s)", webhook, json_text(d, "error", "not delivered"), attempts,
                 attempts == 1 ? "" : "s", seconds);
}

static int no_webhook(void)
{
    return err_set(DR_EUSAGE, "no webhook is configured, so there is nothing to test: drctl config set "
                   "notify.webhook URL (or env:NAME, or slack:env:NAME for Slack)");
}

/* Sends the test to every webhook, then records what each did. */
static int send_test(const cli *c, audit *a)
{
    config *cfg = NULL;
    int rc = config_load(&cfg, cli_audit_dir(c)); /* again: origin may have changed it */
    if (rc)
        return rc;
    if (config_webhook_count(cfg) == 0) {
        config_free(cfg);
        return no_webhook();
    }
    char *host = identity_host(), *operator = identity_operator();
    char *summary = xasprintf("drctl test notification from %s by %s", host, operator);
    notify_event ev = { .event = "test", .summary = summary };
    cJSON *deliveries = notify_send(cfg, &ev, signals_pending);
    int delivered = notify_delivered_count(deliveries), total = cJSON_GetArraySize(deliveries);
    if (c->json) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddItemToObject(out, "deliveries", cJSON_Duplicate(deliveries, 1));
        cJSON_AddNumberToObject(out, "delivered", delivered);
        cJSON_AddNumberToObject(out, "webhooks", total);
        cli_print_json(out);
        cJSON_Delete(out);
    } else {
        const cJSON *d;
        cJSON_ArrayForEach(d, deliveries)
            print_delivery(d);
    }
    rc = notify_record(a, &ev, deliveries, operator);
    if (rc == 0)
        term_info("recorded in %s (notify: test delivered to %d of %d)", audit_dir(a), delivered, total);
    else
        term_warn("the test notification could not be recorded: %s", err_last());
    if (rc == 0 && delivered < total)
        rc = err_set(DR_EFAIL, "the test notification reached %d of %d webhooks (the reasons are above)",
                     delivered, total);
    cJSON_Delete(deliveries);
    free(summary);
    free(operator);
    free(host);
    config_free(cfg);
    return rc;
}

int cmd_notify(cli *c)
{
    int rc = cli_expect_args(c, 1, 1, "test [--json]");
    if (rc)
        return rc;
    if (strcmp(c->args[0], "test") != 0)
        return err_set(DR_EUSAGE, "drctl notify %s: unknown; it is drctl notify test [--json] (drctl notify --help)",
                       c->args[0]);
    /* settings first: nothing is made in the audit folder when there is
     * nothing to send */
    config *cfg = NULL;
    if ((rc = config_load(&cfg, cli_audit_dir(c))) != 0)
        return rc;
    size_t count = config_webhook_count(cfg);
    config_free(cfg);
    if (count == 0)
        return no_webhook();
    audit *a = NULL;
    if ((rc = audit_open(&a, cli_audit_dir(c), 1)) == 0 && (rc = audit_sync(a)) == 0) {
        rc = send_test(c, a);
        int settled = audit_settle(a, NULL);
        if (rc == 0)
            rc = settled;
    }
    audit_free(a);
    return rc;
}
