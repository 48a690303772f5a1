#include "s3.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"

#include <curl/curl.h>
#include <errno.h>
#include <expat.h>
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
/* Every answer drctl reads into memory (a listing page, an upload id, an
 * error) is a few kB; object contents go to files and are not bounded. */
#define ANSWER_LIMIT (8 << 20)
#define ANSWER_LIMIT_TEXT "8 MiB"
/* S3's answers nest four deep; this bounds what a hostile one can make us keep. */
#define XML_MAX_DEPTH 16
/* A listing stops past these rather than running on with a service that
 * hands out pages without end. */
#define LIST_MAX_PAGES 100000
#define LIST_MAX_OBJECTS 10000000

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

static int parse_url(s3_url *u, const char *url)
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
static int open_target(s3_config *c, s3_url *u, const char *url)
{
    int rc = config_from_env(c);
    if (rc)
        return rc;
    if ((rc = parse_url(u, url)) != 0)
        config_free(c);
    return rc;
}

static void close_target(s3_config *c, s3_url *u)
{
    url_free(u);
    config_free(c);
}

/* A key in a URL path, or a value in a query (see s3.h). */
void s3_escape(buf *b, const char *text, int keep_slash)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '_' || *p == '.' || *p == '~' || (keep_slash && *p == '/'))
            buf_putc(b, (char)*p);
        else
            buf_printf(b, "%%%02X", *p);
    }
}

/* Text inside an XML element, with the five markup characters escaped. */
static void put_xml_text(buf *b, const char *text)
{
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '&': buf_puts(b, "&amp;"); break;
        case '<': buf_puts(b, "&lt;"); break;
        case '>': buf_puts(b, "&gt;"); break;
        case '"': buf_puts(b, "&quot;"); break;
        case '\'': buf_puts(b, "&apos;"); break;
        default: buf_putc(b, *p);
        }
    }
}

/* ---- one request ------------------------------------------------------------------------ */

typedef struct s3_reply {
    long status;
    buf body;      /* the answer, when it is not an object going to a file */
    int too_big;   /* the answer passed ANSWER_LIMIT and was cut off */
    char etag[128];
    char sha256[80];
    long long length;
} s3_reply;

typedef struct s3_transfer {
    CURL *handle;
    FILE *sink; /* where a downloaded object goes, or NULL */
    s3_reply *reply;
} s3_transfer;

/* An object's bytes go to the sink; anything else (an error even during a
 * download) is kept in memory, up to ANSWER_LIMIT. */
static size_t on_body(char *data, size_t size, size_t count, void *ud)
{
    s3_transfer *t = ud;
    size_t len = size * count;
    long status = 0;
    curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status);
    if (t->sink && status >= 200 && status < 300)
        return fwrite(data, 1, len, t->sink);
    if (len > ANSWER_LIMIT - t->reply->body.len) {
        t->reply->too_big = 1;
        return len ? 0 : 1; /* anything but len stops the transfer */
    }
    buf_append(&t->reply->body, data, len);
    return len;
}

static void header_value(char *out, size_t out_size, const char *line, size_t len, const char *name)
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
    header_value(r->etag, sizeof r->etag, data, len, "ETag:");
    header_value(r->sha256, sizeof r->sha256, data, len, "x-amz-meta-sha256:");
    char length[32] = "";
    header_value(length, sizeof length, data, len, "Content-Length:");
    if (*length)
        r->length = atoll(length);
    return len;
}

typedef struct s3_call {
    const char *method;
    const s3_url *url;
    int bucket_only;       /* to the bucket itself, url->key being a listing's prefix */
    const char *query;     /* without '?', in SigV4's canonical form; may be NULL */
    const char *body;      /* may be NULL */
    size_t body_len;
    const char *sha256;    /* metadata to send, may be NULL */
    FILE *sink;            /* GET to a file, or NULL */
} s3_call;

