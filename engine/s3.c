#include "s3.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PART_SIZE (8 << 20)
#define ATTEMPTS 4

typedef struct s3_config {
    char *endpoint, *region, *key_id, *secret, *token;
} s3_config;

typedef struct s3_url {
    char *bucket, *key;
} s3_url;

int s3_is_url(const char *text)
{
    return text && strncmp(text, "s3://", 5) == 0;
}

static const char *env_or(const char *a, const char *b, const char *fallback)
{
    const char *v = getenv(a);
    if (v && *v)
        return v;
    v = b ? getenv(b) : NULL;
    return v && *v ? v : fallback;
}

static void config_free(s3_config *c)
{
    free(c->endpoint);
    free(c->region);
    free(c->key_id);
    free(c->secret);
    free(c->token);
}

static int config_from_env(s3_config *c)
{
    memset(c, 0, sizeof *c);
    const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    if (!id || !*id || !secret || !*secret)
        return err_set(DR_EUSAGE, "S3 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment");
    c->region = xstrdup(env_or("AWS_REGION", "AWS_DEFAULT_REGION", "us-east-1"));
    const char *endpoint = env_or("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", NULL);
    c->endpoint = endpoint ? xstrdup(endpoint) : xasprintf("https://s3.%s.amazonaws.com", c->region);
    size_t n = strlen(c->endpoint);
    while (n && c->endpoint[n - 1] == '/')
        c->endpoint[--n] = '\0';
    c->key_id = xstrdup(id);
    c->secret = xstrdup(secret);
    const char *token = getenv("AWS_SESSION_TOKEN");
    c->token = token && *token ? xstrdup(token) : NULL;
    return 0;
}

static int parse_url(const char *url, s3_url *u)
{
    memset(u, 0, sizeof *u);
    if (!s3_is_url(url) || !url[5] || url[5] == '/')
        return err_set(DR_EUSAGE, "'%s' is not an S3 URL like s3://bucket/key", url ? url : "");
    const char *slash = strchr(url + 5, '/');
    u->bucket = slash ? xstrndup(url + 5, (size_t)(slash - url - 5)) : xstrdup(url + 5);
    u->key = xstrdup(slash ? slash + 1 : "");
    return 0;
}

static void url_free(s3_url *u)
{
    free(u->bucket);
    free(u->key);
}

/* The configuration and the parsed URL of one operation (freed with
 * close_target), or an error with nothing to free. */
static int open_target(const char *url, s3_config *c, s3_url *u)
{
    int rc = config_from_env(c);
    if (rc)
        return rc;
    if ((rc = parse_url(url, u)) != 0)
        config_free(c);
    return rc;
}

static void close_target(s3_config *c, s3_url *u)
{
    url_free(u);
    config_free(c);
}

/* A key in a URL path: each byte but unreserved ones and '/' escaped. */
static void put_escaped(buf *b, const char *text, int keep_slash)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '_' || *p == '.' || *p == '~' || (keep_slash && *p == '/'))
            buf_putc(b, (char)*p);
        else
            buf_printf(b, "%%%02X", *p);
    }
}

/* ---- one request ------------------------------------------------------------------------ */

typedef struct s3_reply {
    long status;
    buf body;
    char etag[128];
    char sha256[80];
    long long length;
} s3_reply;

static size_t on_body(char *data, size_t size, size_t count, void *ud)
{
    buf_append(ud, data, size * count);
    return size * count;
}

static size_t on_file(char *data, size_t size, size_t count, void *ud)
{
    return fwrite(data, size, count, ud) * size;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t out_size)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0)
        return;
    const char *v = line + n;
    while (*v == ' ')
        v++;
    size_t vlen = len - (size_t)(v - line);
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
        vlen--;
    if (vlen >= out_size)
        vlen = out_size - 1;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
}

static size_t on_header(char *data, size_t size, size_t count, void *ud)
{
    s3_reply *r = ud;
    size_t len = size * count;
    header_value(data, len, "ETag:", r->etag, sizeof r->etag);
    header_value(data, len, "x-amz-meta-sha256:", r->sha256, sizeof r->sha256);
    char length[32] = "";
    header_value(data, len, "Content-Length:", length, sizeof length);
    if (*length)
        r->length = atoll(length);
    return len;
}

