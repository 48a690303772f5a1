/* The HTTP clients (S3, the Neon API, webhooks) against a real HTTP server
 * on 127.0.0.1 (libmicrohttpd, in this process), answering from a script:
 * errors of each kind, answers cut short or malformed, connections dropped
 * or refused, redirects, slow answers meeting the clients' timeouts. Each
 * test starts its own server and stops it before it ends. */
#include "test.h"

#include "audit.h"
#include "buf.h"
#include "config.h"
#include "err.h"
#include "neon.h"
#include "notify.h"
#include "s3.h"
#include "timefmt.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- a scripted server --------------------------------------------------------------- */

/* One answer: the nth request gets script[n], the last one repeating. */
typedef struct answer {
    int status;          /* 0: the connection is closed with no answer at all */
    const char *body;    /* NULL: none */
    const char *header;  /* "Name: value", or NULL */
    const char *header2;
    int delay_ms;        /* silence before answering */
    long long length;    /* > 0: Content-Length announced (for a HEAD: the object's size) */
    int cut;             /* the body is sent, then the connection breaks before `length` bytes */
    void (*before)(void); /* called once the request is in, before the answer goes */
} answer;

#define MAX_SEEN 16
#define BODY_KEPT 4096

/* What the server saw of one request. */
typedef struct seen {
    char method[16];
    char path[256];
    char query[512];     /* "name=value&..." as decoded, in the request's order */
    char auth[256];      /* the Authorization header */
    char meta_sha256[80];
    char content_type[64];
    char body[BODY_KEPT];
    long long body_len;
} seen;

typedef struct server {
    struct MHD_Daemon *daemon;
    int port;
    char url[64];        /* http://127.0.0.1:PORT */
    pthread_mutex_t lock;
    const answer *script;
    size_t script_len;
    int requests;
    seen seen[MAX_SEEN];
    volatile int stopping;
} server;

typedef struct request_state {
    int index;
    long long body_len;
} request_state;

static enum MHD_Result collect_query(void *ud, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    char *q = ud;
    size_t n = strlen(q);
    snprintf(q + n, 512 - n, "%s%s=%s", n ? "&" : "", key, value ? value : "");
    return MHD_YES;
}

static void copy_header(char *out, size_t size, struct MHD_Connection *conn, const char *name)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
    snprintf(out, size, "%s", v ? v : "");
}

static void note_request(server *s, request_state *rq, struct MHD_Connection *conn, const char *url,
                         const char *method)
{
    pthread_mutex_lock(&s->lock);
    rq->index = s->requests++;
    if (rq->index < MAX_SEEN) {
        seen *w = &s->seen[rq->index];
        memset(w, 0, sizeof *w);
        snprintf(w->method, sizeof w->method, "%s", method);
        snprintf(w->path, sizeof w->path, "%s", url);
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, w->query);
        copy_header(w->auth, sizeof w->auth, conn, "Authorization");
        copy_header(w->meta_sha256, sizeof w->meta_sha256, conn, "x-amz-meta-sha256");
        copy_header(w->content_type, sizeof w->content_type, conn, "Content-Type");
    }
    pthread_mutex_unlock(&s->lock);
}

static void note_body(server *s, const request_state *rq, const char *data, size_t len)
{
    if (rq->index >= MAX_SEEN)
        return;
    pthread_mutex_lock(&s->lock);
    seen *w = &s->seen[rq->index];
    size_t kept = (size_t)w->body_len < BODY_KEPT - 1 ? (size_t)w->body_len : BODY_KEPT - 1;
    size_t room = BODY_KEPT - 1 - kept;
    memcpy(w->body + kept, data, len < room ? len : room);
    w->body_len += (long long)len;
    pthread_mutex_unlock(&s->lock);
}

/* A body of `length` bytes of which `text` is the start; with cut, the
 * connection breaks once the text is out. */
typedef struct stream {
    const char *text;
    long long length;
    int cut;
} stream;

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    stream *st = cls;
    size_t text_len = st->text ? strlen(st->text) : 0;
    if (pos >= text_len) {
        if (st->cut)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        size_t n = (size_t)st->length - pos < max ? (size_t)(st->length - (long long)pos) : max;
        memset(out, 'x', n);
        return (ssize_t)n;
    }
    size_t n = text_len - pos < max ? text_len - pos : max;
    memcpy(out, st->text + pos, n);
    return (ssize_t)n;
}

static void add_header(struct MHD_Response *r, const char *line)
{
    if (!line)
        return;
    const char *colon = strchr(line, ':');
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(colon - line), line);
    const char *value = colon + 1;
    while (*value == ' ')
        value++;
    MHD_add_response_header(r, name, value);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **state)
{
    (void)version;
    server *s = cls;
    request_state *rq = *state;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        *state = rq;
        note_request(s, rq, conn, url, method);
        return MHD_YES;
    }
    if (*upload_size) {
        note_body(s, rq, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&s->lock);
    answer a = s->script_len ? s->script[(size_t)rq->index < s->script_len ? (size_t)rq->index : s->script_len - 1]
                             : (answer){ .status = 500, .body = "no script" };
    pthread_mutex_unlock(&s->lock);
    for (int waited = 0; waited < a.delay_ms && !s->stopping; waited += 10) {
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (a.before)
        a.before();
    if (a.status == 0)
        return MHD_NO; /* MHD closes the connection */
    struct MHD_Response *r;
    if (a.length > 0) {
        stream *st = malloc(sizeof *st);
        *st = (stream){ a.body, a.length, a.cut };
        r = MHD_create_response_from_callback((uint64_t)a.length, 4096, stream_read, st, free);
    } else {
        r = MHD_create_response_from_buffer(a.body ? strlen(a.body) : 0, (void *)(a.body ? a.body : ""),
                                            MHD_RESPMEM_MUST_COPY);
    }
    add_header(r, a.header);
    add_header(r, a.header2);
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)a.status, r);
    MHD_destroy_response(r);
    return ok;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)conn, (void)why;
    free(*state);
    *state = NULL;
}

static int server_start(server *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    struct sockaddr_in at = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
                                 on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&at,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    if (!s->daemon)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    return s->port ? 0 : -1;
}

static void server_stop(server *s)
{
    s->stopping = 1;
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    pthread_mutex_destroy(&s->lock);
}