void s3_payload_sha256(char hex[65], const void *body, size_t len)
{
    unsigned char digest[32];
    EVP_Digest(body ? body : "", body ? len : 0, digest, NULL, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

void s3_sign_request(struct curl_slist **headers, CURL *h, const s3_signer *signer, const char *payload_sha256)
{
    char *provider = xasprintf("aws:amz:%s:%s", signer->region, signer->service);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, provider); /* libcurl keeps copies of strings */
    curl_easy_setopt(h, CURLOPT_USERNAME, signer->key_id);
    curl_easy_setopt(h, CURLOPT_PASSWORD, signer->secret);
    free(provider);
    if (signer->token) {
        char *token = xasprintf("x-amz-security-token: %s", signer->token);
        *headers = curl_slist_append(*headers, token);
        free(token);
    }
    /* No "Expect:" to turn 100-continue off: this libcurl would sign
     * that header though it never sends it, which services refuse. */
    if (payload_sha256) {
        char *payload = xasprintf("x-amz-content-sha256: %s", payload_sha256);
        *headers = curl_slist_append(*headers, payload);
        free(payload);
    }
}

static int perform(s3_reply *r, const s3_config *c, const s3_call *call)
{
    buf url = BUF_INIT;
    buf_printf(&url, "%s/", c->endpoint);
    s3_escape(&url, call->url->bucket, 0);
    if (*call->url->key && !call->bucket_only) {
        buf_putc(&url, '/');
        s3_escape(&url, call->url->key, 1);
    }
    if (call->query)
        buf_printf(&url, "?%s", call->query);
    s3_signer signer = { c->region, "s3", c->key_id, c->secret, c->token };
    char payload_sha256[65];
    s3_payload_sha256(payload_sha256, call->body, call->body_len);
    int rc = 0;
    for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
        memset(r, 0, sizeof *r);
        r->body = (buf)BUF_INIT;
        if (call->sink) {
            fflush(call->sink);
            if (ftruncate(fileno(call->sink), 0) != 0 || fseek(call->sink, 0, SEEK_SET) != 0) {
                rc = err_set(DR_EFAIL, "cannot rewrite the download: %s", strerror(errno));
                break;
            }
        }
        CURL *h = curl_easy_init();
        struct curl_slist *headers = NULL;
        char *meta = call->sha256 ? xasprintf("x-amz-meta-sha256: %s", call->sha256) : NULL;
        if (meta)
            headers = curl_slist_append(headers, meta);
        s3_sign_request(&headers, h, &signer, payload_sha256);
        curl_easy_setopt(h, CURLOPT_URL, buf_cstr(&url));
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        /* A key may hold "." and ".." segments: they are names, not steps. */
        curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
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
        s3_transfer transfer = { h, call->sink, r };
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
        CURLcode code = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        curl_slist_free_all(headers);
        curl_easy_cleanup(h);
        free(meta);
        if (r->too_big) { /* the same answer again would be as big */
            rc = err_set(DR_EFAIL, "S3 %s %s: the answer is larger than " ANSWER_LIMIT_TEXT
                                   ", more than any listing or error S3 sends; refused (is the endpoint S3?)",
                         call->method, buf_cstr(&url));
            buf_dispose(&r->body);
            break;
        }
        int transient = code != CURLE_OK || r->status >= 500 || r->status == 429;
        /* The last answer, even a 5xx, goes to the caller: its Code and
         * Message say more than the status alone. */
        if (!transient || (code == CURLE_OK && attempt == ATTEMPTS)) {
            rc = 0;
            break;
        }
        rc = code != CURLE_OK
                 ? err_set(DR_EFAIL, "S3 %s %s: %s", call->method, buf_cstr(&url), curl_easy_strerror(code))
                 : err_set(DR_EFAIL, "S3 %s %s: %ld", call->method, buf_cstr(&url), r->status);
        buf_dispose(&r->body);
        if (attempt < ATTEMPTS) {
            struct timespec ts = { 0, 200000000L * attempt };
            nanosleep(&ts, NULL);
        }
    }
    buf_dispose(&url);
    return rc;
}

/* ---- S3's XML answers -------------------------------------------------------------------- */

/* An element of an answer, handed over when it closes: the names from the
 * root down to it (path[depth - 1] is its own), and its text with entities
 * and character references decoded. */
typedef void (*xml_element_fn)(void *ud, const char *const *path, int depth, const char *text);

