#include "nl_server.h"

#include "buf.h"
#include "err.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY (4u << 20)
#define API_PREFIX "/api/v2"

struct nl_server {
    struct MHD_Daemon *daemon;
    char *api_key;
    nl_handler handler;
    void *ud;
    unsigned short port;
};

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
    char *text = r.body ? cJSON_PrintUnformatted(r.body) : xstrdup("{}");
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

static int authorized(nl_server *s, struct MHD_Connection *conn)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    return auth && strncmp(auth, "Bearer ", 7) == 0 && strcmp(auth + 7, s->api_key) == 0;
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
        const char *path = url + strlen(API_PREFIX);
        cJSON *query = cJSON_CreateObject();
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, query);
        nl_request req = { method, *path ? path : "/", query, body, request_id };
        r = s->handler(s->ud, &req);
        cJSON_Delete(query);
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
        buf_free(&p->body);
        free(p);
    }
    *state = NULL;
}

int nl_server_start(nl_server **out, const char *host, unsigned short port, const char *api_key,
                    nl_handler handler, void *ud)
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
    s->handler = handler;
    s->ud = ud;
    s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, port, NULL, NULL,
                                 on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    if (!s->daemon) {
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
    free(s->api_key);
    free(s);
}