static int requests_seen(server *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->requests;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* A port on 127.0.0.1 where nothing listens (it was free a moment ago). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* ---- one test's world, freed whatever the test's outcome ------------------------------- */

typedef struct served {
    server http;
    neon_client *neon;   /* to the server, with a policy of short waits */
    neon_reply reply;
    cJSON *response;
    config *cfg;
    cJSON *deliveries;
    s3_object *objects;
    size_t count;
    audit *trail;
} served;

static const neon_policy fast_policy = {
    .attempts = 3, .deadline = 5, .connect_timeout = 1, .transfer_timeout = 1,
    .first_backoff = 0.01, .max_backoff = 0.02,
};

#define serve(t, script) serve_script(&(t)->http, script, sizeof script / sizeof *script)

static void serve_script(server *s, const answer *script, size_t len)
{
    pthread_mutex_lock(&s->lock);
    s->script = script;
    s->script_len = len;
    pthread_mutex_unlock(&s->lock);
}

static void s3_env(const server *s)
{
    char endpoint[80];
    snprintf(endpoint, sizeof endpoint, "%s//", s->url); /* trailing slashes are dropped */
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    setenv("AWS_REGION", "eu-west-1", 1);
    setenv("AWS_ENDPOINT_URL_S3", endpoint, 1);
    unsetenv("AWS_SESSION_TOKEN");
}

static void s3_env_clear(void)
{
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_REGION");
    unsetenv("AWS_ENDPOINT_URL_S3");
    unsetenv("DRCTL_COV_HOOK");
}

static void run_served(void (*body)(served *))
{
    served *t = calloc(1, sizeof *t);
    if (server_start(&t->http) != 0) {
        test_fail(__FILE__, __LINE__, "the test server starts on 127.0.0.1", NULL);
    } else {
        s3_env(&t->http);
        if (neon_client_new(&t->neon, t->http.url, "test-key") == 0)
            neon_client_set_policy(t->neon, &fast_policy);
        body(t);
    }
    s3_env_clear();
    neon_client_free(t->neon);
    neon_reply_dispose(&t->reply);
    cJSON_Delete(t->response);
    config_free(t->cfg);
    cJSON_Delete(t->deliveries);
    s3_objects_free(t->objects, t->count);
    if (t->trail)
        audit_free(t->trail);
    server_stop(&t->http);
    free(t);
}

/* A test run against a fresh server: `name` is registered, its body gets t. */
#define SERVED_TEST(name)                             \
    static void name##_with(served *t);               \
    static void name(void) { run_served(name##_with); } \
    static void name##_with(served *t)

/* A local file of len bytes (a repeating pattern); its path (static). */
static const char *pattern_file(const char *name, size_t len)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    char block[4096];
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (char)('a' + i % 26);
    for (size_t done = 0; f && done < len;) {
        size_t n = len - done < sizeof block ? len - done : sizeof block;
        fwrite(block, 1, n, f);
        done += n;
    }
    if (f)
        fclose(f);
    return path;
}

static void md5_of_file(const char *path, char hex[33])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
    FILE *f = fopen(path, "rb");
    char block[65536];
    size_t n;
    while (f && (n = fread(block, 1, sizeof block, f)) > 0)
        EVP_DigestUpdate(ctx, block, n);
    if (f)
        fclose(f);
    unsigned char digest[16];
    EVP_DigestFinal_ex(ctx, digest, NULL);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

static char *file_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf b = BUF_INIT;
    char block[4096];
    size_t n;
    while ((n = fread(block, 1, sizeof block, f)) > 0)
        buf_append(&b, block, n);
    fclose(f);
    return buf_detach(&b);
}

#define SHA "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
#define PART (8 << 20)

/* ---- S3: requests refused before anything is sent ---------------------------------------- */

static void s3_urls_that_are_not_s3_are_refused(void)
{
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    int exists = 1;
    int rc = s3_exists(&exists, "gs://bucket/key");
    s3_env_clear();
    CHECK(rc == DR_EUSAGE);
    CHECK(!exists);
    CHECK_CONTAINS(err_last(), "'gs://bucket/key' is not an S3 URL");
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    int no_bucket = s3_delete("s3://"), empty_bucket = s3_delete("s3:///key"), none = s3_exists(&exists, NULL);
    s3_env_clear();
    CHECK(no_bucket == DR_EUSAGE && empty_bucket == DR_EUSAGE && none == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "'' is not an S3 URL like s3://bucket/key");
}

static void s3_without_credentials_does_nothing(void)
{
    s3_env_clear();
    s3_object *objects = NULL;
    size_t count = 9;
    CHECK(s3_delete("s3://b/k") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "AWS_ACCESS_KEY_ID");
    CHECK(s3_upload("/nonexistent", "s3://b/k", NULL, NULL, NULL) == DR_EUSAGE);
    CHECK(s3_list(&objects, &count, "s3://b/") == DR_EUSAGE);
    CHECK(objects == NULL && count == 0);
    CHECK(s3_download("s3://b/k", "/nonexistent/x") == DR_EUSAGE);
}

SERVED_TEST(s3_an_upload_to_a_bucket_alone_is_refused_unsent)
{
    CHECK(s3_upload(pattern_file("f", 10), "s3://bucket", SHA, NULL, NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "names a bucket, not an object");
    CHECK(requests_seen(&t->http) == 0);
}

SERVED_TEST(s3_an_unreadable_file_is_not_uploaded)
{
    CHECK(s3_upload("/nonexistent/dump.bin", "s3://bucket/k", SHA, NULL, NULL) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "cannot read /nonexistent/dump.bin");
    CHECK(requests_seen(&t->http) == 0);
}

/* ---- S3: existence and deletion ------------------------------------------------------------ */

SERVED_TEST(s3_exists_reads_200_and_404)
{
    static const answer script[] = { { .status = 200 }, { .status = 404 } };
    serve(t, script);
    int exists = 0;
    CHECK(s3_exists(&exists, "s3://bucket/dir/a b") == 0);
    CHECK(exists == 1);
    CHECK(s3_exists(&exists, "s3://bucket/dir/a b") == 0);
    CHECK(exists == 0);
    CHECK_STR(t->http.seen[0].method, "HEAD");
    CHECK_STR(t->http.seen[0].path, "/bucket/dir/a b");
    CHECK_CONTAINS(t->http.seen[0].auth, "Credential=AKIDEXAMPLE/");
    CHECK_CONTAINS(t->http.seen[0].auth, "/eu-west-1/s3/aws4_request");
}

SERVED_TEST(s3_bad_credentials_are_reported_with_s3s_code_and_message)
{
    static const answer script[] = {
        { .status = 403, .body = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code>"
                                 "<Message>The request signature we calculated\tdoes not\nmatch</Message></Error>" },
    };
    serve(t, script);
    CHECK(s3_delete("s3://bucket/k") == DR_EFAIL);
    /* control characters of the service's words are shown as spaces */
    CHECK_CONTAINS(err_last(), "S3 deletion of s3://bucket/k: 403 SignatureDoesNotMatch: The request signature we "
                               "calculated does not match");
    CHECK(requests_seen(&t->http) == 1); /* a 4xx is not retried */
}

SERVED_TEST(s3_an_existence_check_answered_403_with_no_body_fails_with_its_status)
{
    static const answer script[] = { { .status = 403 } };
    serve(t, script);
    int exists = 1;
    CHECK(s3_exists(&exists, "s3://bucket/k") == DR_EFAIL);
    CHECK(!exists);
    CHECK_CONTAINS(err_last(), "S3 existence check of s3://bucket/k: 403");
}

SERVED_TEST(s3_a_deletion_answered_200_succeeds_too)
{
    static const answer script[] = { { .status = 200 } };
    serve(t, script);
    CHECK(s3_delete("s3://bucket/k") == 0);
    CHECK(requests_seen(&t->http) == 1);
}

SERVED_TEST(s3_a_deletion_answered_204_succeeds)
{
    static const answer script[] = { { .status = 204 } };
    serve(t, script);
    CHECK(s3_delete("s3://bucket/old/dump") == 0);
    CHECK_STR(t->http.seen[0].method, "DELETE");
    CHECK_STR(t->http.seen[0].path, "/bucket/old/dump");
}

SERVED_TEST(s3_a_redirect_is_not_followed_but_reported)
{
    static const answer script[] = {
        { .status = 301, .header = "Location: http://127.0.0.1:1/elsewhere",
          .body = "<Error><Code>PermanentRedirect</Code><Message>Use the eu-central-1 endpoint</Message></Error>" },
    };
    serve(t, script);
    CHECK(s3_delete("s3://bucket/k") == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "301 PermanentRedirect: Use the eu-central-1 endpoint");
    CHECK(requests_seen(&t->http) == 1);
}

SERVED_TEST(s3_an_error_answer_that_is_not_xml_is_described)
{
    static const answer script[] = { { .status = 400, .body = "<html><body>Bad gateway" } };
    serve(t, script);
    CHECK(s3_delete("s3://bucket/k") == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "S3 deletion of s3://bucket/k: 400 (the answer is not valid XML: line 1");
}

SERVED_TEST(s3_an_error_document_without_code_or_message_names_its_root)
{
    static const answer script[] = { { .status = 409, .body = "<Oops><Detail>x</Detail></Oops>" } };
    serve(t, script);
    CHECK(s3_delete("s3://bucket/k") == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "409 (an answer <Oops> with no error Code or Message)");
}

SERVED_TEST(s3_a_busy_answer_is_retried_until_one_succeeds)
{
    static const answer script[] = {
        { .status = 503, .body = "<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>" },
        { .status = 204 },
    };
    serve(t, script);
    CHECK(s3_delete("s3://bucket/k") == 0);
    CHECK(requests_seen(&t->http) == 2);
}

/* ---- S3: downloads ------------------------------------------------------------------------------ */

SERVED_TEST(s3_a_download_writes_the_object_to_its_path)
{
    static const answer script[] = { { .status = 200, .body = "the dump's bytes\n" } };
    serve(t, script);
    char *path = xasprintf("%s/out.bin", test_tmpdir());
    int rc = s3_download("s3://bucket/dumps/x.bin", path);
    char *text = file_text(path);
    char *partial = xasprintf("%s.partial", path);
    int partial_left = access(partial, F_OK) == 0;
    free(partial);
    free(path);
    int same = text && !strcmp(text, "the dump's bytes\n");
    free(text);
    CHECK(rc == 0);
    CHECK(same);
    CHECK(!partial_left);
}

SERVED_TEST(s3_a_download_cut_short_is_fetched_again_from_the_start)
{
    static const answer script[] = {
        { .status = 200, .body = "the first half", .length = 4000, .cut = 1 },
        { .status = 200, .body = "all of it, at last" },
    };
    serve(t, script);
    char *path = xasprintf("%s/out.bin", test_tmpdir());
    int rc = s3_download("s3://bucket/x", path);
    char *text = file_text(path);
    free(path);
    int same = text && !strcmp(text, "all of it, at last");
    free(text);
    CHECK(rc == 0);
    CHECK(same);
    CHECK(requests_seen(&t->http) == 2);
}

SERVED_TEST(s3_a_missing_object_leaves_no_file_behind)
{
    static const answer script[] = {
        { .status = 404, .body = "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>"
                                 "</Error>" },
    };
    serve(t, script);
    char *path = xasprintf("%s/out.bin", test_tmpdir());
    char *partial = xasprintf("%s.partial", path);
    int rc = s3_download("s3://bucket/gone", path);
    int left = access(path, F_OK) == 0 || access(partial, F_OK) == 0;
    free(partial);
    free(path);
    CHECK(rc == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "S3 download of s3://bucket/gone: 404 NoSuchKey: The specified key does not exist.");
    CHECK(!left);
}

SERVED_TEST(s3_a_download_never_overwrites_and_needs_a_writable_place)
{
    const char *existing = test_write_file("there", "kept");
    CHECK(s3_download("s3://bucket/x", existing) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "already exists; the download does not overwrite it");
    CHECK(s3_download("s3://bucket/x", "/nonexistent-dir/out.bin") == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "cannot write /nonexistent-dir/out.bin.partial");
    CHECK(requests_seen(&t->http) == 0);
}

SERVED_TEST(s3_an_error_answer_over_8_mib_is_refused_without_retry)
{
    static const answer script[] = { { .status = 500, .body = "<Error>", .length = (8 << 20) + 4096 } };
    serve(t, script);
    CHECK(s3_delete("s3://bucket/k") == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "the answer is larger than 8 MiB");
    CHECK(requests_seen(&t->http) == 1);
}

SERVED_TEST(s3_the_default_region_the_generic_endpoint_and_a_session_token_are_used)
{
    static const answer script[] = { { .status = 204 } };
    serve(t, script);
    setenv("AWS_REGION", "", 1); /* empty: as if unset */
    setenv("AWS_DEFAULT_REGION", "ap-south-2", 1);
    setenv("AWS_ENDPOINT_URL", getenv("AWS_ENDPOINT_URL_S3"), 1);
    unsetenv("AWS_ENDPOINT_URL_S3");
    setenv("AWS_SESSION_TOKEN", "session-token-1", 1);
    int rc = s3_delete("s3://bucket/k");
    unsetenv("AWS_DEFAULT_REGION");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_SESSION_TOKEN");
    CHECK(rc == 0);
    CHECK_CONTAINS(t->http.seen[0].auth, "/ap-south-2/s3/aws4_request");
    CHECK_CONTAINS(t->http.seen[0].auth, ";x-amz-security-token,");
}

static char download_path[512];

/* Something takes the download's name while it is under way. */
static void take_the_download_name(void)
{
    mkdir(download_path, 0755);
}

SERVED_TEST(s3_a_download_whose_name_is_taken_meanwhile_keeps_nothing)
{
    static const answer script[] = { { .status = 200, .body = "bytes", .before = take_the_download_name } };
    serve(t, script);
    snprintf(download_path, sizeof download_path, "%s/out.bin", test_tmpdir());
    char *partial = xasprintf("%s.partial", download_path);
    int rc = s3_download("s3://bucket/x", download_path);
    int partial_left = access(partial, F_OK) == 0;
    free(partial);
    CHECK(rc == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "cannot rename ");
    CHECK(!partial_left);
}

/* ---- S3: uploads ---------------------------------------------------------------------------------- */

SERVED_TEST(s3_an_existing_object_is_never_overwritten)
{
    static const answer script[] = { { .status = 200 } };
    serve(t, script);
    CHECK(s3_upload(pattern_file("f", 100), "s3://bucket/k", SHA, NULL, NULL) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "s3://bucket/k already exists; an export is never overwritten");
    CHECK(requests_seen(&t->http) == 1);
    CHECK_STR(t->http.seen[0].method, "HEAD");
}

SERVED_TEST(s3_a_refused_single_part_upload_names_s3s_reason)
{
    static const answer script[] = {
        { .status = 404 },
        { .status = 403, .body = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>" },
    };
    serve(t, script);
    CHECK(s3_upload(pattern_file("f", 100), "s3://bucket/k", SHA, NULL, NULL) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "S3 upload of s3://bucket/k: 403 AccessDenied: Access Denied");
    CHECK_STR(t->http.seen[1].method, "PUT");
    CHECK(t->http.seen[1].body_len == 100);
    CHECK_STR(t->http.seen[1].meta_sha256, SHA);
}

/* An upload the service accepts, then shows with head (the HEAD after). */
static void upload_checked_by(served *t, const char *head_etag, long long head_length, const char *head_sha)
{
    static char etag_line[200], sha_line[120];
    snprintf(etag_line, sizeof etag_line, "ETag: %s", head_etag);
    snprintf(sha_line, sizeof sha_line, "x-amz-meta-sha256: %s", head_sha);
    static answer script[3];
    script[0] = (answer){ .status = 404 };
    script[1] = (answer){ .status = 200, .header = "ETag: \"ignored\"" };
    script[2] = (answer){ .status = 200, .header = etag_line, .header2 = sha_line, .length = head_length };
    serve_script(&t->http, script, 3);
}

SERVED_TEST(s3_a_single_part_upload_is_checked_as_stored)
{
    const char *path = pattern_file("f", 1000);
    char md5[33], quoted[40];
    md5_of_file(path, md5);
    snprintf(quoted, sizeof quoted, "\"%s\"", md5);
    upload_checked_by(t, quoted, 1000, SHA);
    CHECK(s3_upload(path, "s3://bucket/dumps/f", SHA, NULL, NULL) == 0);
    CHECK(requests_seen(&t->http) == 3);
    CHECK_STR(t->http.seen[2].method, "HEAD");
}

SERVED_TEST(s3_an_upload_without_sha256_is_checked_by_size_and_etag)
{
    const char *path = pattern_file("f", 300);
    char md5[33], quoted[40];
    md5_of_file(path, md5);
    snprintf(quoted, sizeof quoted, "\"%s\"", md5);
    upload_checked_by(t, quoted, 300, "whatever");
    CHECK(s3_upload(path, "s3://bucket/f", NULL, NULL, NULL) == 0);
    CHECK_STR(t->http.seen[1].meta_sha256, ""); /* none sent */
}

SERVED_TEST(s3_an_upload_stored_with_another_size_is_an_error)
{
    const char *path = pattern_file("f", 1000);
    char md5[33], quoted[40];
    md5_of_file(path, md5);
    snprintf(quoted, sizeof quoted, "\"%s\"", md5);
    upload_checked_by(t, quoted, 999, SHA);
    CHECK(s3_upload(path, "s3://bucket/f", SHA, NULL, NULL) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "differs from");
    CHECK_CONTAINS(err_last(), "size 999 vs 1000");
}

SERVED_TEST(s3_an_upload_stored_with_another_sha256_is_an_error)
{
    const char *path = pattern_file("f", 1000);
    char md5[33], quoted[40];
    md5_of_file(path, md5);
    snprintf(quoted, sizeof quoted, "\"%s\"", md5);
    upload_checked_by(t, quoted, 1000, "0000");
    CHECK(s3_upload(path, "s3://bucket/f", SHA, NULL, NULL) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "differs from");
}

SERVED_TEST(s3_an_overlong_etag_is_cut_and_does_not_match)
{
    char etag[300];
    memset(etag, 'e', sizeof etag - 1);
    etag[sizeof etag - 1] = '\0';
    upload_checked_by(t, etag, 1000, SHA);
    CHECK(s3_upload(pattern_file("f", 1000), "s3://bucket/f", SHA, NULL, NULL) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "ETag eeeeeeeeee");
    /* kept to 127 characters: no more e's than fit */
    const char *e = strstr(err_last(), "ETag e");
    CHECK(e && strspn(e + 5, "e") == 127);
}

SERVED_TEST(s3_an_upload_gone_afterwards_is_an_error)
{
    static const answer script[] = { { .status = 404 }, { .status = 200 }, { .status = 404 } };
    serve(t, script);
    CHECK(s3_upload(pattern_file("f", 10), "s3://bucket/f", NULL, NULL, NULL) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "s3://bucket/f is not there after its upload (HEAD answered 404)");
}

static long long progress_done;
static int progress_calls;

static void on_progress(void *ud, long long done, long long total)
{
    (void)ud;
    (void)total;
    progress_done = done;
    progress_calls++;
}

static const char initiated[] = "<?xml version=\"1.0\"?><InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/"
                                "doc/2006-03-01/\"><Bucket>bucket</Bucket><Key>big</Key><UploadId>up/1+2</UploadId>"
                                "</InitiateMultipartUploadResult>";

SERVED_TEST(s3_a_multipart_upload_sends_its_parts_and_completes)
{
    const char *path = pattern_file("big", PART + 10);
    char md5[33];
    static char etag[48];
    md5_of_file(path, md5);
    snprintf(etag, sizeof etag, "ETag: \"%s\"", md5); /* a compatible service: the whole file's MD5 */
    static answer script[6];
    script[0] = (answer){ .status = 404 };
    script[1] = (answer){ .status = 200, .body = initiated };
    script[2] = (answer){ .status = 200, .header = "ETag: \"p1&<>'\"" };
    script[3] = (answer){ .status = 200, .header = "ETag: \"p2\"" };
    script[4] = (answer){ .status = 200, .body = "<CompleteMultipartUploadResult><ETag>x</ETag>"
                                                 "</CompleteMultipartUploadResult>" };
    script[5] = (answer){ .status = 200, .header = etag, .header2 = "x-amz-meta-sha256: " SHA,
                          .length = PART + 10 };
    serve_script(&t->http, script, 6);
    progress_calls = 0;
    CHECK(s3_upload(path, "s3://bucket/big", SHA, on_progress, NULL) == 0);
    CHECK(progress_calls == 2 && progress_done == PART + 10);
    CHECK(requests_seen(&t->http) == 6);
    CHECK_STR(t->http.seen[1].method, "POST");
    CHECK_CONTAINS(t->http.seen[1].query, "uploads=");
    CHECK_CONTAINS(t->http.seen[2].query, "partNumber=1&uploadId=up/1+2");
    CHECK(t->http.seen[2].body_len == PART);
    CHECK(t->http.seen[3].body_len == 10);
    /* the parts' ETags go back escaped as XML text */
    CHECK_CONTAINS(t->http.seen[4].body, "<Part><PartNumber>1</PartNumber><ETag>&quot;p1&amp;&lt;&gt;&apos;&quot;"
                                         "</ETag></Part>");
    CHECK_CONTAINS(t->http.seen[4].body, "<PartNumber>2</PartNumber><ETag>&quot;p2&quot;</ETag>");
}

SERVED_TEST(s3_a_refused_multipart_start_sends_no_part)
{
    static const answer script[] = {
        { .status = 404 },
        { .status = 403, .body = "<Error><Code>AccessDenied</Code><Message>no</Message></Error>" },
    };
    serve(t, script);
    CHECK(s3_upload(pattern_file("big", PART + 1), "s3://bucket/big", SHA, NULL, NULL) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "S3 multipart start of s3://bucket/big: 403 AccessDenied: no");
    CHECK(requests_seen(&t->http) == 2);
}

SERVED_TEST(s3_a_multipart_start_without_upload_id_sends_no_part)
{
    static const answer script[] = {
        { .status = 404 },
        { .status = 200, .body = "<InitiateMultipartUploadResult><Bucket>b</Bucket></InitiateMultipartUploadResult>" },
    };
    serve(t, script);
    CHECK(s3_upload(pattern_file("big", PART + 1), "s3://bucket/big", SHA, NULL, NULL) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "no InitiateMultipartUploadResult/UploadId in the answer");
    CHECK(requests_seen(&t->http) == 2);
}

SERVED_TEST(s3_a_multipart_start_answered_by_something_else_is_not_s3)
{
    static const answer script[] = { { .status = 404 }, { .status = 200, .body = "<html><p>hello</p></html>" } };
    serve(t, script);
    CHECK(s3_upload(pattern_file("big", PART + 1), "s3://bucket/big", SHA, NULL, NULL) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "the answer is <html>, not what S3 sends (is the endpoint S3?)");
}

SERVED_TEST(s3_a_refused_part_aborts_the_upload)
{
    static const answer script[] = {
        { .status = 404 },
        { .status = 200, .body = initiated },
        { .status = 400, .body = "<Error><Code>EntityTooSmall</Code><Message>small</Message></Error>" },
        { .status = 204 },
    };
    serve(t, script);
    progress_calls = 0;
    CHECK(s3_upload(pattern_file("big", PART + 1), "s3://bucket/big", SHA, on_progress, NULL) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "S3 part upload of s3://bucket/big: 400 EntityTooSmall: small");
    CHECK(progress_calls == 0);
    CHECK(requests_seen(&t->http) == 4);
    CHECK_STR(t->http.seen[3].method, "DELETE");
    CHECK_STR(t->http.seen[3].query, "uploadId=up/1+2");
}

SERVED_TEST(s3_a_completion_answered_200_with_an_error_aborts_the_upload)
{
    static const answer script[] = {
        { .status = 404 },
        { .status = 200, .body = initiated },
        { .status = 200, .header = "ETag: \"p1\"" },
        { .status = 200, .header = "ETag: \"p2\"" },
        { .status = 200, .body = "<Error><Code>InternalError</Code><Message>try again</Message></Error>" },
        { .status = 204 },
    };
    serve(t, script);
    CHECK(s3_upload(pattern_file("big", PART + 1), "s3://bucket/big", SHA, NULL, NULL) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "S3 multipart completion of s3://bucket/big: 200 InternalError: try again");
    CHECK(requests_seen(&t->http) == 6);
    CHECK_STR(t->http.seen[5].method, "DELETE");
}

SERVED_TEST(s3_a_refused_completion_aborts_the_upload)
{
    static const answer script[] = {
        { .status = 404 },
        { .status = 200, .body = initiated },
        { .status = 200, .header = "ETag: \"p1\"" },
        { .status = 200, .header = "ETag: \"p2\"" },
        { .status = 400, .body = "<Error><Code>InvalidPart</Code><Message>bad part</Message></Error>" },
        { .status = 204 },
    };
    serve(t, script);
    CHECK(s3_upload(pattern_file("big", PART + 1), "s3://bucket/big", SHA, NULL, NULL) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "multipart completion of s3://bucket/big: 400 InvalidPart: bad part");
    CHECK_STR(t->http.seen[5].method, "DELETE");
}

/* ---- S3: listings ------------------------------------------------------------------------------------ */

#define LIST_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
#define LIST_END "</ListBucketResult>"

SERVED_TEST(s3_a_listing_reads_every_page_and_decodes_keys)
{
    static const answer script[] = {
        { .status = 200, .body = LIST_HEAD "<Name>bucket</Name><EncodingType>url</EncodingType>"
                                 "<IsTruncated>true</IsTruncated><NextContinuationToken>tok/1=</NextContinuationToken>"
                                 "<Contents><Key>dumps/a+b%2Bc</Key><LastModified>2024-01-02T03:04:05.000Z"
                                 "</LastModified><Size>12</Size></Contents>" LIST_END },
        { .status = 200, .body = LIST_HEAD "<EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>"
                                 "<Contents><Key>dumps/%E2%82%AC</Key><Size>0</Size></Contents>" LIST_END },
    };
    serve(t, script);
    CHECK(s3_list(&t->objects, &t->count, "s3://bucket/dumps/") == 0);
    CHECK(t->count == 2);
    CHECK_STR(t->objects[0].key, "dumps/a b+c");
    CHECK(t->objects[0].size == 12);
    CHECK_STR(t->objects[0].last_modified, "2024-01-02T03:04:05.000Z");
    CHECK_STR(t->objects[1].key, "dumps/\xe2\x82\xac");
    CHECK_STR(t->objects[1].last_modified, "");
    CHECK_STR(t->http.seen[0].path, "/bucket");
    CHECK_STR(t->http.seen[0].query, "encoding-type=url&list-type=2&prefix=dumps/");
    CHECK_STR(t->http.seen[1].query, "continuation-token=tok/1=&encoding-type=url&list-type=2&prefix=dumps/");
}

/* A listing answered by body fails with an error holding expected, and
 * hands back no object. */
static void listing_fails(served *t, const char *body, const char *expected)
{
    static answer script[1];
    script[0] = (answer){ .status = 200, .body = body };
    serve_script(&t->http, script, 1);
    CHECK(s3_list(&t->objects, &t->count, "s3://bucket/p") == DR_EFAIL);
    CHECK(t->objects == NULL && t->count == 0);
    CHECK_CONTAINS(err_last(), expected);
}

SERVED_TEST(s3_a_listing_with_a_size_that_is_no_number_fails)
{
    listing_fails(t, LIST_HEAD "<Contents><Key>a</Key><Size>12x</Size></Contents>" LIST_END,
                  "S3 listing of s3://bucket/p: an object's Size '12x' is not a number of bytes");
}

SERVED_TEST(s3_a_listing_with_two_bad_sizes_names_the_first)
{
    listing_fails(t, LIST_HEAD "<Contents><Key>a</Key><Size>one</Size></Contents>"
                               "<Contents><Key>b</Key><Size>two</Size></Contents>" LIST_END,
                  "an object's Size 'one' is not a number of bytes");
}

SERVED_TEST(s3_a_truncated_page_with_an_empty_token_stops_the_listing)
{
    listing_fails(t, LIST_HEAD "<IsTruncated>true</IsTruncated><NextContinuationToken></NextContinuationToken>" LIST_END,
                  "page 1 says it is truncated but gives no NextContinuationToken");
}

SERVED_TEST(s3_listed_keys_decode_hex_of_either_case)
{
    static const answer script[] = {
        { .status = 200, .body = LIST_HEAD "<EncodingType>url</EncodingType><Contents><Key>%e2%82%ac%2a%7E</Key>"
                                 "<Size>5</Size></Contents>" LIST_END },
    };
    serve(t, script);
    CHECK(s3_list(&t->objects, &t->count, "s3://bucket") == 0);
    CHECK(t->count == 1);
    CHECK_STR(t->objects[0].key, "\xe2\x82\xac*~");
}

SERVED_TEST(s3_a_listing_with_a_negative_size_fails)
{
    listing_fails(t, LIST_HEAD "<Contents><Key>a</Key><Size>-3</Size></Contents>" LIST_END,
                  "an object's Size '-3' is not a number of bytes");
}

SERVED_TEST(s3_a_listing_with_a_badly_encoded_key_fails)
{
    listing_fails(t, LIST_HEAD "<EncodingType>url</EncodingType><Contents><Key>a%zz</Key><Size>1</Size></Contents>"
                               LIST_END,
                  "the key 'a%zz' is not URL-encoded as the answer says");
}

SERVED_TEST(s3_a_listing_with_an_encoded_nul_in_a_key_fails)
{
    listing_fails(t, LIST_HEAD "<EncodingType>url</EncodingType><Contents><Key>a%00b</Key><Size>1</Size></Contents>"
                               LIST_END,
                  "is not URL-encoded as the answer says");
}

SERVED_TEST(s3_a_listing_with_an_object_without_key_fails)
{
    listing_fails(t, LIST_HEAD "<Contents><Size>1</Size></Contents>" LIST_END,
                  "S3 listing of s3://bucket/p: an object with no Key in the answer");
}

SERVED_TEST(s3_a_listing_that_is_not_xml_fails)
{
    listing_fails(t, LIST_HEAD "<Contents><Key>a</Key>", "S3 listing of s3://bucket/p: the answer is not valid XML");
}

SERVED_TEST(s3_a_listing_nested_too_deep_is_refused)
{
    listing_fails(t, "<a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>x</a></a></a></a></a></a></a></a></a></a>"
                     "</a></a></a></a></a></a></a>",
                  "elements are nested deeper than S3 ever nests them");
}

SERVED_TEST(s3_a_listing_with_a_doctype_is_refused)
{
    listing_fails(t, "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">]><ListBucketResult>&lol;"
                     "</ListBucketResult>",
                  "it declares a DOCTYPE, which S3 never sends");
}

SERVED_TEST(s3_a_listing_answered_by_another_document_is_not_s3)
{
    listing_fails(t, "<Html><Body>Welcome</Body></Html>", "the answer is <Html>, not what S3 sends");
}

SERVED_TEST(s3_a_listing_answered_200_with_an_error_fails_with_it)
{
    listing_fails(t, "<Error><Code>SlowDown</Code><Message>Please reduce</Message></Error>",
                  "S3 listing of s3://bucket/p: 200 SlowDown: Please reduce");
}

SERVED_TEST(s3_a_truncated_page_without_token_stops_the_listing)
{
    listing_fails(t, LIST_HEAD "<IsTruncated>true</IsTruncated><Contents><Key>a</Key><Size>1</Size></Contents>" LIST_END,
                  "page 1 says it is truncated but gives no NextContinuationToken");
}

SERVED_TEST(s3_a_token_given_twice_stops_the_listing)
{
    listing_fails(t, LIST_HEAD "<IsTruncated>true</IsTruncated><NextContinuationToken>same</NextContinuationToken>"
                               LIST_END,
                  "page 2 gives the continuation token 'same' again (first given by page 1)");
    CHECK(requests_seen(&t->http) == 2);
}

SERVED_TEST(s3_a_refused_listing_names_s3s_reason)
{
    static const answer script[] = {
        { .status = 404, .body = "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist"
                                 "</Message></Error>" },
    };
    serve(t, script);
    CHECK(s3_list(&t->objects, &t->count, "s3://nobucket") == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "S3 listing of s3://nobucket/: 404 NoSuchBucket: The specified bucket does not exist");
    CHECK(t->count == 0);
}

/* ---- the Neon API client ------------------------------------------------------------------------------ */

static void a_neon_address_that_cannot_be_sent_is_refused(void)
{
    neon_client *c = (neon_client *)1;
    CHECK(neon_client_new(&c, "ftp://api.neon.tech", "k") == DR_EUSAGE);
    CHECK(c == NULL);
    CHECK_CONTAINS(err_last(), "must start with https://");
    CHECK(neon_client_new(&c, NULL, "k") == DR_EUSAGE);
    CHECK(neon_client_new(&c, "https://api.neon.tech/\r\nX-Evil: 1", "k") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "'https://api.neon.tech/\\r\\nX-Evil: 1' holds a carriage return (CR, 0x0D) at byte 22");
    CHECK(neon_client_new(&c, "https://api.neon.tech/\x01", "k") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "the control character 0x01 at byte 22");
    CHECK(neon_client_new(&c, "https://api.neon.tech", "key-with-newline\n") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "the API key holds a line feed (LF, 0x0A) at byte 16");
    CHECK(neon_client_new(&c, "https://api.neon.tech", "tab\tkey") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "a tab (0x09) at byte 3");
}

static void a_neon_address_loses_its_trailing_slashes(void)
{
    neon_client *c = NULL;
    CHECK(neon_client_new(&c, "https://api.neon.tech/api/v2//", NULL) == 0);
    int same = !strcmp(neon_client_base_url(c), "https://api.neon.tech/api/v2");
    neon_client_free(c);
    neon_client_free(NULL);
    CHECK(same);
}

SERVED_TEST(neon_a_bad_method_or_path_is_refused_unsent)
{
    CHECK(neon_call(&t->response, &t->reply, t->neon, "HEAD", "/projects", NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "'HEAD' is not an HTTP method drctl sends");
    CHECK_CONTAINS(t->reply.message, "'HEAD' is not an HTTP method");
    neon_reply_dispose(&t->reply);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "GET", "/projects/a b", NULL) == DR_EUSAGE);
    CHECK_STR(t->reply.code, "BAD_REQUEST");
    CHECK_CONTAINS(t->reply.message, "holds a space at byte 11");
    neon_reply_dispose(&t->reply);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "GET", "projects", NULL) == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "must start with '/'");
    CHECK(requests_seen(&t->http) == 0);
}

