/* nl_server: neon-local's HTTP layer (libmicrohttpd), as the Neon API
 * behaves: JSON in and out, Bearer authentication, errors in Neon's shape
 * {"code": ..., "message": ..., "request_id": ...}, and only ever on a
 * loopback address. */
#ifndef DRCTL_NL_SERVER_H
#define DRCTL_NL_SERVER_H

#include <cjson/cJSON.h>
#include <stdint.h>

typedef struct nl_request {
    const char *method;
    const char *path;          /* below /api/v2, e.g. "/projects" */
    const cJSON *query;        /* query arguments: {"name": "value", ...} */
    cJSON *body;               /* parsed JSON body, or NULL */
    const char *request_id;
} nl_request;

typedef struct nl_response {
    unsigned status;
    cJSON *body;               /* owned by the response */
    unsigned retry_after;      /* seconds; 0: no Retry-After header */
} nl_response;

/* Answers a request; the server frees the response's body. */
typedef nl_response (*nl_handler)(void *ud, const nl_request *req);

/* A Neon-shaped error response. */
nl_response nl_error(unsigned status, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
nl_response nl_json(unsigned status, cJSON *body);

/* Replaces every FROM in an error answer's message by TO: a check shared
 * with another request names that request's own fields. */
void nl_error_rename(nl_response *r, const char *from, const char *to);

typedef struct nl_server nl_server;

/* Parses "127.0.0.1:PORT" (any IPv4 loopback address 127.x.y.z, or
 * "localhost:PORT", read as 127.0.0.1). IPv6, "[::1]" included, is not
 * accepted, and anything but a loopback address is refused with DR_EUSAGE. */
int nl_parse_listen(const char *text, char *host, unsigned short *port);

/* Faults on demand, for testing clients: "rate=0.3,kinds=429+503+reset+slow,
 * seed=7" (kinds: 429 500 503 reset slow garbage; without kinds, all but 500
 * and garbage). A seeded, reproducible share of authenticated requests
 * fails: 429 (with Retry-After), 500 and 503 before the request is handled;
 * reset drops the connection, before the request is handled or after it (its
 * answer lost); slow answers late; garbage answers 200 with malformed JSON
 * and does not handle the request. State is never half changed. */
int nl_server_set_faults(nl_server *s, const char *spec);

/* Starts serving /api/v2 on host:port (port 0 picks a free one). A
 * connection that sends nothing for idle_timeout seconds is closed (while a
 * request is being handled, the client is not idle). */
int nl_server_start(nl_server **out, const char *host, unsigned short port, const char *api_key,
                    unsigned idle_timeout, nl_handler handler, void *ud);

/* The default idle_timeout, and the most --idle-timeout takes. */
#define NL_IDLE_TIMEOUT_DEFAULT 60
#define NL_IDLE_TIMEOUT_MAX 86400
unsigned short nl_server_port(const nl_server *s);
void nl_server_stop(nl_server *s);

#endif
