#include "neon.h"

#include "buf.h"
#include "err.h"
#include "jsontext.h"
#include "term.h"
#include "timefmt.h"
#include "jsonfield.h"

#include <curl/curl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct neon_client {
    char *base;
    char *auth_header;
    neon_policy policy;
    neon_stop_fn stop;
    void *stop_ud;
    CURL *curl; /* kept between calls: one connection, kept alive */
};

static const neon_policy default_policy = {
    .attempts = 6, .deadline = 120, .connect_timeout = 10, .transfer_timeout = 60,
    .first_backoff = 0.2, .max_backoff = 8,
};

void neon_reply_dispose(neon_reply *r)
{
    free(r->code);
    free(r->message);
    free(r->request_id);
    memset(r, 0, sizeof *r);
}

/* ---- what may go into a request ----------------------------------------------- */

/* The offset of the first byte that cannot go into a request line or a
 * header as it is, or -1: a control character (a CR or LF would end the
 * line and start another header or request), or, in a URL, a space. */
static long unsafe_byte_at(const char *text, int space_allowed)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f || (*p == ' ' && !space_allowed))
            return (long)(p - (const unsigned char *)text);
    return -1;
}

static const char *byte_name(unsigned char c, char *spare, size_t size)
{
    switch (c) {
    case '\r':
        return "a carriage return (CR, 0x0D)";
    case '\n':
        return "a line feed (LF, 0x0A)";
    case '\t':
        return "a tab (0x09)";
    case ' ':
        return "a space";
    default:
        snprintf(spare, size, "the control character 0x%02X", c);
        return spare;
    }
}

/* text with its control characters written as \r, \n, \xNN, for a message. */
static char *shown(const char *text)
{
    buf b = BUF_INIT;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '\r')
            buf_puts(&b, "\\r");
        else if (*p == '\n')
            buf_puts(&b, "\\n");
        else if (*p < 0x20 || *p == 0x7f)
            buf_printf(&b, "\\x%02X", *p);
        else
            buf_putc(&b, (char)*p);
    }
    return buf_detach(&b);
}

int neon_valid_method(const char *method)
{
    static const char *const methods[] = { "GET", "POST", "PATCH", "PUT", "DELETE" };
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
        if (strcmp(method, methods[i]) == 0)
            return 1;
    return 0;
}

int neon_check_path(const char *path)
{
    if (path[0] != '/')
        return err_set(DR_EUSAGE, "the path '%s' must start with '/' (it is relative to the API base)", path);
    long at = unsafe_byte_at(path, 0);
    if (at < 0)
        return 0;
    char spare[48], *text = shown(path);
    int rc = err_set(DR_EUSAGE, "the path '%s' holds %s at byte %ld: a path cannot carry it; percent-encode "
                     "the parts that come from data (neon.escape does)",
                     text, byte_name((unsigned char)path[at], spare, sizeof spare), at);
    free(text);
    return rc;
}

int neon_client_new(neon_client **out, const char *base_url, const char *api_key)
{
    static int curl_ready;
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = 1;
    }
    *out = NULL;
    if (!base_url || (strncmp(base_url, "https://", 8) != 0 && strncmp(base_url, "http://", 7) != 0))
        return err_set(DR_EUSAGE, "the Neon API address '%s' must start with https:// (or http:// for neon-local)",
                       base_url ? base_url : "");
    char spare[48];
    long at = unsafe_byte_at(base_url, 0);
    if (at >= 0) {
        char *text = shown(base_url);
        int rc = err_set(DR_EUSAGE, "the Neon API address '%s' holds %s at byte %ld; check NEON_API_HOST", text,
                         byte_name((unsigned char)base_url[at], spare, sizeof spare), at);
        free(text);
        return rc;
    }
    /* The key goes into a header: a CR or LF in it would add headers of
     * its own. It is not shown, being a secret. */
    if (api_key && (at = unsafe_byte_at(api_key, 1)) >= 0)
        return err_set(DR_EUSAGE, "the API key holds %s at byte %ld; check NEON_API_KEY (a copied key often "
                       "ends with a line feed)", byte_name((unsigned char)api_key[at], spare, sizeof spare), at);
    neon_client *c = xcalloc(1, sizeof *c);
    c->base = xstrdup(base_url);
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = '\0';
    c->auth_header = xasprintf("Authorization: Bearer %s", api_key ? api_key : "");
    c->policy = default_policy;
    c->curl = curl_easy_init();
    if (!c->curl) {
        neon_client_free(c);
        return err_set(DR_EFAIL, "libcurl could not start");
    }
    *out = c;
    return 0;
}