SERVED_TEST(neon_a_2xx_without_body_is_an_empty_object)
{
    static const answer script[] = { { .status = 204 } };
    serve(t, script);
    cJSON *body = cJSON_Parse("{\"name\":\"b1\"}");
    int rc = neon_call(&t->response, &t->reply, t->neon, "PATCH", "/projects/p1", body);
    cJSON_Delete(body);
    CHECK(rc == 0);
    CHECK(cJSON_IsObject(t->response) && cJSON_GetArraySize(t->response) == 0);
    CHECK(t->reply.status == 204 && t->reply.attempts == 1);
    CHECK_STR(t->http.seen[0].method, "PATCH");
    CHECK_STR(t->http.seen[0].auth, "Bearer test-key");
    CHECK_STR(t->http.seen[0].content_type, "application/json");
    CHECK_STR(t->http.seen[0].body, "{\"name\":\"b1\"}");
}

SERVED_TEST(neon_a_malformed_answer_is_not_taken_for_anything)
{
    static const answer script[] = { { .status = 200, .body = "{\"branch\": {\"id\": " } };
    serve(t, script);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "GET", "/projects/p1", NULL) == DR_EFAIL);
    CHECK(t->response == NULL);
    CHECK_STR(t->reply.code, "MALFORMED_RESPONSE");
    CHECK_CONTAINS(err_last(), "GET /projects/p1 answered 200 with malformed JSON (18 bytes)");
}