typedef struct s3_call {
    const char *method;
    const s3_url *url;
    const char *query;     /* without '?', may be NULL */
    const char *body;      /* may be NULL */
    size_t body_len;
    const char *sha256;    /* metadata to send, may be NULL */
    FILE *sink;            /* GET to a file, or NULL */
} s3_call;

static int perform(const s3_config *c, const s3_call *call, s3_reply *r)
{
    buf url = BUF_INIT;
    buf_printf(&url, "%s/", c->endpoint);
    put_escaped(&url, call->url->bucket, 0);
    if (*call->url->key) {
        buf_putc(&url, '/');
        put_escaped(&url, call->url->key, 1);
    }
    if (call->query)
        buf_printf(&url, "?%s", call->query);
    char *sigv4 = xasprintf("aws:amz:%s:s3", c->region);
    /* S3 wants the payload's hash, signed; this libcurl does not add it. */
    unsigned char digest[32];
    EVP_Digest(call->body ? call->body : "", call->body ? call->body_len : 0, digest, NULL, EVP_sha256(), NULL);
    char payload_header[96] = "x-amz-content-sha256: ";
    for (int i = 0; i < 32; i++)
        snprintf(payload_header + 22 + 2 * i, 3, "%02x", digest[i]);
    int rc = 0;
    for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
        memset(r, 0, sizeof *r);
        r->body = (buf)BUF_INIT;
        if (call->sink) {
            fflush(call->sink);
            if (ftruncate(fileno(call->sink), 0) != 0 || fseek(call->sink, 0, SEEK_SET) != 0)
                return err_set(DR_EFAIL, "cannot rewrite the download: %s", strerror(errno));
        }
        CURL *h = curl_easy_init();
        struct curl_slist *headers = NULL;
        char *token = c->token ? xasprintf("x-amz-security-token: %s", c->token) : NULL;
        char *meta = call->sha256 ? xasprintf("x-amz-meta-sha256: %s", call->sha256) : NULL;
        if (token)
            headers = curl_slist_append(headers, token);
        if (meta)
            headers = curl_slist_append(headers, meta);
        headers = curl_slist_append(headers, "Expect:");
        headers = curl_slist_append(headers, payload_header);
        curl_easy_setopt(h, CURLOPT_URL, buf_cstr(&url));
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
        curl_easy_setopt(h, CURLOPT_USERNAME, c->key_id);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L); /* a stalled transfer fails, a slow one goes on */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
        if (!strcmp(call->method, "HEAD"))
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        else
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, call->method);
        if (call->body || !strcmp(call->method, "PUT") || !strcmp(call->method, "POST")) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, call->body ? call->body : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
        }
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, call->sink ? on_file : on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, call->sink ? (void *)call->sink : (void *)&r->body);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
        CURLcode code = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        curl_slist_free_all(headers);
        curl_easy_cleanup(h);
        free(token);
        free(meta);
        int transient = code != CURLE_OK || r->status >= 500 || r->status == 429;
        if (!transient) {
            rc = 0;
            break;
        }
        rc = code != CURLE_OK
                 ? err_set(DR_EFAIL, "S3 %s %s: %s", call->method, buf_cstr(&url), curl_easy_strerror(code))
                 : err_set(DR_EFAIL, "S3 %s %s: %ld", call->method, buf_cstr(&url), r->status);
        buf_free(&r->body);
        if (attempt < ATTEMPTS) {
            struct timespec ts = { 0, 200000000L * attempt };
            nanosleep(&ts, NULL);
        }
    }
    free(sigv4);
    buf_free(&url);
    return rc;
}

/* The text of <tag>...</tag> after *from (advanced past it), or NULL. */
static char *xml_value(const char *text, const char *tag, const char **from)
{
    char *open = xasprintf("<%s>", tag), *close = xasprintf("</%s>", tag);
    const char *start = strstr(from && *from ? *from : text, open);
    char *value = NULL;
    if (start) {
        start += strlen(open);
        const char *end = strstr(start, close);
        if (end) {
            value = xstrndup(start, (size_t)(end - start));
            if (from)
                *from = end + strlen(close);
        }
    }
    free(open);
    free(close);
    return value;
}

