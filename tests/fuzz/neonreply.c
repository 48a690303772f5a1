/* neonreply: the answers of the Neon API as drctl's client reads them:
 * the status, the Retry-After header and the body, through the same
 * steps neon_call takes (on_header, on_body, judge, decode).
 *
 * neon.c keeps those steps static behind neon_call, so this harness
 * compiles neon.c into itself (fuzz.mk leaves neon.o out of its link). The
 * input is "METHOD STATUS\n", header lines, an empty line and the body;
 * no request is sent.
 *
 * Beyond "no crash": a Retry-After read is 0 or a positive finite number;
 * a 2xx answer decodes to a tree, or is refused as MALFORMED_RESPONSE
 * when the body is no JSON; a retried status is one of the six the
 * contract names; every failure has a message for the reply and for
 * err_last, and a failure whose body is Neon's error shape carries its
 * message and code (a code is never empty). */
#include "fuzz.h"

#include "../../engine/neon.c"

static neon_client *client;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (neon_client_new(&client, "http://127.0.0.1:9", "fuzz-api-key") != 0)
        abort();
    return 0;
}

/* Headers come one line at a time, with their CRLF, as libcurl gives them. */
static const char *feed_headers(attempt *a, const char *p, const char *end)
{
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        if (len == 1 || (len == 2 && p[0] == '\r'))
            return p + len;
        char *line = malloc(len + 1);
        memcpy(line, p, len);
        FUZZ_CHECK(on_header(line, 1, len, a) == len);
        free(line);
        p += len;
    }
    return p;
}

static void check_verdict(int verdict, int rc, const neon_reply *reply, const attempt *a,
                          const cJSON *response)
{
    if (verdict == 0 && a->body.len && rc == 0)
        FUZZ_CHECK(response != NULL);
    if (verdict == 0 && rc != 0)
        FUZZ_CHECK(reply->code && strcmp(reply->code, "MALFORMED_RESPONSE") == 0);
    if (verdict == 1)
        FUZZ_CHECK(neon_retryable_status(a->status) && reply->message);
    if (verdict < 0 || rc != 0)
        FUZZ_CHECK(reply->message && *err_last());
    if (reply->code)
        FUZZ_CHECK(*reply->code);
    /* Neon's error shape is read as it is. */
    cJSON *doc = cJSON_ParseWithLength(a->body.data ? a->body.data : "", a->body.len);
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(doc, "message");
    if (verdict != 0 && cJSON_IsString(message))
        FUZZ_CHECK(strcmp(reply->message, message->valuestring) == 0);
    if (verdict == 0) /* no earlier try was lost here, so a DELETE's 404 is no success */
        FUZZ_CHECK(a->status >= 200 && a->status < 300);
    cJSON_Delete(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    const char *nl = memchr(p, '\n', size);
    if (!nl)
        return 0;
    char first[64];
    size_t first_len = (size_t)(nl - p) < sizeof first - 1 ? (size_t)(nl - p) : sizeof first - 1;
    memcpy(first, p, first_len);
    first[first_len] = '\0';
    char method[16] = "GET";
    long status = 0;
    if (sscanf(first, "%15s %ld", method, &status) < 1 || !neon_valid_method(method))
        snprintf(method, sizeof method, "GET");
    attempt a = { .body = BUF_INIT, .status = status, .sent = 1 };
    const char *body = feed_headers(&a, nl + 1, end);
    FUZZ_CHECK(a.retry_after == 0 || (a.retry_after > 0 && isfinite(a.retry_after)));
    FUZZ_CHECK(on_body((char *)body, 1, (size_t)(end - body), &a.body) == (size_t)(end - body));
    neon_reply reply;
    memset(&reply, 0, sizeof reply);
    cJSON *response = NULL;
    int verdict = judge(&reply, client, method, "/projects/fuzz", &a, 0);
    int rc = verdict == 0 ? decode(&response, &reply, method, "/projects/fuzz", &a) : 0;
    check_verdict(verdict, rc, &reply, &a, response);
    double wait = neon_retry_wait(a.retry_after, 0.2, 0.5);
    FUZZ_CHECK(wait > 0 && !isnan(wait));
    cJSON_Delete(response);
    neon_reply_dispose(&reply);
    buf_dispose(&a.body);
    return 0;
}