typedef struct xml_reader {
    XML_Parser parser;
    char *path[XML_MAX_DEPTH];
    int depth;
    buf text; /* since the last tag: a leaf element's whole text */
    xml_element_fn on_element;
    void *ud;
    const char *refusal; /* why the reader stopped the parser, or NULL */
} xml_reader;

static void text_reset(buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static void reader_refuse(xml_reader *x, const char *why)
{
    if (!x->refusal)
        x->refusal = why;
    XML_StopParser(x->parser, XML_FALSE);
}

/* Names come as "namespace-URI name" (S3 uses a default namespace): the
 * name alone is what matters. */
static const char *local_name(const XML_Char *name)
{
    const char *space = strrchr(name, ' ');
    return space ? space + 1 : name;
}

static void XMLCALL on_xml_start(void *ud, const XML_Char *name, const XML_Char **attributes)
{
    xml_reader *x = ud;
    (void)attributes;
    if (x->refusal)
        return;
    if (x->depth == XML_MAX_DEPTH) {
        reader_refuse(x, "elements are nested deeper than S3 ever nests them");
        return;
    }
    x->path[x->depth++] = xstrdup(local_name(name));
    text_reset(&x->text);
}

static void XMLCALL on_xml_end(void *ud, const XML_Char *name)
{
    xml_reader *x = ud;
    (void)name;
    if (x->refusal || x->depth == 0)
        return;
    x->on_element(x->ud, (const char *const *)x->path, x->depth, buf_cstr(&x->text));
    free(x->path[--x->depth]);
    text_reset(&x->text);
}

static void XMLCALL on_xml_text(void *ud, const XML_Char *text, int len)
{
    xml_reader *x = ud;
    if (!x->refusal)
        buf_append(&x->text, text, (size_t)len);
}

/* S3 never declares a DTD; one could only be there to define entities that
 * expand (a "billion laughs"), so none is read. */
static void XMLCALL on_xml_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                                   int has_internal_subset)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
    reader_refuse(ud, "it declares a DOCTYPE, which S3 never sends");
}

/* Reads one answer, calling on_element for each element. 0, or -1 with
 * why (a sentence fragment naming the place) filled in. */
static int xml_read(const buf *body, xml_element_fn on_element, void *ud, char *why, size_t why_size)
{
    xml_reader x = { .on_element = on_element, .ud = ud, .text = BUF_INIT };
    x.parser = XML_ParserCreateNS(NULL, ' ');
    if (!x.parser) {
        snprintf(why, why_size, "out of memory for the XML parser");
        return -1;
    }
    XML_SetUserData(x.parser, &x);
    XML_SetElementHandler(x.parser, on_xml_start, on_xml_end);
    XML_SetCharacterDataHandler(x.parser, on_xml_text);
    XML_SetStartDoctypeDeclHandler(x.parser, on_xml_doctype);
    int ok = XML_Parse(x.parser, body->data ? body->data : "", (int)body->len, XML_TRUE) == XML_STATUS_OK;
    if (!ok)
        snprintf(why, why_size, "line %lu, column %lu: %s", (unsigned long)XML_GetCurrentLineNumber(x.parser),
                 (unsigned long)XML_GetCurrentColumnNumber(x.parser) + 1,
                 x.refusal ? x.refusal : XML_ErrorString(XML_GetErrorCode(x.parser)));
    while (x.depth > 0)
        free(x.path[--x.depth]);
    buf_dispose(&x.text);
    XML_ParserFree(x.parser);
    return ok ? 0 : -1;
}

/* 1 when path is exactly the names in spec, "Root/Child/Leaf". */
static int path_is(const char *const *path, int depth, const char *spec)
{
    for (int i = 0; i < depth; i++) {
        size_t n = strlen(path[i]);
        if (strncmp(spec, path[i], n) != 0 || (spec[n] != '/' && spec[n] != '\0'))
            return 0;
        spec += n;
        if (i < depth - 1) {
            if (*spec != '/')
                return 0;
            spec++;
        }
    }
    return *spec == '\0';
}

static void replace_text(char **slot, const char *text)
{
    free(*slot);
    *slot = xstrdup(text);
}

