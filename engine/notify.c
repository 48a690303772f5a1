#include "notify.h"

#include "audit.h"
#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "identity.h"
#include "jsonfield.h"
#include "jsontext.h"
#include "redact.h"
#include "timefmt.h"

#include <curl/curl.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The first retry waits this long, each next one twice as long. */
#define FIRST_BACKOFF_SECONDS 0.5
/* How often the stop callback is asked while deliveries are in flight. */
#define POLL_MS 100
/* What is kept of an answer's body for the error (a target's reason). */
#define ANSWER_KEEP 200


/* ---- the pure parts ------------------------------------------------------------------- */

char *notify_webhook_name(const char *value)
{
    const char *address = config_webhook_address(value);
    if (!strncmp(address, "env:", 4))
        return xstrdup(value);
    const char *host = strstr(address, "://");
    host = host ? host + 3 : address;
    size_t len = strcspn(host, "/?#");
    return xasprintf("%.*s%.*s/…", (int)(host - value), value, (int)len, host);
}

notify_verdict notify_classify(int curl_code, long http_status)
{
    if (curl_code != CURLE_OK) {
        switch (curl_code) {
        case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY: case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT: case CURLE_SEND_ERROR: case CURLE_RECV_ERROR: case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE: case CURLE_SSL_CONNECT_ERROR: case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
        case CURLE_WEIRD_SERVER_REPLY:
            return NOTIFY_RETRY;
        default: /* a bad URL, a certificate that does not verify: the same again */
            return NOTIFY_GIVE_UP;
        }
    }
    if (http_status >= 200 && http_status < 300)
        return NOTIFY_DELIVERED;
    if (http_status == 408 || http_status == 425 || http_status == 429 || http_status >= 500)
        return NOTIFY_RETRY;
    return NOTIFY_GIVE_UP;
}

static void add_text(cJSON *doc, const char *key, const char *value)
{
    if (value)
        cJSON_AddStringToObject(doc, key, value);
}

/* The generic document, redacted: what the Slack text is written from too. */
static cJSON *event_document(const notify_event *ev, const char *time, const char *host, const char *operator)
{
    cJSON *doc = cJSON_CreateObject();
    add_text(doc, "event", ev->event);
    add_text(doc, "summary", ev->summary);
    add_text(doc, "run_id", ev->run_id);
    add_text(doc, "runbook", ev->runbook);
    add_text(doc, "status", ev->status);
    add_text(doc, "step", ev->step);
    add_text(doc, "error", ev->error);
    add_text(doc, "report", ev->report);
    if (ev->chain_head) {
        /* an anchor outside the repository: a rewrite of the journal up to
         * this event cannot keep this hash */
        cJSON *chain = cJSON_AddObjectToObject(doc, "journal_chain");
        cJSON_AddStringToObject(chain, "head", ev->chain_head);
        cJSON_AddNumberToObject(chain, "seq", (double)ev->chain_seq);
    }
    if (ev->target)
        cJSON_AddItemToObject(doc, "target", cJSON_Duplicate(ev->target, 1));
    if (ev->details)
        cJSON_AddItemToObject(doc, "details", cJSON_Duplicate(ev->details, 1));
    add_text(doc, "time", time);
    add_text(doc, "host", host);
    add_text(doc, "operator", operator);
    redact_json(doc);
    return doc;
}

/* Slack's mrkdwn gives &, < and > a meaning: they are escaped. */
static void slack_escaped(buf *b, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '&')
            buf_puts(b, "&amp;");
        else if (*p == '<')
            buf_puts(b, "&lt;");
        else if (*p == '>')
            buf_puts(b, "&gt;");
        else
            buf_putc(b, *p);
    }
}

static void slack_line(buf *b, const char *label, const cJSON *doc, const char *key, int code)
{
    const char *value = json_text(doc, key, NULL);
    if (!value)
        return;
    buf_printf(b, "\n*%s:* %s", label, code ? "`" : "");
    slack_escaped(b, value);
    if (code)
        buf_putc(b, '`');
}

