#include "server.h"

#include "buf.h"
#include "err.h"
#include "jsontext.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY (4u << 20)
#define API_PREFIX "/api/v2"

/* GARBAGE (a 200 whose JSON is cut short, the request not handled) is
 * only ever given explicitly: it tests that clients refuse what they
 * cannot read. */
enum { FAULT_429 = 1, FAULT_500 = 2, FAULT_503 = 4, FAULT_RESET = 8, FAULT_SLOW = 16, FAULT_GARBAGE = 32 };

struct nl_server {
    struct MHD_Daemon *daemon;
    char *api_key;
    nl_handler handler;
    void *ud;
    unsigned short port;
    /* The faults, set while the server already serves (main starts it
     * first): read and written with fault_lock held, all three together. */
    pthread_mutex_t fault_lock;
    double fault_rate;
    unsigned fault_kinds;
    unsigned long long fault_state;   /* xorshift64, seeded: the same faults on every run */
};

/* The next draw from 0 to 1 (fault_lock held). */
static double fault_draw_locked(nl_server *s)
{
    unsigned long long x = s->fault_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->fault_state = x;
    return (double)(x >> 11) / 9007199254740992.0;
}

static double fault_draw(nl_server *s)
{
    pthread_mutex_lock(&s->fault_lock);
    double draw = fault_draw_locked(s);
    pthread_mutex_unlock(&s->fault_lock);
    return draw;
}

/* What a spec asks, parsed whole before any of it is used: a request
 * meanwhile sees the old faults or the new ones, never a rate without
 * its kinds (nothing to pick from), and a refused spec changes nothing. */
typedef struct fault_spec {
    double rate;
    unsigned kinds;
    unsigned long long seed;
} fault_spec;

static int parse_faults(fault_spec *out, const char *spec)
{
    char *copy = xstrdup(spec);
    int rc = 0;
    fault_spec f = { 0, 0, 1 };
    for (char *save = NULL, *part = strtok_r(copy, ",", &save); part && rc == 0; part = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(part, '=');
        if (!eq) {
            rc = err_set(DR_EUSAGE, "--faults: '%s' must be key=value", part);
            break;
        }
        *eq = '\0';
        const char *value = eq + 1;
        if (strcmp(part, "rate") == 0) {
            char *end;
            f.rate = strtod(value, &end);
            if (*end || f.rate < 0 || f.rate > 1)
                rc = err_set(DR_EUSAGE, "--faults: rate must be a number from 0 to 1");
        } else if (strcmp(part, "seed") == 0) {
            f.seed = strtoull(value, NULL, 10);
        } else if (strcmp(part, "kinds") == 0) {
            char *kinds = xstrdup(value);
            for (char *s2 = NULL, *k = strtok_r(kinds, "+", &s2); k; k = strtok_r(NULL, "+", &s2)) {
                if (!strcmp(k, "429")) f.kinds |= FAULT_429;
                else if (!strcmp(k, "500")) f.kinds |= FAULT_500;
                else if (!strcmp(k, "503")) f.kinds |= FAULT_503;
                else if (!strcmp(k, "reset")) f.kinds |= FAULT_RESET;
                else if (!strcmp(k, "slow")) f.kinds |= FAULT_SLOW;
                else if (!strcmp(k, "garbage")) f.kinds |= FAULT_GARBAGE;
                else rc = err_set(DR_EUSAGE, "--faults: unknown kind '%s' (429, 500, 503, reset, slow, garbage)", k);
            }
            free(kinds);
        } else {
            rc = err_set(DR_EUSAGE, "--faults: unknown key '%s' (rate, kinds, seed)", part);
        }
    }
    free(copy);
    if (rc == 0 && f.rate > 0 && !f.kinds)
        f.kinds = FAULT_429 | FAULT_503 | FAULT_RESET | FAULT_SLOW;
    if (rc == 0)
        *out = f;
    return rc;
}

int nl_server_set_faults(nl_server *s, const char *spec)
{
    fault_spec f;
    int rc = parse_faults(&f, spec);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&s->fault_lock);
    s->fault_rate = f.rate;
    s->fault_kinds = f.kinds;
    s->fault_state = f.seed ? f.seed * 2654435761ULL + 1 : 88172645463325252ULL;
    pthread_mutex_unlock(&s->fault_lock);
    return 0;
}

/* Picks this request's fault (one kind bit), or 0. */
static unsigned pick_fault(nl_server *s)
{
    unsigned kinds[6], n = 0, fault = 0;
    pthread_mutex_lock(&s->fault_lock);
    if (s->fault_rate > 0 && fault_draw_locked(s) < s->fault_rate) {
        for (unsigned bit = 1; bit <= FAULT_GARBAGE; bit <<= 1)
            if (s->fault_kinds & bit)
                kinds[n++] = bit;
        if (n)
            fault = kinds[(unsigned)(fault_draw_locked(s) * n) % n];
    }
    pthread_mutex_unlock(&s->fault_lock);
    return fault;
}