/* A service's words, fit for one line of a terminal: control bytes (escape
 * sequences among them) become spaces, and the length is bounded. */
static char *printable(const char *text, size_t max)
{
    size_t n = strlen(text);
    char *out = xstrndup(text, n > max ? max : n);
    for (unsigned char *p = (unsigned char *)out; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return out;
}

typedef struct error_answer {
    char *root, *code, *message;
} error_answer;

static void on_error_element(void *ud, const char *const *path, int depth, const char *text)
{
    error_answer *e = ud;
    if (depth == 1)
        replace_text(&e->root, path[0]);
    else if (path_is(path, depth, "Error/Code"))
        replace_text(&e->code, text);
    else if (path_is(path, depth, "Error/Message"))
        replace_text(&e->message, text);
}

static void error_answer_free(error_answer *e)
{
    free(e->root);
    free(e->code);
    free(e->message);
}

/* "NoSuchKey: The specified key does not exist." from an <Error> body, a
 * note when the body is not S3's XML, or "" when there is no body. */
static char *error_summary(const buf *body)
{
    if (!body->len)
        return xstrdup("");
    error_answer e = { 0 };
    char why[256];
    char *summary;
    if (xml_read(body, on_error_element, &e, why, sizeof why) != 0) {
        summary = xasprintf("(the answer is not valid XML: %s)", why);
    } else if (!e.code && !e.message) {
        char *root = printable(e.root ? e.root : "", 64);
        summary = xasprintf("(an answer <%s> with no error Code or Message)", root);
        free(root);
    } else {
        char *code = printable(e.code ? e.code : "", 128), *message = printable(e.message ? e.message : "", 512);
        summary = xasprintf("%s%s%s", code, *code && *message ? ": " : "", message);
        free(code);
        free(message);
    }
    error_answer_free(&e);
    return summary;
}

static int failed_status(const s3_call *call, s3_reply *r, const char *what)
{
    char *summary = error_summary(&r->body);
    int rc = err_set(DR_EFAIL, "S3 %s of s3://%s/%s: %ld%s%s", what, call->url->bucket, call->url->key, r->status,
                     *summary ? " " : "", summary);
    free(summary);
    buf_dispose(&r->body);
    return rc;
}

/* An answer of 200 that is not the expected <root>: S3 may say <Error> with
 * 200 (a multipart completion can), anything else is not S3. */
static int unexpected_answer(const s3_call *call, s3_reply *r, const char *what, const char *root, const char *why)
{
    if (root && !strcmp(root, "Error"))
        return failed_status(call, r, what);
    char *shown = printable(root ? root : "", 64);
    int rc = why ? err_set(DR_EFAIL, "S3 %s of s3://%s/%s: the answer is not valid XML (%s)", what,
                           call->url->bucket, call->url->key, why)
                 : err_set(DR_EFAIL, "S3 %s of s3://%s/%s: the answer is <%s>, not what S3 sends (is the endpoint S3?)",
                           what, call->url->bucket, call->url->key, shown);
    free(shown);
    buf_dispose(&r->body);
    return rc;
}

typedef struct answer_value {
    const char *path; /* "Root/Leaf" of the value wanted, or NULL */
    char *root, *value;
} answer_value;

static void on_value_element(void *ud, const char *const *path, int depth, const char *text)
{
    answer_value *v = ud;
    if (depth == 1)
        replace_text(&v->root, path[0]);
    else if (v->path && path_is(path, depth, v->path))
        replace_text(&v->value, text);
}

/* Reads a 200 answer that must be <root_name>; *value gets the text at
 * value_path when that is not NULL. The body is freed. */
static int read_answer(const s3_call *call, s3_reply *r, const char *what, const char *root_name,
                       const char *value_path, char **value)
{
    answer_value v = { .path = value_path };
    char why[256];
    int parsed = xml_read(&r->body, on_value_element, &v, why, sizeof why), rc = 0;
    if (parsed != 0 || !v.root || strcmp(v.root, root_name) != 0)
        rc = unexpected_answer(call, r, what, v.root, parsed ? why : NULL);
    else if (value_path && (!v.value || !*v.value))
        rc = err_set(DR_EFAIL, "S3 %s of s3://%s/%s: no %s in the answer", what, call->url->bucket, call->url->key,
                     value_path);
    else if (value_path)
        *value = xstrdup(v.value);
    free(v.root);
    free(v.value);
    buf_dispose(&r->body);
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
        rc = perform(&r, c, &call);
        if (rc == 0 && (r.status < 200 || r.status >= 300))
            rc = failed_status(&call, &r, "upload");
        buf_dispose(&r.body);
    }
    free(part);
    return rc;
}