static void slack_target(buf *b, const cJSON *target)
{
    if (!cJSON_IsObject(target))
        return;
    buf_puts(b, "\n*Target:* ");
    buf what = BUF_INIT;
    const char *kind = json_text(target, "kind", NULL);
    if (kind)
        buf_puts(&what, !strcmp(kind, "local") ? "neon-local" : "Neon");
    if (json_text(target, "api_host", NULL))
        buf_printf(&what, " %s", json_text(target, "api_host", ""));
    if (json_text(target, "project", NULL))
        buf_printf(&what, "%sproject %s", what.len ? ", " : "", json_text(target, "project", ""));
    if (json_text(target, "branch", NULL))
        buf_printf(&what, "%sbranch %s", what.len ? ", " : "", json_text(target, "branch", ""));
    slack_escaped(b, buf_cstr(&what));
    buf_dispose(&what);
}

/* A drill's figures and a check's items, one line each. */
static void slack_details(buf *b, const cJSON *details)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, details) {
        buf value = BUF_INIT;
        if (cJSON_IsString(item)) {
            buf_puts(&value, item->valuestring);
        } else if (!cJSON_IsNull(item)) {
            char *text = cJSON_PrintUnformatted(item);
            buf_puts(&value, text);
            free(text);
        }
        if (value.len && item->string) {
            buf_printf(b, "\n*%s:* ", item->string);
            slack_escaped(b, buf_cstr(&value));
        }
        buf_dispose(&value);
    }
}

static char *slack_text(const cJSON *doc)
{
    buf b = BUF_INIT;
    buf_printf(&b, "*drctl: %s*", json_text(doc, "event", "notification"));
    if (json_text(doc, "summary", NULL)) {
        buf_puts(&b, ": ");
        slack_escaped(&b, json_text(doc, "summary", ""));
    }
    slack_line(&b, "Run", doc, "run_id", 1);
    slack_line(&b, "Runbook", doc, "runbook", 1);
    slack_line(&b, "Status", doc, "status", 0);
    slack_line(&b, "Step", doc, "step", 1);
    slack_line(&b, "Error", doc, "error", 0);
    slack_line(&b, "Report", doc, "report", 1);
    const cJSON *chain = cJSON_GetObjectItemCaseSensitive(doc, "journal_chain");
    if (chain)
        buf_printf(&b, "\nJournal chain head: `%s` (event %.0f)", json_text(chain, "head", "?"),
                   json_number(chain, "seq", 0));
    slack_target(&b, cJSON_GetObjectItemCaseSensitive(doc, "target"));
    slack_details(&b, cJSON_GetObjectItemCaseSensitive(doc, "details"));
    slack_line(&b, "Host", doc, "host", 0);
    slack_line(&b, "Operator", doc, "operator", 0);
    return buf_detach(&b);
}

char *notify_body(const notify_event *ev, int slack, const char *time, const char *host, const char *operator)
{
    cJSON *doc = event_document(ev, time, host, operator);
    cJSON *body = doc;
    if (slack) {
        char *text = slack_text(doc);
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "text", text);
        free(text);
        cJSON_Delete(doc);
    }
    char *printed = json_print_exact(body, 0);
    cJSON_Delete(body);
    /* what redact_json leaves (the engine's own fields) is checked too */
    char *clean = redact_text(printed);
    free(printed);
    return clean;
}

/* ---- one delivery ------------------------------------------------------------------------ */

typedef struct delivery {
    const char *value;          /* as configured */
    char *name;                 /* as recorded */
    int slack;
    char *url;                  /* resolved; NULL: not sendable */
    char *body;
    CURL *easy;                 /* while an attempt is in flight */
    struct curl_slist *headers;
    buf answer;                 /* the start of the answer's body */
    char curl_error[CURL_ERROR_SIZE];
    int attempts;
    long status;
    int finished;
    int delivered;
    char *error;
    double first_attempt;       /* monotonic */
    double ended;
    double next_attempt;        /* a retry is due then (monotonic) */
    double backoff;
} delivery;

static size_t keep_answer(char *data, size_t size, size_t count, void *ud)
{
    buf *answer = ud;
    size_t len = size * count;
    if (answer->len < ANSWER_KEEP)
        buf_append(answer, data, len < ANSWER_KEEP - answer->len ? len : ANSWER_KEEP - answer->len);
    return len;
}

static void end_delivery(delivery *d, int delivered, char *error)
{
    d->finished = 1;
    d->delivered = delivered;
    free(d->error);
    d->error = error;
    d->ended = timefmt_monotonic();
}