static int failed_status(const s3_call *call, s3_reply *r, const char *what)
{
    char *code = r->body.len ? xml_value(buf_cstr(&r->body), "Code", NULL) : NULL;
    char *message = r->body.len ? xml_value(buf_cstr(&r->body), "Message", NULL) : NULL;
    int rc = err_set(DR_EFAIL, "S3 %s of s3://%s/%s: %ld %s%s%s", what, call->url->bucket, call->url->key, r->status,
                     code ? code : "", message ? ": " : "", message ? message : "");
    free(code);
    free(message);
    buf_free(&r->body);
    return rc;
}

/* ---- upload ------------------------------------------------------------------------------ */

static void md5_hex(const unsigned char *digest, char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static int read_part(FILE *f, char *part, size_t *len)
{
    *len = fread(part, 1, PART_SIZE, f);
    return ferror(f) ? err_set(DR_EFAIL, "cannot read the file to upload: %s", strerror(errno)) : 0;
}

/* The ETag S3 gives a multipart object: md5 of the parts' md5s, "-N". */
static void multipart_etag(const unsigned char *md5s, int parts, char out[48])
{
    unsigned char digest[16];
    EVP_Digest(md5s, (size_t)parts * 16, digest, NULL, EVP_md5(), NULL);
    char hex[33];
    md5_hex(digest, hex);
    snprintf(out, 48, "%s-%d", hex, parts);
}

static int put_single(const s3_config *c, const s3_url *u, FILE *f, const char *sha256, char expected[48])
{
    char *part = xmalloc(PART_SIZE);
    size_t len;
    int rc = read_part(f, part, &len);
    if (rc == 0) {
        unsigned char digest[16];
        EVP_Digest(part, len, digest, NULL, EVP_md5(), NULL);
        md5_hex(digest, expected);
        s3_call call = { .method = "PUT", .url = u, .body = part, .body_len = len, .sha256 = sha256 };
        s3_reply r;
        rc = perform(c, &call, &r);
        if (rc == 0 && (r.status < 200 || r.status >= 300))
            rc = failed_status(&call, &r, "upload");
        buf_free(&r.body);
    }
    free(part);
    return rc;
}

static int put_multipart(const s3_config *c, const s3_url *u, FILE *f, long long total, const char *sha256,
                         char expected[48], char whole_md5[33], void (*progress)(void *, long long, long long),
                         void *ud)
{
    s3_call start = { .method = "POST", .url = u, .query = "uploads", .sha256 = sha256 };
    s3_reply r;
    int rc = perform(c, &start, &r);
    if (rc == 0 && r.status != 200)
        return failed_status(&start, &r, "multipart start");
    if (rc)
        return rc;
    char *upload_id = xml_value(buf_cstr(&r.body), "UploadId", NULL);
    buf_free(&r.body);
    if (!upload_id)
        return err_set(DR_EFAIL, "S3 multipart start of s3://%s/%s: no UploadId in the answer", u->bucket, u->key);
    buf escaped_id = BUF_INIT;
    put_escaped(&escaped_id, upload_id, 0);
    char *part = xmalloc(PART_SIZE);
    unsigned char *md5s = NULL;
    EVP_MD_CTX *whole = EVP_MD_CTX_new();
    EVP_DigestInit_ex(whole, EVP_md5(), NULL);
    buf complete = BUF_INIT;
    buf_puts(&complete, "<CompleteMultipartUpload>");
    int parts = 0;
    long long done = 0;
    size_t len;
    while (rc == 0 && (rc = read_part(f, part, &len)) == 0 && len > 0) {
        parts++;
        md5s = xrealloc(md5s, (size_t)parts * 16);
        EVP_Digest(part, len, md5s + (parts - 1) * 16, NULL, EVP_md5(), NULL);
        EVP_DigestUpdate(whole, part, len);
        char *query = xasprintf("partNumber=%d&uploadId=%s", parts, buf_cstr(&escaped_id));
        s3_call put = { .method = "PUT", .url = u, .query = query, .body = part, .body_len = len };
        rc = perform(c, &put, &r);
        if (rc == 0 && r.status != 200)
            rc = failed_status(&put, &r, "part upload");
        if (rc == 0)
            buf_printf(&complete, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", parts, r.etag);
        buf_free(&r.body);
        free(query);
        done += (long long)len;
        if (progress && rc == 0)
            progress(ud, done, total);
    }
    buf_puts(&complete, "</CompleteMultipartUpload>");
    char *query = xasprintf("uploadId=%s", buf_cstr(&escaped_id));
    if (rc == 0) {
        s3_call finish = { .method = "POST", .url = u, .query = query, .body = complete.data, .body_len = complete.len };
        rc = perform(c, &finish, &r);
        /* S3 may answer 200 with an <Error> body. */
        if (rc == 0 && (r.status != 200 || strstr(buf_cstr(&r.body), "<Error>")))
            rc = failed_status(&finish, &r, "multipart completion");
        buf_free(&r.body);
    }
    if (rc != 0) { /* nothing half-made stays billed */
        s3_call abort_call = { .method = "DELETE", .url = u, .query = query };
        if (perform(c, &abort_call, &r) == 0)
            buf_free(&r.body);
    } else {
        multipart_etag(md5s, parts, expected);
        unsigned char digest[16];
        EVP_DigestFinal_ex(whole, digest, NULL);
        md5_hex(digest, whole_md5);
    }
    EVP_MD_CTX_free(whole);
    free(query);
    free(part);
    free(md5s);
    free(upload_id);
    buf_free(&escaped_id);
    buf_free(&complete);
    return rc;
}

static void strip_quotes(char *etag)
{
    size_t n = strlen(etag);
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
        memmove(etag, etag + 1, n - 2);
        etag[n - 2] = '\0';
    }
}

int s3_upload(const char *path, const char *url, const char *sha256,
              void (*progress)(void *ud, long long done, long long total), void *ud)
{
    s3_config c;
    s3_url u;
    int rc = open_target(url, &c, &u), exists = 0;
    if (rc)
        return rc;
    if (!*u.key) {
        close_target(&c, &u);
        return err_set(DR_EUSAGE, "%s names a bucket, not an object", url);
    }
    struct stat st;
    FILE *f = NULL;
    s3_reply r;
    s3_call head = { .method = "HEAD", .url = &u };
    if (stat(path, &st) != 0 || !(f = fopen(path, "rb")))
        rc = err_set(DR_EFAIL, "cannot read %s: %s", path, strerror(errno));
    if (rc == 0 && (rc = s3_exists(url, &exists)) == 0 && exists)
        rc = err_set(DR_EFAIL, "%s already exists; an export is never overwritten", url);
    /* ETag: the MD5 for one part; for a multipart object S3 says the MD5
     * of the parts' MD5s with "-N", some compatible services the MD5 of
     * the whole: either matches. */
    char expected[48] = "", whole_md5[33] = "";
    if (rc == 0)
        rc = st.st_size <= PART_SIZE ? put_single(&c, &u, f, sha256, expected)
                                     : put_multipart(&c, &u, f, (long long)st.st_size, sha256, expected, whole_md5,
                                                     progress, ud);
    /* Checked as stored: size, ETag (the MD5s), the sha256 metadata. */
    if (rc == 0 && (rc = perform(&c, &head, &r)) == 0) {
        buf_free(&r.body);
        strip_quotes(r.etag);
        if (r.status != 200)
            rc = err_set(DR_EFAIL, "%s is not there after its upload (HEAD answered %ld)", url, r.status);
        else if (r.length != (long long)st.st_size || (strcmp(r.etag, expected) != 0 && strcmp(r.etag, whole_md5) != 0) ||
                 (sha256 && strcmp(r.sha256, sha256) != 0))
            rc = err_set(DR_EFAIL, "%s differs from %s after its upload (size %lld vs %lld, ETag %s vs %s)", url,
                         path, r.length, (long long)st.st_size, r.etag, expected);
    }
    if (f)
        fclose(f);
    close_target(&c, &u);
    return rc;
}

int s3_exists(const char *url, int *exists)
{
    *exists = 0;
    s3_config c;
    s3_url u;
    int rc = open_target(url, &c, &u);
    if (rc)
        return rc;
    s3_call head = { .method = "HEAD", .url = &u };
    s3_reply r;
    if ((rc = perform(&c, &head, &r)) == 0) {
        buf_free(&r.body);
        if (r.status == 200)
            *exists = 1;
        else if (r.status != 404)
            rc = failed_status(&head, &r, "existence check");
    }
    close_target(&c, &u);
    return rc;
}

int s3_download(const char *url, const char *path)
{
    s3_config c;
    s3_url u;
    int rc = open_target(url, &c, &u);
    if (rc)
        return rc;
    if (fsio_exists(path)) {
        rc = err_set(DR_EFAIL, "%s already exists; the download does not overwrite it", path);
    } else {
        char *partial = xasprintf("%s.partial", path);
        FILE *f = fopen(partial, "wb");
        if (!f) {
            rc = err_set(DR_EFAIL, "cannot write %s: %s", partial, strerror(errno));
        } else {
            s3_call get = { .method = "GET", .url = &u, .sink = f };
            s3_reply r;
            rc = perform(&c, &get, &r);
            if (rc == 0 && r.status != 200)
                rc = err_set(DR_EFAIL, "S3 download of %s: %ld", url, r.status);
            buf_free(&r.body);
            if (fclose(f) != 0 && rc == 0)
                rc = err_set(DR_EFAIL, "cannot write %s: %s", partial, strerror(errno));
            if (rc == 0 && rename(partial, path) != 0)
                rc = err_set(DR_EFAIL, "cannot rename %s: %s", partial, strerror(errno));
            if (rc)
                unlink(partial);
        }
        free(partial);
    }
    close_target(&c, &u);
    return rc;
}

void s3_objects_free(s3_object *objects, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(objects[i].key);
        free(objects[i].last_modified);
    }
    free(objects);
}