/* What a connection accumulates while its body arrives. */
typedef struct pending {
    buf body;
    int too_large;
} pending;

nl_response nl_json(unsigned status, cJSON *body)
{
    return (nl_response){ status, body, 0 };
}

nl_response nl_error(unsigned status, const char *code, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "code", code);
    cJSON_AddStringToObject(body, "message", message);
    return nl_json(status, body);
}

void nl_error_rename(nl_response *r, const char *from, const char *to)
{
    cJSON *message = cJSON_GetObjectItemCaseSensitive(r->body, "message");
    if (!cJSON_IsString(message))
        return;
    buf out = BUF_INIT;
    size_t n = strlen(from);
    for (const char *p = message->valuestring; *p;) {
        if (strncmp(p, from, n) == 0) {
            buf_puts(&out, to);
            p += n;
        } else {
            buf_putc(&out, *p++);
        }
    }
    char *text = buf_detach(&out);
    cJSON_SetValuestring(message, text);
    free(text);
}

int nl_parse_listen(const char *text, char *host, unsigned short *port)
{
    const char *colon = strrchr(text, ':');
    if (!colon)
        return err_set(DR_EUSAGE, "--listen '%s' must be 127.0.0.1:PORT", text);
    size_t len = (size_t)(colon - text);
    char name[64];
    if (len == 0 || len >= sizeof name)
        return err_set(DR_EUSAGE, "--listen '%s' must be 127.0.0.1:PORT", text);
    memcpy(name, text, len);
    name[len] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535 || colon[1] == '\0')
        return err_set(DR_EUSAGE, "--listen '%s': the port must be a number from 0 to 65535", text);
    if (strcmp(name, "localhost") == 0)
        strcpy(name, "127.0.0.1");
    struct in_addr v4;
    if (inet_pton(AF_INET, name, &v4) != 1 || (ntohl(v4.s_addr) >> 24) != 127)
        return err_set(DR_EUSAGE, "--listen '%s': neon-local serves on a loopback address only "
                       "(127.0.0.1), never on a network", text);
    strcpy(host, name);
    *port = (unsigned short)p;
    return 0;
}

static enum MHD_Result send_response(struct MHD_Connection *conn, nl_response r, const char *request_id)
{
    if (r.status >= 400 && r.body && request_id)
        cJSON_AddStringToObject(r.body, "request_id", request_id);
    char *text = r.body ? json_print_exact(r.body, 0) : xstrdup("{}");
    cJSON_Delete(r.body);
    struct MHD_Response *response = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(response, "Content-Type", "application/json");
    if (request_id)
        MHD_add_response_header(response, "X-Request-ID", request_id);
    if (r.retry_after) {
        char seconds[16];
        snprintf(seconds, sizeof seconds, "%u", r.retry_after);
        MHD_add_response_header(response, "Retry-After", seconds);
    }
    enum MHD_Result rc = MHD_queue_response(conn, r.status, response);
    MHD_destroy_response(response);
    return rc;
}

/* Whether given is the secret, in a time that depends on the secret's
 * length only: strcmp stops at the first wrong byte, and how soon it
 * answers tells a client how much of its guess was right. */
static int same_secret(const char *given, const char *secret)
{
    size_t given_len = strlen(given), secret_len = strlen(secret);
    volatile unsigned char diff = given_len != secret_len;
    for (size_t i = 0; i < secret_len; i++)
        diff |= (unsigned char)(secret[i] ^ (i < given_len ? given[i] : 0));
    return diff == 0;
}

static int authorized(nl_server *s, struct MHD_Connection *conn)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    return auth && strncmp(auth, "Bearer ", 7) == 0 && same_secret(auth + 7, s->api_key);
}

static char *new_request_id(void)
{
    unsigned char raw[16];
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(raw, 1, sizeof raw, f) != sizeof raw)
        memset(raw, 0, sizeof raw);
    if (f)
        fclose(f);
    return xasprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", raw[0], raw[1],
                     raw[2], raw[3], raw[4], raw[5], raw[6], raw[7], raw[8], raw[9], raw[10], raw[11], raw[12],
                     raw[13], raw[14], raw[15]);
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    cJSON_AddStringToObject(cls, key, value ? value : "");
    return MHD_YES;
}