/* Starts one attempt, with at most `left` seconds to finish. */
static int start_attempt(delivery *d, CURLM *multi, double left)
{
    d->easy = curl_easy_init();
    if (!d->easy)
        return -1;
    if (!d->headers) {
        d->headers = curl_slist_append(NULL, "Content-Type: application/json");
        d->headers = curl_slist_append(d->headers, "Expect:"); /* no 100-continue round trip */
    }
    d->answer.len = 0;
    d->curl_error[0] = '\0';
    long ms = (long)fmax(1, floor(left * 1000));
    CURL *h = d->easy;
    curl_easy_setopt(h, CURLOPT_URL, d->url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, d->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(d->body));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, d->headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "drctl/" DRCTL_VERSION);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep_answer);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &d->answer);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, d->curl_error);
    curl_easy_setopt(h, CURLOPT_PRIVATE, d);
    if (curl_multi_add_handle(multi, h) != CURLM_OK) {
        curl_easy_cleanup(h);
        d->easy = NULL;
        return -1;
    }
    if (d->attempts++ == 0)
        d->first_attempt = timefmt_monotonic();
    return 0;
}

/* Why an attempt failed, for a person (caller frees). */
static char *attempt_error(const delivery *d, int code)
{
    if (code != CURLE_OK)
        return xasprintf("%s", d->curl_error[0] ? d->curl_error : curl_easy_strerror((CURLcode)code));
    buf b = BUF_INIT;
    buf_printf(&b, "HTTP %ld", d->status);
    if (d->status == 410) {
        /* A literal URL's path may be its token: it is named, not quoted. */
        int named = strncmp(config_webhook_address(d->value), "env:", 4) == 0;
        char *name = notify_webhook_name(d->value);
        buf_printf(&b, " Gone: the webhook no longer exists; remove it with drctl config unset notify.webhook %s",
                   named ? d->value : "URL");
        if (!named)
            buf_printf(&b, " (the URL of %s, as drctl config shows it)", name);
        free(name);
    }
    if (d->answer.len) {
        buf_puts(&b, d->status == 410 ? " (the target said: " : " (");
        size_t len = d->answer.len;
        while (len && strchr(" \t\r\n", d->answer.data[len - 1]))
            len--;
        for (size_t i = 0; i < len; i++) {
            char c = d->answer.data[i];
            buf_putc(&b, (unsigned char)c < 0x20 ? ' ' : c);
        }
        buf_putc(&b, ')');
    }
    return buf_detach(&b);
}

/* An attempt ended: delivered, scheduled again, or given up. */
static void attempt_ended(delivery *d, CURLM *multi, int code, double deadline)
{
    d->status = 0;
    if (code == CURLE_OK)
        curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &d->status);
    curl_multi_remove_handle(multi, d->easy);
    notify_verdict verdict = notify_classify(code, d->status);
    char *error = verdict == NOTIFY_DELIVERED ? NULL : attempt_error(d, code);
    curl_easy_cleanup(d->easy);
    d->easy = NULL;
    double now = timefmt_monotonic();
    if (verdict == NOTIFY_RETRY && now + d->backoff < deadline - 0.05) {
        d->next_attempt = now + d->backoff;
        d->backoff *= 2;
        free(d->error);
        d->error = error;
        return;
    }
    if (verdict == NOTIFY_RETRY) { /* no time left for another attempt */
        char *why = xasprintf("%s; no time left for another attempt within notify.timeout", error);
        free(error);
        error = why;
    }
    end_delivery(d, verdict == NOTIFY_DELIVERED, error);
}

/* After run_deliveries, which ends every attempt. */
static void delivery_dispose(delivery *d)
{
    curl_slist_free_all(d->headers);
    buf_dispose(&d->answer);
    free(d->name);
    free(d->url);
    free(d->body);
    free(d->error);
}

static cJSON *delivery_json(const delivery *d)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "webhook", d->name);
    cJSON_AddStringToObject(j, "format", d->slack ? "slack" : "json");
    cJSON_AddBoolToObject(j, "delivered", d->delivered);
    cJSON_AddNumberToObject(j, "status", (double)d->status);
    cJSON_AddNumberToObject(j, "attempts", d->attempts);
    double seconds = d->attempts ? d->ended - d->first_attempt : 0;
    cJSON_AddNumberToObject(j, "seconds", round(seconds * 1000) / 1000);
    if (!d->delivered) {
        char *clean = redact_text(d->error ? d->error : "not delivered");
        cJSON_AddStringToObject(j, "error", clean);
        free(clean);
    }
    return j;
}

/* ---- all of them at once ----------------------------------------------------------------- */