int s3_list(const char *url, s3_object **objects, size_t *count)
{
    *objects = NULL;
    *count = 0;
    s3_config c;
    s3_url u;
    int rc = open_target(url, &c, &u);
    if (rc)
        return rc;
    s3_url bucket = { u.bucket, "" };
    char *token = NULL;
    do {
        buf query = BUF_INIT;
        buf_puts(&query, "list-type=2&prefix=");
        put_escaped(&query, u.key, 0);
        if (token) {
            buf_puts(&query, "&continuation-token=");
            put_escaped(&query, token, 0);
        }
        s3_call list = { .method = "GET", .url = &bucket, .query = buf_cstr(&query) };
        s3_reply r;
        rc = perform(&c, &list, &r);
        buf_free(&query);
        if (rc == 0 && r.status != 200)
            rc = failed_status(&list, &r, "listing");
        if (rc)
            break;
        const char *at = buf_cstr(&r.body);
        char *entry;
        while ((entry = xml_value(buf_cstr(&r.body), "Contents", &at))) {
            *objects = xrealloc(*objects, (*count + 1) * sizeof **objects);
            s3_object *o = &(*objects)[(*count)++];
            o->key = xml_value(entry, "Key", NULL);
            o->last_modified = xml_value(entry, "LastModified", NULL);
            char *size = xml_value(entry, "Size", NULL);
            o->size = size ? atoll(size) : 0;
            free(size);
            free(entry);
        }
        free(token);
        char *truncated = xml_value(buf_cstr(&r.body), "IsTruncated", NULL);
        token = truncated && !strcmp(truncated, "true") ? xml_value(buf_cstr(&r.body), "NextContinuationToken", NULL)
                                                        : NULL;
        free(truncated);
        buf_free(&r.body);
    } while (token);
    free(token);
    close_target(&c, &u);
    if (rc) {
        s3_objects_free(*objects, *count);
        *objects = NULL;
        *count = 0;
    }
    return rc;
}

int s3_delete(const char *url)
{
    s3_config c;
    s3_url u;
    int rc = open_target(url, &c, &u);
    if (rc)
        return rc;
    s3_call del = { .method = "DELETE", .url = &u };
    s3_reply r;
    rc = perform(&c, &del, &r);
    if (rc == 0 && r.status != 204 && r.status != 200)
        rc = failed_status(&del, &r, "deletion");
    buf_free(&r.body);
    close_target(&c, &u);
    return rc;
}