SERVED_TEST(neon_an_answer_cut_short_is_retried)
{
    static const answer script[] = {
        { .status = 200, .body = "{\"projects\":", .length = 500, .cut = 1 },
        { .status = 200, .body = "{\"projects\":[]}" },
    };
    serve(t, script);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "GET", "/projects", NULL) == 0);
    CHECK(t->reply.attempts == 2);
    CHECK(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(t->response, "projects")));
}

SERVED_TEST(neon_retry_after_is_honoured_before_the_next_try)
{
    static const answer script[] = {
        { .status = 429, .header = "Retry-After: 0.15", .body = "{\"code\":\"\",\"message\":\"slow down\"}" },
        { .status = 200, .body = "{\"ok\":true}" },
    };
    serve(t, script);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "GET", "/projects", NULL) == 0);
    CHECK(t->reply.attempts == 2);
    CHECK(t->reply.duration >= 0.15);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t->response, "ok")));
}

SERVED_TEST(neon_a_retry_after_that_is_no_number_falls_back_to_the_backoff)
{
    static const answer script[] = {
        { .status = 502, .header = "Retry-After: soon" },
        { .status = 200, .body = "{}" },
    };
    serve(t, script);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "GET", "/projects", NULL) == 0);
    CHECK(t->reply.attempts == 2);
    CHECK(t->reply.duration < 0.5);
}