static void prepare(delivery *d, const char *value, const notify_event *ev, const char *time, const char *host,
                    const char *operator)
{
    d->value = value;
    d->name = notify_webhook_name(value);
    d->slack = config_webhook_is_slack(value);
    d->backoff = FIRST_BACKOFF_SECONDS;
    d->url = config_resolve_url(value);
    if (!d->url) {
        end_delivery(d, 0, xstrdup(err_last()));
        return;
    }
    /* a URL read from the environment often holds its token: never shown */
    if (!strncmp(config_webhook_address(value), "env:", 4))
        redact_add_named_secret(value, d->url);
    d->body = notify_body(ev, d->slack, time, host, operator);
}

static void curl_ready(void)
{
    static int ready;
    if (!ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        ready = 1;
    }
}

/* The next moment something must be done (a retry due, the deadline), as
 * milliseconds to wait, at most POLL_MS. */
static int wait_ms(const delivery *all, size_t count, double now, double deadline)
{
    double next = fmin(deadline, now + POLL_MS / 1000.0);
    for (size_t i = 0; i < count; i++)
        if (!all[i].finished && !all[i].easy)
            next = fmin(next, all[i].next_attempt);
    return (int)fmax(0, ceil((next - now) * 1000));
}

static void give_up_all(delivery *all, size_t count, const char *why)
{
    for (size_t i = 0; i < count; i++) {
        if (all[i].finished)
            continue;
        char *error = all[i].error ? xasprintf("%s (last attempt: %s)", why, all[i].error) : xstrdup(why);
        end_delivery(&all[i], 0, error);
    }
}

static int open_count(const delivery *all, size_t count)
{
    int n = 0;
    for (size_t i = 0; i < count; i++)
        n += !all[i].finished;
    return n;
}

static void run_deliveries(delivery *all, size_t count, double timeout, int (*stop)(void))
{
    CURLM *multi = curl_multi_init();
    double deadline = timefmt_monotonic() + timeout;
    char *timed_out = xasprintf("timed out: no answer within notify.timeout (%gs)", timeout);
    while (open_count(all, count) > 0) {
        if (stop && stop()) {
            give_up_all(all, count, "interrupted");
            break;
        }
        double now = timefmt_monotonic();
        if (now >= deadline) {
            give_up_all(all, count, timed_out);
            break;
        }
        for (size_t i = 0; i < count; i++)
            if (!all[i].finished && !all[i].easy && all[i].next_attempt <= now &&
                start_attempt(&all[i], multi, deadline - now) != 0)
                end_delivery(&all[i], 0, xstrdup("cannot start an HTTP request (libcurl)"));
        int running = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char *d = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &d);
            attempt_ended((delivery *)d, multi, msg->data.result, deadline);
        }
        if (open_count(all, count) > 0)
            curl_multi_poll(multi, NULL, 0, wait_ms(all, count, timefmt_monotonic(), deadline), NULL);
    }
    free(timed_out);
    for (size_t i = 0; i < count; i++)
        if (all[i].easy) {
            curl_multi_remove_handle(multi, all[i].easy);
            curl_easy_cleanup(all[i].easy);
            all[i].easy = NULL;
        }
    curl_multi_cleanup(multi);
}

cJSON *notify_send(const config *cfg, const notify_event *ev, int (*stop)(void))
{
    size_t count = config_webhook_count(cfg);
    if (count == 0)
        return NULL;
    curl_ready();
    char time[48];
    timefmt_format_utc(time, sizeof time, timefmt_now());
    char *host = identity_host(), *operator = identity_operator();
    delivery *all = xcalloc(count, sizeof *all);
    for (size_t i = 0; i < count; i++)
        prepare(&all[i], config_webhook(cfg, i), ev, time, host, operator);
    run_deliveries(all, count, config_seconds(cfg, "notify.timeout"), stop);
    cJSON *out = cJSON_CreateArray();
    for (size_t i = 0; i < count; i++) {
        cJSON_AddItemToArray(out, delivery_json(&all[i]));
        delivery_dispose(&all[i]);
    }
    free(all);
    free(host);
    free(operator);
    return out;
}

int notify_delivered_count(const cJSON *deliveries)
{
    int n = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, deliveries)
        n += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "delivered"));
    return n;
}

/* ---- the record ------------------------------------------------------------------------------ */

static unsigned random_hex4(void)
{
    unsigned short r = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&r, sizeof r, 1, f) != 1)
        r = (unsigned short)(getpid() ^ (unsigned)time(NULL));
    if (f)
        fclose(f);
    return r;
}