static enum MHD_Result dispatch(nl_server *s, struct MHD_Connection *conn, const char *url, const char *method,
                                pending *p)
{
    const char *given_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-ID");
    char *request_id = given_id ? xstrdup(given_id) : new_request_id();
    nl_response r;
    cJSON *body = NULL;
    if (strncmp(url, API_PREFIX, strlen(API_PREFIX)) != 0) {
        r = nl_error(404, "", "not found: neon-local serves the Neon API under %s", API_PREFIX);
    } else if (!authorized(s, conn)) {
        r = nl_error(401, "", "authentication required: send Authorization: Bearer <the neon-local API key>");
    } else if (p->too_large) {
        r = nl_error(413, "", "the request body is larger than %u bytes", MAX_BODY);
    } else if (p->body.len && !(body = cJSON_ParseWithLength(p->body.data, p->body.len))) {
        r = nl_error(400, "", "the request body is not valid JSON");
    } else {
        unsigned fault = pick_fault(s);
        int reset_after = fault == FAULT_RESET && fault_draw(s) < 0.5;
        if (fault == FAULT_RESET && !reset_after) {
            fprintf(stderr, "neon-local: %s %s -> fault: connection dropped before handling\n", method, url);
            cJSON_Delete(body);
            free(request_id);
            return MHD_NO;
        }
        if (fault == FAULT_GARBAGE) {
            fprintf(stderr, "neon-local: %s %s -> fault: 200 with malformed JSON, not handled\n", method, url);
            cJSON_Delete(body);
            static const char cut[] = "{\"branch\": {\"id\": ";
            struct MHD_Response *response = MHD_create_response_from_buffer(sizeof cut - 1, (void *)cut,
                                                                            MHD_RESPMEM_PERSISTENT);
            MHD_add_response_header(response, "Content-Type", "application/json");
            enum MHD_Result sent = MHD_queue_response(conn, 200, response);
            MHD_destroy_response(response);
            free(request_id);
            return sent;
        }
        if (fault == FAULT_429 || fault == FAULT_500 || fault == FAULT_503) {
            unsigned status = fault == FAULT_429 ? 429 : fault == FAULT_500 ? 500 : 503;
            r = nl_error(status, "", "fault injected by neon-local (--faults): try again");
            if (status == 429)
                r.retry_after = 1;
        } else {
            if (fault == FAULT_SLOW)
                usleep(1500000);
            const char *path = url + strlen(API_PREFIX);
            cJSON *query = cJSON_CreateObject();
            MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, query);
            nl_request req = { method, *path ? path : "/", query, body, request_id };
            r = s->handler(s->ud, &req);
            cJSON_Delete(query);
        }
        if (reset_after) { /* it happened; the client will not know */
            fprintf(stderr, "neon-local: %s %s -> %u, then fault: connection dropped\n", method, url, r.status);
            cJSON_Delete(r.body);
            cJSON_Delete(body);
            free(request_id);
            return MHD_NO;
        }
    }
    cJSON_Delete(body);
    fprintf(stderr, "neon-local: %s %s -> %u\n", method, url, r.status);
    enum MHD_Result rc = send_response(conn, r, request_id);
    free(request_id);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **state)
{
    (void)version;
    nl_server *s = cls;
    pending *p = *state;
    if (!p) {
        *state = xcalloc(1, sizeof *p);
        return MHD_YES;
    }
    if (*upload_size) {
        if (p->body.len + *upload_size > MAX_BODY)
            p->too_large = 1;
        else
            buf_append(&p->body, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    return dispatch(s, conn, url, method, p);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)conn;
    (void)code;
    pending *p = *state;
    if (p) {
        buf_dispose(&p->body);
        free(p);
    }
    *state = NULL;
}

int nl_server_start(nl_server **out, const char *host, unsigned short port, const char *api_key,
                    unsigned idle_timeout, nl_handler handler, void *ud)
{
    *out = NULL;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return err_set(DR_EUSAGE, "cannot listen on %s", host);
    nl_server *s = xcalloc(1, sizeof *s);
    s->api_key = xstrdup(api_key);
    pthread_mutex_init(&s->fault_lock, NULL);
    s->handler = handler;
    s->ud = ud;
    s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
                                 port, NULL, NULL,
                                 on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 /* A connection that sends nothing would hold a thread forever. */
                                 MHD_OPTION_CONNECTION_TIMEOUT, idle_timeout, MHD_OPTION_END);
    if (!s->daemon) {
        pthread_mutex_destroy(&s->fault_lock);
        free(s->api_key);
        free(s);
        return err_set(DR_EFAIL, "cannot listen on %s:%u (in use?)", host, port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : port;
    *out = s;
    return 0;
}

unsigned short nl_server_port(const nl_server *s)
{
    return s->port;
}

void nl_server_stop(nl_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    pthread_mutex_destroy(&s->fault_lock);
    free(s->api_key);
    free(s);
}