void neon_client_free(neon_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    if (c->auth_header) /* the key: wiped, not just freed */
        memset(c->auth_header, 0, strlen(c->auth_header));
    free(c->auth_header);
    free(c->base);
    free(c);
}

void neon_client_set_policy(neon_client *c, const neon_policy *p)
{
    c->policy = *p;
}

void neon_client_set_stop(neon_client *c, neon_stop_fn stop, void *ud)
{
    c->stop = stop;
    c->stop_ud = ud;
}

const char *neon_client_base_url(const neon_client *c)
{
    return c->base;
}

/* ---- one try --------------------------------------------------------------------- */

typedef struct attempt {
    buf body;
    double retry_after; /* seconds, 0 when absent */
    long status;
    CURLcode curl_code;
    int sent;           /* the request left this machine */
    char curl_error[CURL_ERROR_SIZE];
} attempt;

static size_t on_body(char *data, size_t size, size_t count, void *ud)
{
    buf_append(ud, data, size * count);
    return size * count;
}

static size_t on_header(char *data, size_t size, size_t count, void *ud)
{
    attempt *a = ud;
    size_t len = size * count;
    if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        /* The line is not NUL-terminated: copied before it is read. */
        char value[64];
        size_t n = len - 12 < sizeof value - 1 ? len - 12 : sizeof value - 1;
        memcpy(value, data + 12, n);
        value[n] = '\0';
        double seconds = neon_parse_retry_after(value);
        if (seconds > 0)
            a->retry_after = seconds;
    }
    return len;
}

double neon_parse_retry_after(const char *value)
{
    double seconds = strtod(value, NULL);
    return seconds > 0 && isfinite(seconds) ? seconds : 0;
}

static void try_once(attempt *a, neon_client *c, const char *method, const char *url, const char *body_text,
                     double time_left)
{
    CURL *h = c->curl;
    curl_easy_reset(h);
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, c->auth_header);
    headers = curl_slist_append(headers, "Accept: application/json");
    if (body_text)
        headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body_text)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body_text);
    else if (strcmp(method, "POST") == 0)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "drctl/" DRCTL_VERSION);
    /* libcurl silently sends a request again when a reused connection turns
     * out dead: harmless for a GET, not for a change that may have been
     * made. Changes get a connection of their own. */
    if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    }
    double total = c->policy.transfer_timeout;
    if (time_left >= 0 && time_left < total)
        total = time_left > 0.05 ? time_left : 0.05;
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->policy.connect_timeout * 1000));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(total * 1000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &a->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, a->curl_error);
    a->curl_error[0] = '\0';
    a->curl_code = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
    long request_size = 0;
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &request_size);
    a->sent = request_size > 0;
    curl_slist_free_all(headers);
}

/* libcurl errors that say the request itself is wrong: no retry mends it. */
static int permanent_curl_error(CURLcode code)
{
    return code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL || code == CURLE_BAD_FUNCTION_ARGUMENT ||
           code == CURLE_NOT_BUILT_IN;
}