/* "20240102T030405Z" from an RFC 3339 time. */
static void compact_time(char *out, size_t size, const char *time)
{
    size_t n = 0;
    for (const char *p = time; *p && *p != '.' && n + 2 < size; p++)
        if (*p != '-' && *p != ':')
            out[n++] = *p;
    if (n && out[n - 1] != 'Z')
        out[n++] = 'Z';
    out[n] = '\0';
}

static cJSON *record_json(const notify_event *ev, const cJSON *deliveries, const char *time, const char *operator)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "time", time);
    cJSON_AddStringToObject(doc, "operator", operator);
    char *host = identity_host();
    cJSON_AddStringToObject(doc, "host", host);
    free(host);
    add_text(doc, "event", ev->event);
    add_text(doc, "summary", ev->summary);
    add_text(doc, "run_id", ev->run_id);
    add_text(doc, "status", ev->status);
    add_text(doc, "error", ev->error);
    if (ev->details)
        cJSON_AddItemToObject(doc, "details", cJSON_Duplicate(ev->details, 1));
    cJSON_AddNumberToObject(doc, "delivered", notify_delivered_count(deliveries));
    cJSON_AddNumberToObject(doc, "webhooks", cJSON_GetArraySize(deliveries));
    cJSON_AddItemToObject(doc, "deliveries", deliveries ? cJSON_Duplicate(deliveries, 1) : cJSON_CreateArray());
    redact_json(doc);
    return doc;
}

int notify_record(struct audit *a, const notify_event *ev, const cJSON *deliveries, const char *operator)
{
    char time[48], compact[32];
    timefmt_format_utc(time, sizeof time, timefmt_now());
    compact_time(compact, sizeof compact, time);
    char *dir = xasprintf("%s/%s", audit_dir(a), AUDIT_NOTIFICATIONS_DIR);
    if (fsio_mkdirs(dir, 0755) != 0) {
        int rc = err_set(DR_EFAIL, "cannot create %s: %s", dir, err_last());
        free(dir);
        return rc;
    }
    char *relpath = NULL, *file = NULL;
    for (int tries = 0; !relpath || (fsio_exists(file) && tries < 16); tries++) {
        free(relpath);
        free(file);
        relpath = xasprintf("%s/%s-%s-%04x.json", AUDIT_NOTIFICATIONS_DIR, compact, ev->event, random_hex4());
        file = xasprintf("%s/%s", audit_dir(a), relpath);
    }
    cJSON *doc = record_json(ev, deliveries, time, operator);
    char *text = json_print_exact(doc, 1);
    char *with_newline = xasprintf("%s\n", text);
    int delivered = notify_delivered_count(deliveries), total = cJSON_GetArraySize(deliveries);
    char *message = xasprintf("notify: %s delivered to %d of %d\n", ev->event, delivered, total);
    int rc = fsio_write_durable(file, with_newline, strlen(with_newline));
    if (rc)
        rc = err_set(DR_EFAIL, "cannot write %s: %s", file, err_last());
    else
        rc = audit_commit_notification(a, relpath, message, operator);
    free(message);
    free(with_newline);
    free(text);
    cJSON_Delete(doc);
    free(file);
    free(relpath);
    free(dir);
    return rc;
}

/* ---- reading records -------------------------------------------------------------------------- */

static int is_record_name(const char *name)
{
    size_t len = strlen(name);
    return name[0] != '.' && len > 5 && !strcmp(name + len - 5, ".json");
}

cJSON *notify_last_test(const char *audit_dir)
{
    char *dir = xasprintf("%s/%s", audit_dir, AUDIT_NOTIFICATIONS_DIR);
    DIR *d = opendir(dir);
    cJSON *newest = NULL;
    double newest_time = -INFINITY;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!is_record_name(e->d_name))
            continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        char *text = NULL;
        cJSON *doc = fsio_read_file(&text, NULL, path) == 0 ? cJSON_Parse(text) : NULL;
        double t;
        if (cJSON_IsObject(doc) && !strcmp(json_text(doc, "event", ""), "test") &&
            timefmt_parse_timestamp(&t, json_text(doc, "time", "")) == 0 && t >= newest_time) {
            cJSON_Delete(newest);
            newest = doc;
            newest_time = t;
            doc = NULL;
        }
        cJSON_Delete(doc);
        free(text);
        free(path);
    }
    if (d)
        closedir(d);
    free(dir);
    return newest;
}