static int put_multipart(const s3_config *c, const s3_url *u, FILE *f, long long total, const char *sha256,
                         char expected[48], char whole_md5[33], void (*progress)(void *, long long, long long),
                         void *ud)
{
    /* "uploads=", not "uploads": this libcurl signs the query as it is
     * written, so every query here is in SigV4's canonical form (names
     * sorted, values encoded, '=' always there). */
    s3_call start = { .method = "POST", .url = u, .query = "uploads=", .sha256 = sha256 };
    s3_reply r;
    int rc = perform(&r, c, &start);
    if (rc == 0 && r.status != 200)
        return failed_status(&start, &r, "multipart start");
    if (rc)
        return rc;
    char *upload_id = NULL;
    if ((rc = read_answer(&start, &r, "multipart start", "InitiateMultipartUploadResult",
                          "InitiateMultipartUploadResult/UploadId", &upload_id)) != 0)
        return rc;
    buf escaped_id = BUF_INIT;
    s3_escape(&escaped_id, upload_id, 0);
    char *part = xmalloc(PART_SIZE);
    unsigned char *md5s = NULL;
    EVP_MD_CTX *whole = EVP_MD_CTX_new();
    EVP_DigestInit_ex(whole, EVP_md5(), NULL);
    buf complete = BUF_INIT;
    buf_puts(&complete, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
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
        rc = perform(&r, c, &put);
        if (rc == 0 && r.status != 200)
            rc = failed_status(&put, &r, "part upload");
        if (rc == 0) {
            buf_printf(&complete, "<Part><PartNumber>%d</PartNumber><ETag>", parts);
            put_xml_text(&complete, r.etag);
            buf_puts(&complete, "</ETag></Part>");
        }
        buf_dispose(&r.body);
        free(query);
        done += (long long)len;
        if (progress && rc == 0)
            progress(ud, done, total);
    }
    buf_puts(&complete, "</CompleteMultipartUpload>");
    char *query = xasprintf("uploadId=%s", buf_cstr(&escaped_id));
    if (rc == 0) {
        s3_call finish = { .method = "POST", .url = u, .query = query, .body = complete.data, .body_len = complete.len };
        rc = perform(&r, c, &finish);
        /* S3 may answer 200 with an <Error> body. */
        if (rc == 0)
            rc = r.status != 200 ? failed_status(&finish, &r, "multipart completion")
                                 : read_answer(&finish, &r, "multipart completion", "CompleteMultipartUploadResult",
                                               NULL, NULL);
        buf_dispose(&r.body);
    }
    if (rc != 0) { /* nothing half-made stays billed */
        s3_call abort_call = { .method = "DELETE", .url = u, .query = query };
        if (perform(&r, c, &abort_call) == 0)
            buf_dispose(&r.body);
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
    buf_dispose(&escaped_id);
    buf_dispose(&complete);
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
    int rc = open_target(&c, &u, url), exists = 0;
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
    if (rc == 0 && (rc = s3_exists(&exists, url)) == 0 && exists)
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
    if (rc == 0 && (rc = perform(&r, &c, &head)) == 0) {
        buf_dispose(&r.body);
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

int s3_exists(int *exists, const char *url)
{
    *exists = 0;
    s3_config c;
    s3_url u;
    int rc = open_target(&c, &u, url);
    if (rc)
        return rc;
    s3_call head = { .method = "HEAD", .url = &u };
    s3_reply r;
    if ((rc = perform(&r, &c, &head)) == 0) {
        buf_dispose(&r.body);
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
    int rc = open_target(&c, &u, url);
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
            rc = perform(&r, &c, &get);
            if (rc == 0 && r.status != 200)
                rc = failed_status(&get, &r, "download");
            buf_dispose(&r.body);
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

/* One page of a listing (ListObjectsV2), as it is read. */
typedef struct list_page {
    s3_object **objects;
    size_t *count;
    size_t first;      /* the page's first object in *objects */
    s3_object entry;   /* the <Contents> being read */
    char *root, *token, *bad_size;
    int truncated, url_encoded;
} list_page;

static void on_list_element(void *ud, const char *const *path, int depth, const char *text)
{
    list_page *p = ud;
    if (depth == 1) {
        replace_text(&p->root, path[0]);
    } else if (path_is(path, depth, "ListBucketResult/Contents/Key")) {
        replace_text(&p->entry.key, text);
    } else if (path_is(path, depth, "ListBucketResult/Contents/LastModified")) {
        replace_text(&p->entry.last_modified, text);
    } else if (path_is(path, depth, "ListBucketResult/Contents/Size")) {
        char *end;
        errno = 0;
        p->entry.size = strtoll(text, &end, 10);
        if ((end == text || *end || errno || p->entry.size < 0) && !p->bad_size)
            p->bad_size = xstrdup(text);
    } else if (path_is(path, depth, "ListBucketResult/Contents")) {
        if (!p->entry.key)
            p->entry.key = xstrdup(""); /* refused after the page is read */
        if (!p->entry.last_modified)
            p->entry.last_modified = xstrdup("");
        *p->objects = xrealloc(*p->objects, (*p->count + 1) * sizeof **p->objects);
        (*p->objects)[(*p->count)++] = p->entry;
        memset(&p->entry, 0, sizeof p->entry);
    } else if (path_is(path, depth, "ListBucketResult/IsTruncated")) {
        p->truncated = !strcmp(text, "true");
    } else if (path_is(path, depth, "ListBucketResult/NextContinuationToken")) {
        replace_text(&p->token, text);
    } else if (path_is(path, depth, "ListBucketResult/EncodingType")) {
        p->url_encoded = !strcmp(text, "url");
    }
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A key as a listing with encoding-type=url gives it ('+' a space, %XX a
 * byte), decoded in place; -1 when it is not in that form or holds a NUL. */
static int url_decode_key(char *key)
{
    char *out = key;
    for (const char *p = key; *p; p++) {
        if (*p == '+') {
            *out++ = ' ';
        } else if (*p == '%') {
            int hi = hex_digit(p[1]), lo = hi < 0 ? -1 : hex_digit(p[2]);
            if (lo < 0 || (hi == 0 && lo == 0))
                return -1;
            *out++ = (char)(hi * 16 + lo);
            p += 2;
        } else {
            *out++ = *p;
        }
    }
    *out = '\0';
    return 0;
}

static void list_page_free(list_page *p)
{
    free(p->entry.key);
    free(p->entry.last_modified);
    free(p->root);
    free(p->token);
    free(p->bad_size);
}

/* Reads one page's answer into *objects; the page's token is left in
 * p->token when the listing goes on. */
static int read_list_page(const s3_call *call, s3_reply *r, list_page *p)
{
    char why[256];
    int rc = 0;
    if (xml_read(&r->body, on_list_element, p, why, sizeof why) != 0)
        return unexpected_answer(call, r, "listing", p->root, why);
    if (!p->root || strcmp(p->root, "ListBucketResult") != 0)
        return unexpected_answer(call, r, "listing", p->root, NULL);
    buf_dispose(&r->body);
    if (p->bad_size) {
        char *shown = printable(p->bad_size, 64);
        rc = err_set(DR_EFAIL, "S3 listing of s3://%s/%s: an object's Size '%s' is not a number of bytes",
                     call->url->bucket, call->url->key, shown);
        free(shown);
        return rc;
    }
    for (size_t i = p->first; i < *p->count && rc == 0; i++) {
        s3_object *o = &(*p->objects)[i];
        if (p->url_encoded && url_decode_key(o->key) != 0) {
            char *shown = printable(o->key, 200);
            rc = err_set(DR_EFAIL, "S3 listing of s3://%s/%s: the key '%s' is not URL-encoded as the answer says",
                         call->url->bucket, call->url->key, shown);
            free(shown);
        } else if (!*o->key) {
            rc = err_set(DR_EFAIL, "S3 listing of s3://%s/%s: an object with no Key in the answer", call->url->bucket,
                         call->url->key);
        }
    }
    return rc;
}

/* The next page's token, or NULL at the end; an error when the service
 * would make the listing go on for ever: a truncated page with no token,
 * or a token given before (it would hand out the same pages again). */
static int next_token(const s3_url *u, const list_page *p, size_t page, char ***seen, size_t *tokens, char **token)
{
    *token = NULL;
    if (!p->truncated)
        return 0;
    if (!p->token || !*p->token)
        return err_set(DR_EFAIL, "S3 listing of s3://%s/%s: page %zu says it is truncated but gives no "
                                 "NextContinuationToken, so the rest cannot be asked for; the listing is incomplete",
                       u->bucket, u->key, page);
    for (size_t i = 0; i < *tokens; i++) {
        if (!strcmp((*seen)[i], p->token)) {
            char *shown = printable(p->token, 80);
            int rc = err_set(DR_EFAIL, "S3 listing of s3://%s/%s: page %zu gives the continuation token '%s' again "
                                       "(first given by page %zu); the service is going round in circles, stopped",
                             u->bucket, u->key, page, shown, i + 1);
            free(shown);
            return rc;
        }
    }
    if (page >= LIST_MAX_PAGES)
        return err_set(DR_EFAIL, "S3 listing of s3://%s/%s: more than %d pages; list a narrower prefix", u->bucket,
                       u->key, LIST_MAX_PAGES);
    *seen = xrealloc(*seen, (*tokens + 1) * sizeof **seen);
    *token = (*seen)[(*tokens)++] = xstrdup(p->token);
    return 0;
}

int s3_list(s3_object **objects, size_t *count, const char *url)
{
    *objects = NULL;
    *count = 0;
    s3_config c;
    s3_url u;
    int rc = open_target(&c, &u, url);
    if (rc)
        return rc;
    char **seen = NULL, *token = NULL;
    size_t pages = 0, tokens = 0;
    do {
        pages++;
        /* In SigV4's canonical order (see put_multipart). encoding-type=url
         * lets keys hold bytes XML cannot carry. */
        buf query = BUF_INIT;
        if (token) {
            buf_puts(&query, "continuation-token=");
            s3_escape(&query, token, 0);
            buf_putc(&query, '&');
        }
        buf_puts(&query, "encoding-type=url&list-type=2&prefix=");
        s3_escape(&query, u.key, 0);
        s3_call list = { .method = "GET", .url = &u, .bucket_only = 1, .query = buf_cstr(&query) };
        s3_reply r;
        rc = perform(&r, &c, &list);
        if (rc == 0 && r.status != 200)
            rc = failed_status(&list, &r, "listing");
        list_page page = { .objects = objects, .count = count, .first = *count };
        if (rc == 0)
            rc = read_list_page(&list, &r, &page);
        if (rc == 0 && *count > LIST_MAX_OBJECTS)
            rc = err_set(DR_EFAIL, "S3 listing of s3://%s/%s: more than %d objects; list a narrower prefix", u.bucket,
                         u.key, LIST_MAX_OBJECTS);
        if (rc == 0)
            rc = next_token(&u, &page, pages, &seen, &tokens, &token);
        buf_dispose(&r.body);
        buf_dispose(&query);
        list_page_free(&page);
    } while (rc == 0 && token);
    for (size_t i = 0; i < tokens; i++)
        free(seen[i]);
    free(seen);
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
    int rc = open_target(&c, &u, url);
    if (rc)
        return rc;
    s3_call del = { .method = "DELETE", .url = &u };
    s3_reply r;
    rc = perform(&r, &c, &del);
    if (rc == 0 && r.status != 204 && r.status != 200)
        rc = failed_status(&del, &r, "deletion");
    buf_dispose(&r.body);
    close_target(&c, &u);
    return rc;
}
