/* notify: telling the team, by webhook, that something needs them (the
 * notifications contract, docs/design.md).
 *
 * On a run that failed, paused for a confirmation or was interrupted, on a
 * drill's result, on a check that fails and on `drctl notify test`, each
 * webhook of notify.webhook gets one POST: a generic JSON document, or
 * Slack's incoming-webhook body for a value written "slack:...". Every
 * webhook is sent to at once; each is retried with backoff on a connection
 * failure, a timeout, 408, 425, 429 and 5xx, never on 410 (the target is
 * gone) or another 4xx; the whole, retries included, takes at most
 * notify.timeout (10 s), so a notification never holds a recovery up for
 * longer. A body never carries a secret: it is redacted like the journal.
 * A webhook is named in records by its configured value (env:NAME), or
 * for a literal URL by its scheme and host, never its path. */
#ifndef DRCTL_NOTIFY_H
#define DRCTL_NOTIFY_H
#include "config.h"
#include <cjson/cJSON.h>

struct audit;

/* What happened. Every string may be NULL when it does not apply. */
typedef struct notify_event {
    const char *event;    /* run-failed, run-paused, run-interrupted, drill, check-failed, test */
    const char *summary;  /* one line for a person */
    const char *run_id;
    const char *runbook;
    const char *status;   /* failed, paused, interrupted, passed, ... */
    const char *step;     /* the step where it happened */
    const char *error;
    const char *report;   /* the path of the run's report.md */
    const char *chain_head; /* the run's journal chain head (journal.h) as sent, or NULL */
    long chain_seq;       /* the event it is the hash of */
    const cJSON *target;  /* what was acted on: {"kind","api_host","project","branch"} */
    const cJSON *details; /* more, by event: a drill's figures, a check's failing items */
} notify_event;

/* Sends ev to every configured webhook; returns what each delivery did,
 * an array of {"webhook","format":"json"|"slack","delivered":bool,
 * "status":HTTP status or 0,"attempts":N,"seconds":S,"error":why}, or
 * NULL when no webhook is configured. Stops early (the remaining ones
 * failed "interrupted") when stop returns non-zero; stop may be NULL. */
cJSON *notify_send(const config *cfg, const notify_event *ev, int (*stop)(void));

/* How many deliveries of an array notify_send returned succeeded. */
int notify_delivered_count(const cJSON *deliveries);

/* Records a notification sent outside a run (test, check-failed) in the
 * audit trail: notifications/<time>-<event>-<hex>.json ({"time",
 * "operator","host","event","summary",...,"delivered","webhooks",
 * "deliveries"}), one commit "notify: EVENT delivered to N of M" by
 * operator that adds that file alone. */
int notify_record(struct audit *a, const notify_event *ev, const cJSON *deliveries, const char *operator);

/* How a webhook value is named in records: env:NAME (with its "slack:")
 * as written, a literal URL as scheme://host[:port]/… (never its path,
 * which may be its token). Caller frees. */
char *notify_webhook_name(const char *value);

/* What one attempt's outcome calls for. curl_code is libcurl's result (0:
 * an answer came, with http_status): 2xx is delivered; a connection
 * failure, a timeout, 408, 425, 429 and 5xx are tried again; 410 (the
 * target is gone), any other 4xx, a redirect, a bad URL or a certificate
 * that does not verify are not. */
typedef enum { NOTIFY_DELIVERED, NOTIFY_RETRY, NOTIFY_GIVE_UP } notify_verdict;
notify_verdict notify_classify(int curl_code, long http_status);

/* The body POSTed for ev, redacted: the generic document ({"event",
 * "summary","run_id","runbook","status","step","error","report","target",
 * "details","time","host","operator"}, NULLs left out), or with slack
 * {"text": mrkdwn}. Caller frees. */
char *notify_body(const notify_event *ev, int slack, const char *time, const char *host, const char *operator);

/* The newest recorded test notification
 * ({"time","operator","event","deliveries":[...]}), or NULL. */
cJSON *notify_last_test(const char *audit_dir);

#endif