SERVED_TEST(neon_a_key_may_hold_spaces_but_an_address_no_delete_character)
{
    neon_client *c = NULL;
    CHECK(neon_client_new(&c, t->http.url, "key with spaces") == 0);
    neon_client_free(c);
    CHECK(neon_client_new(&c, "https://api.neon.tech/\x7f", "k") == DR_EUSAGE);
    CHECK_CONTAINS(err_last(), "'https://api.neon.tech/\\x7F' holds the control character 0x7F at byte 22");
}

SERVED_TEST(neon_a_server_busy_on_every_try_gives_up_with_its_last_error)
{
    static const answer script[] = {
        { .status = 503, .body = "{\"code\":\"UNAVAILABLE\",\"message\":\"maintenance\",\"request_id\":\"r-9\"}" },
    };
    serve(t, script);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "GET", "/projects", NULL) == DR_EFAIL);
    CHECK(t->reply.attempts == 3 && requests_seen(&t->http) == 3);
    CHECK(t->reply.status == 503);
    CHECK_STR(t->reply.code, "UNAVAILABLE");
    CHECK_STR(t->reply.request_id, "r-9");
    CHECK_CONTAINS(err_last(), "GET /projects: still 503 after 3 attempts: maintenance");
}

SERVED_TEST(neon_a_refused_key_is_said_so)
{
    static const answer script[] = { { .status = 401, .body = "{\"message\":\"authentication required\"}" } };
    serve(t, script);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "GET", "/projects", NULL) == DR_EFAIL);
    CHECK(t->reply.status == 401 && t->reply.attempts == 1);
    CHECK_CONTAINS(err_last(), "the API key was refused (401) by http://127.0.0.1:");
    CHECK_CONTAINS(err_last(), "for GET /projects: check NEON_API_KEY");
    CHECK_STR(t->reply.message, "authentication required");
}

SERVED_TEST(neon_an_error_that_is_not_neons_shape_is_said_so)
{
    static const answer script[] = { { .status = 404, .body = "<html>not found</html>" } };
    serve(t, script);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "GET", "/projects/p9", NULL) == DR_EFAIL);
    CHECK(t->reply.code == NULL);
    CHECK_CONTAINS(err_last(), "GET /projects/p9: 404 (the answer is not Neon's error shape)");
    CHECK(requests_seen(&t->http) == 1);
}

SERVED_TEST(neon_an_error_without_body_has_no_message)
{
    static const answer script[] = { { .status = 422 } };
    serve(t, script);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "POST", "/projects", NULL) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "POST /projects: 422 (no message)");
}

SERVED_TEST(neon_a_redirect_is_a_failure_not_followed)
{
    static const answer script[] = {
        { .status = 302, .header = "Location: http://127.0.0.1:1/", .body = "{\"message\":\"moved\"}" },
    };
    serve(t, script);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "GET", "/projects", NULL) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "GET /projects: 302 moved");
    CHECK(requests_seen(&t->http) == 1);
}

SERVED_TEST(neon_a_post_whose_answer_is_lost_is_not_repeated)
{
    static const answer script[] = { { .status = 0 } };
    serve(t, script);
    cJSON *body = cJSON_Parse("{\"branch\":{}}");
    int rc = neon_call(&t->response, &t->reply, t->neon, "POST", "/projects/p1/branches", body);
    cJSON_Delete(body);
    CHECK(rc == DR_EFAIL);
    CHECK(t->reply.outcome_unknown == 1);
    CHECK_STR(t->reply.code, "OUTCOME_UNKNOWN");
    CHECK(t->reply.attempts == 1 && requests_seen(&t->http) == 1);
    CHECK_CONTAINS(err_last(), "the connection broke after the request was sent");
}

SERVED_TEST(neon_a_delete_whose_answer_was_lost_then_404_is_done)
{
    static const answer script[] = { { .status = 0 }, { .status = 404, .body = "{\"message\":\"not found\"}" } };
    serve(t, script);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "DELETE", "/projects/p1/branches/b1", NULL) == 0);
    CHECK(t->reply.attempts == 2);
    CHECK(cJSON_IsObject(t->response) && cJSON_GetArraySize(t->response) == 0);
}

SERVED_TEST(neon_a_get_whose_connection_drops_each_time_gives_up_unreachable)
{
    static const answer script[] = { { .status = 0 } };
    serve(t, script);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "GET", "/projects", NULL) == DR_EFAIL);
    CHECK(t->reply.attempts == 3 && requests_seen(&t->http) == 3);
    CHECK_STR(t->reply.code, "UNREACHABLE");
    CHECK_CONTAINS(err_last(), "cannot reach the Neon API at http://127.0.0.1:");
    CHECK_CONTAINS(err_last(), "for GET /projects after 3 attempts");
}

SERVED_TEST(neon_a_refused_connection_is_retried_then_reported)
{
    char *base = xasprintf("http://127.0.0.1:%d", closed_port());
    neon_client *c = NULL;
    int made = neon_client_new(&c, base, "k");
    free(base);
    CHECK(made == 0);
    neon_client_set_policy(c, &fast_policy);
    int rc = neon_call(&t->response, &t->reply, c, "POST", "/projects", NULL);
    neon_client_free(c);
    /* a POST that never left can be sent again */
    CHECK(rc == DR_EFAIL);
    CHECK(t->reply.attempts == 3 && t->reply.status == 0 && !t->reply.outcome_unknown);
    CHECK_STR(t->reply.code, "UNREACHABLE");
}

SERVED_TEST(neon_a_slow_server_meets_the_transfer_timeout)
{
    static const answer script[] = { { .status = 200, .body = "{}", .delay_ms = 2000 } };
    serve(t, script);
    neon_policy p = fast_policy;
    p.attempts = 2;
    p.transfer_timeout = 0.1;
    neon_client_set_policy(t->neon, &p);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "GET", "/projects", NULL) == DR_EFAIL);
    CHECK(t->reply.attempts == 2);
    CHECK(t->reply.duration < 1.0);
    CHECK_STR(t->reply.code, "UNREACHABLE");
    CHECK_CONTAINS(err_last(), "timed out");
}

SERVED_TEST(neon_the_deadline_bounds_a_call_to_a_slow_server)
{
    static const answer script[] = { { .status = 200, .body = "{}", .delay_ms = 2000 } };
    serve(t, script);
    neon_policy p = fast_policy;
    p.attempts = 10;
    p.deadline = 0.3;
    p.transfer_timeout = 30;
    neon_client_set_policy(t->neon, &p);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "GET", "/projects", NULL) == DR_EFAIL);
    CHECK(t->reply.duration < 1.0);
    CHECK(t->reply.attempts < 10);
    CHECK_STR(t->reply.code, "UNREACHABLE");
}