int neon_retryable_status(long status)
{
    return status == 423 || status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

/* ---- errors ------------------------------------------------------------------------ */

static void set_text(char **field, const char *value)
{
    free(*field);
    *field = value ? xstrdup(value) : NULL;
}

/* Reads Neon's error shape {code, message, request_id} into the reply. */
static void read_api_error(neon_reply *reply, const attempt *a)
{
    cJSON *doc = cJSON_ParseWithLength(a->body.data ? a->body.data : "", a->body.len);
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(doc, "code");
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(doc, "message");
    const cJSON *request_id = cJSON_GetObjectItemCaseSensitive(doc, "request_id");
    set_text(&reply->code, cJSON_IsString(code) && code->valuestring[0] ? code->valuestring : NULL);
    set_text(&reply->request_id, cJSON_IsString(request_id) ? request_id->valuestring : NULL);
    if (cJSON_IsString(message))
        set_text(&reply->message, message->valuestring);
    else
        set_text(&reply->message, a->body.len ? "(the answer is not Neon's error shape)" : "(no message)");
    cJSON_Delete(doc);
}

static int fail_with(neon_reply *reply, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_with(neon_reply *reply, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char text[2048];
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (!reply->message)
        reply->message = xstrdup(text);
    return err_set(code, "%s", text);
}

/* ---- waiting ------------------------------------------------------------------------- */

/* Sleeps seconds in short slices, so that a signal or the step's deadline
 * stops it. Returns DR_EINTR when stopped. */
static int pause_for(neon_client *c, double seconds)
{
    double end = timefmt_monotonic() + seconds;
    for (;;) {
        double left = end - timefmt_monotonic();
        if (c->stop && c->stop(c->stop_ud, NULL))
            return DR_EINTR;
        if (left <= 0)
            return 0;
        double slice = left < 0.05 ? left : 0.05;
        struct timespec ts = { (time_t)slice, (long)((slice - floor(slice)) * 1e9) };
        nanosleep(&ts, NULL);
    }
}

/* How long the call may still take: its own deadline and the caller's. */
static double time_left(neon_client *c, double started)
{
    double left = c->policy.deadline - (timefmt_monotonic() - started);
    double caller = -1;
    if (c->stop)
        c->stop(c->stop_ud, &caller);
    if (caller >= 0 && caller < left)
        left = caller;
    return left;
}

/* ---- the call ---------------------------------------------------------------------------- */

neon_verdict neon_classify(const char *method, int curl_code, long status, int sent, int dropped_before)
{
    if (curl_code == CURLE_OK && status == 404 && dropped_before && strcmp(method, "DELETE") == 0)
        return NEON_ALREADY_DONE;
    if (curl_code != CURLE_OK) {
        if (permanent_curl_error((CURLcode)curl_code))
            return NEON_REQUEST_REFUSED;
        if (sent && strcmp(method, "POST") == 0)
            return NEON_OUTCOME_UNKNOWN;
        return NEON_RETRY;
    }
    if (status >= 200 && status < 300)
        return NEON_SUCCEEDED;
    if (neon_retryable_status(status))
        return NEON_RETRY;
    return status == 401 ? NEON_KEY_REFUSED : NEON_FAILED;
}

double neon_retry_wait(double retry_after, double backoff, double unit_random)
{
    return retry_after > 0 ? retry_after : backoff * (0.5 + 0.5 * unit_random);
}

double neon_next_backoff(double backoff, double max_backoff)
{
    return backoff * 2 < max_backoff ? backoff * 2 : max_backoff;
}

int neon_gives_up(int attempts, int max_attempts, double seconds_left, double wait)
{
    return attempts >= max_attempts || seconds_left < wait;
}

/* What to do after a try: 0 done (2xx), 1 retry, or an error code; the
 * reply gets the status and, on failure, the error. */
static int judge(neon_reply *reply, neon_client *c, const char *method, const char *path, attempt *a,
                 int dropped_before)
{
    reply->status = a->status;
    const char *curl_text = a->curl_error[0] ? a->curl_error : curl_easy_strerror(a->curl_code);
    switch (neon_classify(method, a->curl_code, a->status, a->sent, dropped_before)) {
    case NEON_ALREADY_DONE:
        buf_dispose(&a->body);
        return 0;
    case NEON_SUCCEEDED:
        return 0;
    case NEON_REQUEST_REFUSED:
        set_text(&reply->code, "BAD_REQUEST");
        return fail_with(reply, DR_EFAIL, "%s %s: libcurl refused the request: %s", method, path, curl_text);
    case NEON_OUTCOME_UNKNOWN:
        reply->outcome_unknown = 1;
        set_text(&reply->code, "OUTCOME_UNKNOWN");
        return fail_with(reply, DR_EFAIL, "%s %s: the connection broke after the request was sent (%s); it may "
                         "or may not have happened, so it is not repeated blindly", method, path, curl_text);
    case NEON_RETRY:
        if (a->curl_code == CURLE_OK)
            read_api_error(reply, a);
        return 1;
    case NEON_KEY_REFUSED:
        read_api_error(reply, a);
        return fail_with(reply, DR_EFAIL, "the API key was refused (401) by %s for %s %s: check NEON_API_KEY",
                         c->base, method, path);
    case NEON_FAILED:
        break;
    }
    read_api_error(reply, a);
    return fail_with(reply, DR_EFAIL, "%s %s: %ld %s", method, path, a->status, reply->message);
}

static int decode(cJSON **response, neon_reply *reply, const char *method, const char *path, attempt *a)
{
    if (a->body.len == 0) {
        *response = cJSON_CreateObject();
        return 0;
    }
    *response = cJSON_ParseWithLength(a->body.data, a->body.len);
    if (!*response) {
        set_text(&reply->code, "MALFORMED_RESPONSE");
        return fail_with(reply, DR_EFAIL, "%s %s answered %ld with malformed JSON (%zu bytes); nothing was assumed",
                         method, path, a->status, a->body.len);
    }
    return 0;
}

/* The message after the last try of a call that kept failing. */
static int gave_up(neon_reply *reply, neon_client *c, const char *method, const char *path, const attempt *a)
{
    if (a->curl_code != CURLE_OK) {
        set_text(&reply->code, "UNREACHABLE");
        free(reply->message);
        reply->message = NULL;
        return fail_with(reply, DR_EFAIL, "cannot reach the Neon API at %s for %s %s after %d attempts: %s",
                         c->base, method, path, reply->attempts,
                         a->curl_error[0] ? a->curl_error : curl_easy_strerror(a->curl_code));
    }
    return fail_with(reply, DR_EFAIL, "%s %s: still %ld after %d attempts: %s", method, path, a->status,
                     reply->attempts, reply->message ? reply->message : "");
}

int neon_call(cJSON **response, neon_reply *reply, neon_client *c, const char *method, const char *path,
              const cJSON *body)
{
    *response = NULL;
    memset(reply, 0, sizeof *reply);
    if (!neon_valid_method(method))
        return fail_with(reply, DR_EUSAGE, "'%s' is not an HTTP method drctl sends (GET, POST, PATCH, PUT, DELETE)",
                         method);
    if (neon_check_path(path) != 0) {
        set_text(&reply->code, "BAD_REQUEST");
        reply->message = xstrdup(err_last());
        return DR_EUSAGE;
    }
    char *url = xasprintf("%s%s", c->base, path);
    char *body_text = body ? json_print_exact(body, 0) : NULL;
    double started = timefmt_monotonic(), backoff = c->policy.first_backoff;
    int rc = DR_EFAIL, dropped = 0; /* an earlier try was sent and its answer lost */
    for (;;) {
        attempt a = { .body = BUF_INIT };
        reply->attempts++;
        try_once(&a, c, method, url, body_text, time_left(c, started));
        int verdict = judge(reply, c, method, path, &a, dropped);
        dropped = dropped || (a.curl_code != CURLE_OK && a.sent);
        if (verdict == 0)
            rc = decode(response, reply, method, path, &a);
        else if (verdict != 1)
            rc = verdict;
        double wait = neon_retry_wait(a.retry_after, backoff, (double)rand() / RAND_MAX);
        int last = verdict == 1 && neon_gives_up(reply->attempts, c->policy.attempts, time_left(c, started), wait);
        if (last)
            rc = gave_up(reply, c, method, path, &a);
        buf_dispose(&a.body);
        if (verdict != 1 || last)
            break;
        if (pause_for(c, wait) != 0) {
            rc = fail_with(reply, DR_EINTR, "%s %s: interrupted while waiting to retry", method, path);
            break;
        }
        backoff = neon_next_backoff(backoff, c->policy.max_backoff);
    }
    reply->duration = timefmt_monotonic() - started;
    free(url);
    if (body_text)
        free(body_text);
    return rc;
}

/* ---- operations ----------------------------------------------------------------------------- */

static int finished(const char *status)
{
    return status && (!strcmp(status, "finished") || !strcmp(status, "skipped"));
}

static int failed(const char *status)
{
    return status && (!strcmp(status, "failed") || !strcmp(status, "error") || !strcmp(status, "cancelled"));
}

/* What a wait is on, for the progress line: the operation's action, on
 * which branch or endpoint, its status, for how long. */
static void show_wait(const cJSON *op, const char *action, const char *status, double seconds)
{
    const char *branch = json_text(op, "branch_id", NULL), *endpoint = json_text(op, "endpoint_id", NULL);
    char waited[32];
    timefmt_format_duration(waited, sizeof waited, seconds);
    term_progress("waiting on Neon: %s%s%s (%s), %s", action, endpoint ? " of endpoint " : branch ? " of branch " : "",
                  endpoint ? endpoint : branch ? branch : "", status ? status : "?", waited);
}

/* Polls one operation until it ends. The pause grows by a quarter up to
 * a second: an operation is seen ended at most a quarter of its time (or
 * a second) late, where growing by half up to 2 s added up to half of it,
 * and a recovery is a chain of such waits; a second between polls stays
 * far below the API's rate limits. */
static int wait_one(neon_reply *reply, int *polls, neon_client *c, const cJSON *op)
{
    const char *id = json_text(op, "id", NULL), *project = json_text(op, "project_id", NULL);
    if (!id || !project)
        return fail_with(reply, DR_EFAIL, "an operation without id or project_id cannot be waited on");
    char *path = xasprintf("/projects/%s/operations/%s", project, id);
    char *status = json_text(op, "status", NULL) ? xstrdup(json_text(op, "status", NULL)) : NULL;
    char *error = NULL, *action = json_text(op, "action", NULL) ? xstrdup(json_text(op, "action", NULL)) : xstrdup("?");
    double delay = 0.1, started = timefmt_monotonic();
    int rc = 0;
    while (rc == 0 && !finished(status) && !failed(status)) {
        if ((rc = pause_for(c, delay)) != 0) {
            rc = fail_with(reply, DR_EINTR, "interrupted while waiting for operation %s (%s)", id, action);
            break;
        }
        delay = delay * 1.25 < 1 ? delay * 1.25 : 1;
        show_wait(op, action, status, timefmt_monotonic() - started);
        cJSON *answer = NULL;
        neon_reply poll = { 0 };
        rc = neon_call(&answer, &poll, c, "GET", path, NULL);
        if (polls)
            (*polls)++;
        if (rc == 0) {
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(answer, "operation");
            free(status);
            free(error);
            status = json_text(o, "status", NULL) ? xstrdup(json_text(o, "status", NULL)) : NULL;
            error = json_text(o, "error", NULL) ? xstrdup(json_text(o, "error", NULL)) : NULL;
            if (!status)
                rc = fail_with(reply, DR_EFAIL, "GET %s answered without an operation status", path);
        } else {
            free(reply->message);
            reply->message = NULL;
            set_text(&reply->code, poll.code);
            reply->status = poll.status;
            rc = fail_with(reply, rc, "waiting for operation %s (%s): %s", id, action, poll.message);
        }
        neon_reply_dispose(&poll);
        cJSON_Delete(answer);
    }
    term_progress_end();
    if (rc == 0 && failed(status)) {
        set_text(&reply->code, "OPERATION_FAILED");
        rc = fail_with(reply, DR_EFAIL, "operation %s (%s) ended %s: %s", id, action, status,
                       error ? error : "(no error given)");
    }
    free(status);
    free(error);
    free(action);
    free(path);
    return rc;
}

int neon_wait_operations(neon_reply *reply, int *polls, neon_client *c, const cJSON *operations)
{
    memset(reply, 0, sizeof *reply);
    if (polls)
        *polls = 0;
    double started = timefmt_monotonic();
    const cJSON *op;
    int rc = 0;
    cJSON_ArrayForEach(op, operations) {
        if ((rc = wait_one(reply, polls, c, op)) != 0)
            break;
    }
    reply->duration = timefmt_monotonic() - started;
    return rc;
}