SERVED_TEST(neon_a_request_libcurl_refuses_is_not_retried)
{
    neon_client *c = NULL;
    CHECK(neon_client_new(&c, "http://[zz", "k") == 0);
    neon_client_set_policy(c, &fast_policy);
    int rc = neon_call(&t->response, &t->reply, c, "GET", "/projects", NULL);
    neon_client_free(c);
    CHECK(rc == DR_EFAIL);
    CHECK(t->reply.attempts == 1);
    CHECK_STR(t->reply.code, "BAD_REQUEST");
    CHECK_CONTAINS(err_last(), "GET /projects: libcurl refused the request");
}

static int stop_while_waiting(void *ud, double *seconds_left)
{
    int *asked = ud;
    if (seconds_left) /* the caller's time: no limit */
        return 0;
    (*asked)++;
    return 1;
}

SERVED_TEST(neon_a_stop_during_the_wait_before_a_retry_interrupts_the_call)
{
    static const answer script[] = { { .status = 503, .body = "{\"message\":\"busy\"}" } };
    serve(t, script);
    int asked = 0;
    neon_client_set_stop(t->neon, stop_while_waiting, &asked);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "GET", "/projects", NULL) == DR_EINTR);
    CHECK(asked == 1);
    CHECK(t->reply.attempts == 1 && requests_seen(&t->http) == 1);
    CHECK_CONTAINS(err_last(), "GET /projects: interrupted while waiting to retry");
}

/* The caller (a step with a deadline) allows 0.2 s from *ud on. */
static int caller_allows_little(void *ud, double *seconds_left)
{
    const double *started = ud;
    double left = 0.2 - (timefmt_monotonic() - *started);
    if (seconds_left) /* as sandbox_time_left says it: 0 once over, never negative (no limit) */
        *seconds_left = left > 0 ? left : 0;
    return 0;
}

SERVED_TEST(neon_the_callers_time_left_bounds_the_call)
{
    static const answer script[] = { { .status = 200, .body = "{}", .delay_ms = 2000 } };
    serve(t, script);
    double started = timefmt_monotonic();
    neon_client_set_stop(t->neon, caller_allows_little, &started);
    CHECK(neon_call(&t->response, &t->reply, t->neon, "GET", "/projects", NULL) == DR_EFAIL);
    CHECK(t->reply.attempts == 1); /* no time is left for another */
    CHECK(t->reply.duration < 0.5);
    CHECK_STR(t->reply.code, "UNREACHABLE");
}

/* ---- Neon operations -------------------------------------------------------------------------------- */

SERVED_TEST(neon_operations_are_polled_until_they_finish)
{
    static const answer script[] = {
        { .status = 200, .body = "{\"operation\":{\"id\":\"op1\",\"status\":\"running\"}}" },
        { .status = 200, .body = "{\"operation\":{\"id\":\"op1\",\"status\":\"finished\"}}" },
    };
    serve(t, script);
    cJSON *ops = cJSON_Parse("[{\"id\":\"op1\",\"project_id\":\"p1\",\"action\":\"create_branch\",\"status\":\"scheduling\"},"
                             "{\"id\":\"op2\",\"project_id\":\"p1\",\"status\":\"skipped\"}]");
    int polls = -1;
    int rc = neon_wait_operations(&t->reply, &polls, t->neon, ops);
    cJSON_Delete(ops);
    CHECK(rc == 0);
    CHECK(polls == 2);
    CHECK_STR(t->http.seen[0].path, "/projects/p1/operations/op1");
}

static void waiting_fails(served *t, const char *ops_text, int expected_rc, const char *expected)
{
    cJSON *ops = cJSON_Parse(ops_text);
    int rc = neon_wait_operations(&t->reply, NULL, t->neon, ops);
    cJSON_Delete(ops);
    CHECK(rc == expected_rc);
    CHECK_CONTAINS(err_last(), expected);
    CHECK_CONTAINS(t->reply.message, expected);
}

SERVED_TEST(neon_an_operation_without_id_cannot_be_waited_on)
{
    waiting_fails(t, "[{\"project_id\":\"p1\",\"status\":\"running\"}]", DR_EFAIL,
                  "an operation without id or project_id cannot be waited on");
    CHECK(requests_seen(&t->http) == 0);
}

SERVED_TEST(neon_an_operation_without_project_cannot_be_waited_on)
{
    waiting_fails(t, "[{\"id\":\"op1\",\"status\":\"running\"}]", DR_EFAIL,
                  "an operation without id or project_id cannot be waited on");
}

static int never_stop(void *ud, double *seconds_left)
{
    (void)ud;
    if (seconds_left)
        *seconds_left = 100; /* more than the call's own deadline */
    return 0;
}

SERVED_TEST(neon_an_operation_ending_in_error_fails_the_wait)
{
    static const answer script[] = {
        { .status = 200, .body = "{\"operation\":{\"status\":\"running\"}}" },
        { .status = 200, .body = "{\"operation\":{\"status\":\"error\"}}" },
    };
    serve(t, script);
    neon_client_set_stop(t->neon, never_stop, NULL);
    waiting_fails(t, "[{\"id\":\"op1\",\"project_id\":\"p1\",\"action\":\"suspend\"}]", DR_EFAIL,
                  "operation op1 (suspend) ended error: (no error given)");
    CHECK(requests_seen(&t->http) == 2);
}

SERVED_TEST(neon_an_operation_that_fails_fails_the_wait_with_its_error)
{
    static const answer script[] = {
        { .status = 200, .body = "{\"operation\":{\"status\":\"failed\",\"error\":\"disk full\"}}" },
    };
    serve(t, script);
    waiting_fails(t, "[{\"id\":\"op1\",\"project_id\":\"p1\",\"action\":\"start_compute\",\"status\":\"running\"},"
                     "{\"id\":\"op2\",\"project_id\":\"p1\",\"status\":\"running\"}]",
                  DR_EFAIL, "operation op1 (start_compute) ended failed: disk full");
    CHECK_STR(t->reply.code, "OPERATION_FAILED");
    CHECK(requests_seen(&t->http) == 1); /* the second is not waited on */
}

SERVED_TEST(neon_an_operation_already_cancelled_has_no_error_given)
{
    waiting_fails(t, "[{\"id\":\"op1\",\"project_id\":\"p1\",\"status\":\"cancelled\"}]", DR_EFAIL,
                  "operation op1 (?) ended cancelled: (no error given)");
    CHECK(requests_seen(&t->http) == 0);
}

SERVED_TEST(neon_a_poll_without_status_fails_the_wait)
{
    static const answer script[] = { { .status = 200, .body = "{\"operation\":{}}" } };
    serve(t, script);
    waiting_fails(t, "[{\"id\":\"op1\",\"project_id\":\"p1\"}]", DR_EFAIL,
                  "GET /projects/p1/operations/op1 answered without an operation status");
}

SERVED_TEST(neon_a_failed_poll_fails_the_wait_with_its_reason)
{
    static const answer script[] = {
        { .status = 404, .body = "{\"code\":\"NOT_FOUND\",\"message\":\"no such operation\"}" },
    };
    serve(t, script);
    waiting_fails(t, "[{\"id\":\"op1\",\"project_id\":\"p1\",\"action\":\"a\",\"status\":\"running\"}]", DR_EFAIL,
                  "waiting for operation op1 (a): no such operation");
    CHECK_STR(t->reply.code, "NOT_FOUND");
    CHECK(t->reply.status == 404);
}

static int stop_at_once(void *ud, double *seconds_left)
{
    (void)ud;
    return seconds_left == NULL;
}

SERVED_TEST(neon_a_stop_interrupts_the_wait_for_an_operation)
{
    neon_client_set_stop(t->neon, stop_at_once, NULL);
    waiting_fails(t, "[{\"id\":\"op1\",\"project_id\":\"p1\",\"action\":\"a\",\"status\":\"running\"}]", DR_EINTR,
                  "interrupted while waiting for operation op1 (a)");
    CHECK(requests_seen(&t->http) == 0);
}

/* ---- webhooks ------------------------------------------------------------------------------------------ */

/* t->cfg with these webhooks (a JSON list's items) and notify.timeout 1s. */
static int webhooks(served *t, const char *items)
{
    char *text = xasprintf("{\"notify.webhook\":[%s],\"notify.timeout\":\"1s\"}", items);
    int rc = config_parse(&t->cfg, text, "config.json");
    free(text);
    return rc;
}

static const cJSON *delivery(const served *t, int i)
{
    return cJSON_GetArrayItem(t->deliveries, i);
}

static double delivery_number(const served *t, int i, const char *key)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(delivery(t, i), key);
    return cJSON_IsNumber(n) ? n->valuedouble : -1;
}

static const char *delivery_text(const served *t, int i, const char *key)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(delivery(t, i), key);
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

static int delivered(const served *t, int i)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(delivery(t, i), "delivered"));
}

static const notify_event failed_run = {
    .event = "run-failed", .summary = "restore failed", .run_id = "r1", .runbook = "restore",
    .status = "failed", .step = "promote", .error = "it broke",
};

SERVED_TEST(notify_a_slack_webhook_gets_the_target_and_details_as_lines)
{
    static const answer script[] = { { .status = 200, .body = "ok" } };
    serve(t, script);
    char *items = xasprintf("\"slack:%s/hook\"", t->http.url);
    int rc = webhooks(t, items);
    free(items);
    CHECK(rc == 0);
    cJSON *target = cJSON_Parse("{\"kind\":\"cloud\",\"api_host\":\"console.neon.tech\",\"project\":\"p1\"}");
    cJSON *details = cJSON_Parse("{\"rto_seconds\":42,\"ok\":true,\"note\":null,\"items\":[1,2],\"who\":\"a<b>\"}");
    notify_event ev = failed_run;
    ev.target = target;
    ev.details = details;
    ev.chain_head = "abc123";
    ev.chain_seq = 7;
    t->deliveries = notify_send(t->cfg, &ev, NULL);
    cJSON_Delete(target);
    cJSON_Delete(details);
    CHECK(notify_delivered_count(t->deliveries) == 1);
    CHECK_STR(delivery_text(t, 0, "format"), "slack");
    CHECK(delivery_number(t, 0, "status") == 200);
    cJSON *body = cJSON_Parse(t->http.seen[0].body);
    const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "text"));
    int target_line = text && strstr(text, "*Target:* Neon console.neon.tech, project p1") != NULL;
    int number_line = text && strstr(text, "\n*rto_seconds:* 42") != NULL;
    int bool_line = text && strstr(text, "\n*ok:* true") != NULL;
    int array_line = text && strstr(text, "\n*items:* [1,2]") != NULL;
    int null_line = text && strstr(text, "*note:*") != NULL;
    int escaped = text && strstr(text, "\n*who:* a&lt;b&gt;") != NULL;
    int chain = text && strstr(text, "Journal chain head: `abc123` (event 7)") != NULL;
    cJSON_Delete(body);
    CHECK(target_line);
    CHECK(number_line && bool_line && array_line && escaped && chain);
    CHECK(!null_line);
    CHECK_STR(t->http.seen[0].method, "POST");
    CHECK_STR(t->http.seen[0].content_type, "application/json");
}

SERVED_TEST(notify_without_webhooks_sends_nothing)
{
    CHECK(config_parse(&t->cfg, "{}", "config.json") == 0);
    CHECK(notify_send(t->cfg, &failed_run, NULL) == NULL);
    CHECK(requests_seen(&t->http) == 0);
}

SERVED_TEST(notify_a_slack_text_leaves_out_what_an_event_does_not_say)
{
    static const answer script[] = { { .status = 200 } };
    serve(t, script);
    char *items = xasprintf("\"slack:%s/hook\"", t->http.url);
    int rc = webhooks(t, items);
    free(items);
    CHECK(rc == 0);
    cJSON *target = cJSON_Parse("{\"project\":\"p7\",\"branch\":\"main\"}");
    cJSON *details = cJSON_Parse("[\"unnamed\", 3]");
    notify_event ev = { .event = "check-failed", .error = "a & b", .target = target, .details = details };
    t->deliveries = notify_send(t->cfg, &ev, NULL);
    cJSON_Delete(target);
    cJSON_Delete(details);
    CHECK(notify_delivered_count(t->deliveries) == 1);
    cJSON *body = cJSON_Parse(t->http.seen[0].body);
    const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "text"));
    char *copy = text ? xstrdup(text) : NULL;
    cJSON_Delete(body);
    int ok = copy && !strncmp(copy, "*drctl: check-failed*\n", 22) && strstr(copy, "*Error:* a &amp; b") &&
             strstr(copy, "*Target:* project p7, branch main") && !strstr(copy, "unnamed") && !strstr(copy, "*Run:*");
    free(copy);
    CHECK(ok);
}

SERVED_TEST(notify_a_webhook_that_is_gone_is_not_retried)
{
    static const answer script[] = { { .status = 410, .body = "no such\nhook \r\n" } };
    serve(t, script);
    char *items = xasprintf("\"%s/T0K3N\"", t->http.url);
    int rc = webhooks(t, items);
    free(items);
    CHECK(rc == 0);
    t->deliveries = notify_send(t->cfg, &failed_run, NULL);
    CHECK(!delivered(t, 0));
    CHECK(delivery_number(t, 0, "attempts") == 1 && requests_seen(&t->http) == 1);
    CHECK(delivery_number(t, 0, "status") == 410);
    const char *error = delivery_text(t, 0, "error");
    CHECK_CONTAINS(error, "HTTP 410 Gone: the webhook no longer exists; remove it with drctl config unset "
                          "notify.webhook URL (the URL of http://127.0.0.1:");
    CHECK_CONTAINS(error, "(the target said: no such hook)");
    CHECK(!strstr(error, "T0K3N"));
}

SERVED_TEST(notify_a_webhook_from_the_environment_that_is_gone_is_named_by_its_variable)
{
    static const answer script[] = { { .status = 410 } };
    serve(t, script);
    char *url = xasprintf("%s/secret-token", t->http.url);
    setenv("DRCTL_COV_HOOK", url, 1);
    free(url);
    CHECK(webhooks(t, "\"env:DRCTL_COV_HOOK\"") == 0);
    t->deliveries = notify_send(t->cfg, &failed_run, NULL);
    CHECK(!delivered(t, 0));
    CHECK_STR(delivery_text(t, 0, "webhook"), "env:DRCTL_COV_HOOK");
    CHECK_CONTAINS(delivery_text(t, 0, "error"), "remove it with drctl config unset notify.webhook env:DRCTL_COV_HOOK");
    CHECK_STR(t->http.seen[0].path, "/secret-token");
}

SERVED_TEST(notify_a_redirect_is_not_followed_and_not_retried)
{
    static const answer script[] = { { .status = 301, .header = "Location: http://127.0.0.1:1/" } };
    serve(t, script);
    char *items = xasprintf("\"%s/hook\"", t->http.url);
    int rc = webhooks(t, items);
    free(items);
    CHECK(rc == 0);
    t->deliveries = notify_send(t->cfg, &failed_run, NULL);
    CHECK(!delivered(t, 0));
    CHECK(delivery_number(t, 0, "attempts") == 1);
    CHECK_STR(delivery_text(t, 0, "error"), "HTTP 301");
}

SERVED_TEST(notify_a_busy_webhook_is_retried_until_it_takes_the_notification)
{
    static const answer script[] = { { .status = 503, .body = "busy" }, { .status = 204 } };
    serve(t, script);
    char *items = xasprintf("\"slack:%s/hook\"", t->http.url);
    int rc = webhooks(t, items);
    free(items);
    CHECK(rc == 0);
    t->deliveries = notify_send(t->cfg, &failed_run, NULL);
    CHECK(delivered(t, 0));
    CHECK(delivery_number(t, 0, "attempts") == 2);
    CHECK(delivery_number(t, 0, "seconds") >= 0.5); /* the first backoff */
    CHECK(cJSON_GetObjectItemCaseSensitive(delivery(t, 0), "error") == NULL);
}

SERVED_TEST(notify_a_webhook_busy_on_every_try_stops_within_the_timeout)
{
    static char long_answer[400];
    memset(long_answer, 'z', sizeof long_answer - 1);
    long_answer[0] = '\x1b';
    static answer script[1];
    script[0] = (answer){ .status = 500, .body = long_answer, .length = 100000 }; /* in several pieces */
    serve_script(&t->http, script, 1);
    char *items = xasprintf("\"%s/hook\"", t->http.url);
    int rc = webhooks(t, items);
    free(items);
    CHECK(rc == 0);
    t->deliveries = notify_send(t->cfg, &failed_run, NULL);
    CHECK(!delivered(t, 0));
    CHECK(delivery_number(t, 0, "attempts") == 2);
    CHECK(delivery_number(t, 0, "seconds") < 1.0);
    const char *error = delivery_text(t, 0, "error");
    /* the answer is kept to its first 200 bytes, its control characters shown as spaces */
    CHECK_CONTAINS(error, "HTTP 500 ( zzzz");
    CHECK_CONTAINS(error, "z); no time left for another attempt within notify.timeout");
    CHECK(strlen(error) < 300);
}

SERVED_TEST(notify_a_refused_connection_is_retried_then_reported)
{
    char *items = xasprintf("\"http://127.0.0.1:%d/hook\"", closed_port());
    int rc = webhooks(t, items);
    free(items);
    CHECK(rc == 0);
    t->deliveries = notify_send(t->cfg, &failed_run, NULL);
    CHECK(!delivered(t, 0));
    CHECK(delivery_number(t, 0, "attempts") == 2);
    CHECK(delivery_number(t, 0, "status") == 0);
    CHECK_CONTAINS(delivery_text(t, 0, "error"), "no time left for another attempt");
}

SERVED_TEST(notify_each_webhook_gets_its_own_outcome)
{
    static const answer script[] = { { .status = 200 } };
    serve(t, script);
    char *items = xasprintf("\"%s/a\",\"env:DRCTL_COV_UNSET\",\"slack:%s/b\"", t->http.url, t->http.url);
    unsetenv("DRCTL_COV_UNSET");
    int rc = webhooks(t, items);
    free(items);
    CHECK(rc == 0);
    cJSON *target = cJSON_Parse("{\"kind\":\"local\",\"api_host\":\"127.0.0.1:4444\"}");
    notify_event ev = failed_run;
    ev.target = target;
    t->deliveries = notify_send(t->cfg, &ev, NULL);
    cJSON_Delete(target);
    CHECK(cJSON_GetArraySize(t->deliveries) == 3);
    const seen *slack = strcmp(t->http.seen[0].path, "/b") == 0 ? &t->http.seen[0] : &t->http.seen[1];
    CHECK_STR(slack->path, "/b");
    CHECK_CONTAINS(slack->body, "*Target:* neon-local 127.0.0.1:4444");
    CHECK(notify_delivered_count(t->deliveries) == 2);
    CHECK(delivered(t, 0) && !delivered(t, 1) && delivered(t, 2));
    CHECK(delivery_number(t, 1, "attempts") == 0);
    CHECK(requests_seen(&t->http) == 2);
}

static double stop_after_start;

/* Stops once a quarter second has passed since it was first asked. */
static int stop_after_a_quarter_second(void)
{
    double now = timefmt_monotonic();
    if (stop_after_start == 0)
        stop_after_start = now;
    return now - stop_after_start >= 0.25;
}

SERVED_TEST(notify_a_stop_ends_a_delivery_in_flight)
{
    static const answer script[] = { { .status = 200, .delay_ms = 3000 } };
    serve(t, script);
    unsetenv("DRCTL_COV_UNSET");
    char *items = xasprintf("\"env:DRCTL_COV_UNSET\",\"%s/hook\"", t->http.url);
    int rc = webhooks(t, items);
    free(items);
    CHECK(rc == 0);
    stop_after_start = 0;
    t->deliveries = notify_send(t->cfg, &failed_run, stop_after_a_quarter_second);
    CHECK(!delivered(t, 0) && !delivered(t, 1));
    CHECK(!strstr(delivery_text(t, 0, "error"), "interrupted")); /* it had already failed */
    CHECK_STR(delivery_text(t, 1, "error"), "interrupted");
    CHECK(delivery_number(t, 1, "attempts") == 1);
}

SERVED_TEST(notify_a_stop_while_a_retry_waits_keeps_the_last_error)
{
    static const answer script[] = { { .status = 429, .body = "slow down" } };
    serve(t, script);
    char *items = xasprintf("\"%s/hook\"", t->http.url);
    int rc = webhooks(t, items);
    free(items);
    CHECK(rc == 0);
    stop_after_start = 0;
    t->deliveries = notify_send(t->cfg, &failed_run, stop_after_a_quarter_second);
    CHECK(!delivered(t, 0));
    CHECK_STR(delivery_text(t, 0, "error"), "interrupted (last attempt: HTTP 429 (slow down))");
    CHECK(requests_seen(&t->http) == 1);
}

SERVED_TEST(notify_a_slow_webhook_meets_the_timeout)
{
    static const answer script[] = { { .status = 200, .delay_ms = 3000 } };
    serve(t, script);
    char *items = xasprintf("\"%s/hook\"", t->http.url);
    int rc = webhooks(t, items);
    free(items);
    CHECK(rc == 0);
    double started = timefmt_monotonic();
    t->deliveries = notify_send(t->cfg, &failed_run, NULL);
    double took = timefmt_monotonic() - started;
    CHECK(!delivered(t, 0));
    CHECK(took < 1.5);
    CHECK_CONTAINS(delivery_text(t, 0, "error"), "imed out");
}

SERVED_TEST(notify_a_record_that_cannot_be_made_is_an_error)
{
    char *dir = xasprintf("%s/audit", test_tmpdir());
    int opened = audit_open(&t->trail, dir, 1);
    free(dir);
    CHECK(opened == 0);
    char *blocker = xasprintf("%s/%s", audit_dir(t->trail), AUDIT_NOTIFICATIONS_DIR);
    FILE *f = fopen(blocker, "w");
    free(blocker);
    CHECK(f != NULL);
    fclose(f);
    notify_event ev = { .event = "test", .summary = "a test" };
    CHECK(notify_record(t->trail, &ev, NULL, "Op <op@x>") == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "cannot create ");
    CHECK(notify_last_test(audit_dir(t->trail)) == NULL);
}

TEST_SUITE(cov_http)
{
    REGISTER(s3_urls_that_are_not_s3_are_refused);
    REGISTER(s3_without_credentials_does_nothing);
    REGISTER(s3_an_upload_to_a_bucket_alone_is_refused_unsent);
    REGISTER(s3_an_unreadable_file_is_not_uploaded);
    REGISTER(s3_exists_reads_200_and_404);
    REGISTER(s3_bad_credentials_are_reported_with_s3s_code_and_message);
    REGISTER(s3_an_existence_check_answered_403_with_no_body_fails_with_its_status);
    REGISTER(s3_a_deletion_answered_200_succeeds_too);
    REGISTER(s3_a_deletion_answered_204_succeeds);
    REGISTER(s3_a_redirect_is_not_followed_but_reported);
    REGISTER(s3_an_error_answer_that_is_not_xml_is_described);
    REGISTER(s3_an_error_document_without_code_or_message_names_its_root);
    REGISTER(s3_a_busy_answer_is_retried_until_one_succeeds);
    REGISTER(s3_a_download_writes_the_object_to_its_path);
    REGISTER(s3_a_download_cut_short_is_fetched_again_from_the_start);
    REGISTER(s3_a_missing_object_leaves_no_file_behind);
    REGISTER(s3_a_download_never_overwrites_and_needs_a_writable_place);
    REGISTER(s3_an_error_answer_over_8_mib_is_refused_without_retry);
    REGISTER(s3_the_default_region_the_generic_endpoint_and_a_session_token_are_used);
    REGISTER(s3_a_download_whose_name_is_taken_meanwhile_keeps_nothing);
    REGISTER(s3_an_existing_object_is_never_overwritten);
    REGISTER(s3_a_refused_single_part_upload_names_s3s_reason);
    REGISTER(s3_a_single_part_upload_is_checked_as_stored);
    REGISTER(s3_an_upload_without_sha256_is_checked_by_size_and_etag);
    REGISTER(s3_an_upload_stored_with_another_size_is_an_error);
    REGISTER(s3_an_upload_stored_with_another_sha256_is_an_error);
    REGISTER(s3_an_overlong_etag_is_cut_and_does_not_match);
    REGISTER(s3_an_upload_gone_afterwards_is_an_error);
    REGISTER(s3_a_multipart_upload_sends_its_parts_and_completes);
    REGISTER(s3_a_refused_multipart_start_sends_no_part);
    REGISTER(s3_a_multipart_start_without_upload_id_sends_no_part);
    REGISTER(s3_a_multipart_start_answered_by_something_else_is_not_s3);
    REGISTER(s3_a_refused_part_aborts_the_upload);
    REGISTER(s3_a_completion_answered_200_with_an_error_aborts_the_upload);
    REGISTER(s3_a_refused_completion_aborts_the_upload);
    REGISTER(s3_a_listing_reads_every_page_and_decodes_keys);
    REGISTER(s3_a_listing_with_a_size_that_is_no_number_fails);
    REGISTER(s3_a_listing_with_two_bad_sizes_names_the_first);
    REGISTER(s3_a_truncated_page_with_an_empty_token_stops_the_listing);
    REGISTER(s3_listed_keys_decode_hex_of_either_case);
    REGISTER(s3_a_listing_with_a_negative_size_fails);
    REGISTER(s3_a_listing_with_a_badly_encoded_key_fails);
    REGISTER(s3_a_listing_with_an_encoded_nul_in_a_key_fails);
    REGISTER(s3_a_listing_with_an_object_without_key_fails);
    REGISTER(s3_a_listing_that_is_not_xml_fails);
    REGISTER(s3_a_listing_nested_too_deep_is_refused);
    REGISTER(s3_a_listing_with_a_doctype_is_refused);
    REGISTER(s3_a_listing_answered_by_another_document_is_not_s3);
    REGISTER(s3_a_listing_answered_200_with_an_error_fails_with_it);
    REGISTER(s3_a_truncated_page_without_token_stops_the_listing);
    REGISTER(s3_a_token_given_twice_stops_the_listing);
    REGISTER(s3_a_refused_listing_names_s3s_reason);
    REGISTER(a_neon_address_that_cannot_be_sent_is_refused);
    REGISTER(a_neon_address_loses_its_trailing_slashes);
    REGISTER(neon_a_bad_method_or_path_is_refused_unsent);
    REGISTER(neon_a_2xx_without_body_is_an_empty_object);
    REGISTER(neon_a_malformed_answer_is_not_taken_for_anything);
    REGISTER(neon_an_answer_cut_short_is_retried);
    REGISTER(neon_retry_after_is_honoured_before_the_next_try);
    REGISTER(neon_a_retry_after_that_is_no_number_falls_back_to_the_backoff);
    REGISTER(neon_a_key_may_hold_spaces_but_an_address_no_delete_character);
    REGISTER(neon_a_server_busy_on_every_try_gives_up_with_its_last_error);
    REGISTER(neon_a_refused_key_is_said_so);
    REGISTER(neon_an_error_that_is_not_neons_shape_is_said_so);
    REGISTER(neon_an_error_without_body_has_no_message);
    REGISTER(neon_a_redirect_is_a_failure_not_followed);
    REGISTER(neon_a_post_whose_answer_is_lost_is_not_repeated);
    REGISTER(neon_a_delete_whose_answer_was_lost_then_404_is_done);
    REGISTER(neon_a_get_whose_connection_drops_each_time_gives_up_unreachable);
    REGISTER(neon_a_refused_connection_is_retried_then_reported);
    REGISTER(neon_a_slow_server_meets_the_transfer_timeout);
    REGISTER(neon_the_deadline_bounds_a_call_to_a_slow_server);
    REGISTER(neon_a_request_libcurl_refuses_is_not_retried);
    REGISTER(neon_a_stop_during_the_wait_before_a_retry_interrupts_the_call);
    REGISTER(neon_the_callers_time_left_bounds_the_call);
    REGISTER(neon_operations_are_polled_until_they_finish);
    REGISTER(neon_an_operation_without_id_cannot_be_waited_on);
    REGISTER(neon_an_operation_without_project_cannot_be_waited_on);
    REGISTER(neon_an_operation_ending_in_error_fails_the_wait);
    REGISTER(neon_an_operation_that_fails_fails_the_wait_with_its_error);
    REGISTER(neon_an_operation_already_cancelled_has_no_error_given);
    REGISTER(neon_a_poll_without_status_fails_the_wait);
    REGISTER(neon_a_failed_poll_fails_the_wait_with_its_reason);
    REGISTER(neon_a_stop_interrupts_the_wait_for_an_operation);
    REGISTER(notify_a_slack_webhook_gets_the_target_and_details_as_lines);
    REGISTER(notify_without_webhooks_sends_nothing);
    REGISTER(notify_a_slack_text_leaves_out_what_an_event_does_not_say);
    REGISTER(notify_a_webhook_that_is_gone_is_not_retried);
    REGISTER(notify_a_webhook_from_the_environment_that_is_gone_is_named_by_its_variable);
    REGISTER(notify_a_redirect_is_not_followed_and_not_retried);
    REGISTER(notify_a_busy_webhook_is_retried_until_it_takes_the_notification);
    REGISTER(notify_a_webhook_busy_on_every_try_stops_within_the_timeout);
    REGISTER(notify_a_refused_connection_is_retried_then_reported);
    REGISTER(notify_each_webhook_gets_its_own_outcome);
    REGISTER(notify_a_stop_ends_a_delivery_in_flight);
    REGISTER(notify_a_stop_while_a_retry_waits_keeps_the_last_error);
    REGISTER(notify_a_slow_webhook_meets_the_timeout);
    REGISTER(notify_a_record_that_cannot_be_made_is_an_error);
}
