#include "proxy.h"

#include "buf.h"
#include "err.h"
#include "jsonfield.h"
#include "state.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLAIM_TRIES 64
#define TICK_MS 250 /* how soon a deleted endpoint's address is let go */
#define CHUNK (64 * 1024)

typedef struct listener {
    char address[NL_ADDRESS_MAX];
    int fd;
    unsigned seen;            /* the reconcile pass that last found its endpoint */
    struct listener *next;
} listener;

/* One client's connection to a branch server: two threads, one each way;
 * the last one out closes both sockets. */
typedef struct connection {
    int client, server;
    int running;              /* threads not finished yet */
    struct connection *next;
} connection;

static struct {
    pthread_mutex_t lock;     /* taken after api->lock, never before */
    pthread_cond_t ended;     /* a connection ended */
    listener *listeners;
    connection *connections;
    nl_api *api;
    int running, stopping;
    unsigned pass;
    pthread_t thread;
    int thread_started;
    int wake[2];              /* written to by nl_proxy_stop */
} proxy = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, NULL, 0, 0, 0, 0, 0, { -1, -1 } };

/* ---- addresses -------------------------------------------------------------------- */

/* An address neon-local may give an endpoint: 127.a.b.c with a from 1 to
 * 254, so never in 127.0.0.0/16 (127.0.0.1 and Debian's 127.0.1.1 for the
 * host name), nor a .0 or .255. */
static int own_address(const char *text)
{
    struct in_addr addr;
    if (!text || inet_pton(AF_INET, text, &addr) != 1)
        return 0;
    uint32_t a = ntohl(addr.s_addr);
    unsigned first = a >> 24, second = (a >> 16) & 255, last = a & 255;
    return first == 127 && second >= 1 && second <= 254 && last >= 1 && last <= 254;
}

static int random_address(char out[NL_ADDRESS_MAX])
{
    unsigned char r[3];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        return err_set(DR_EFAIL, "cannot read random bytes to pick an address: %s", strerror(errno));
    snprintf(out, NL_ADDRESS_MAX, "127.%u.%u.%u", 1u + r[0] % 254u, (unsigned)r[1], 1u + r[2] % 254u);
    return 0;
}

/* A socket listening on address:5432, or -1 (errno tells): bind fails when
 * any other socket listens there, or on 0.0.0.0:5432. */
static int listen_on(const char *address)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(NL_PROXY_PORT);
    if (inet_pton(AF_INET, address, &sa.sin_addr) != 1) {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* Only for our own connections of a previous run, still in TIME_WAIT:
     * Linux never lets this bind over a socket that listens. */
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static listener *held(const char *address)
{
    for (listener *l = proxy.listeners; l; l = l->next)
        if (strcmp(l->address, address) == 0)
            return l;
    return NULL;
}

/* Holds address (proxy.lock held); NULL when another socket has it. */
static listener *hold(const char *address)
{
    int fd = listen_on(address);
    if (fd < 0)
        return NULL;
    listener *l = xcalloc(1, sizeof *l);
    snprintf(l->address, sizeof l->address, "%s", address);
    l->fd = fd;
    l->seen = proxy.pass;
    l->next = proxy.listeners;
    proxy.listeners = l;
    return l;
}

static int claim_locked(char address[NL_ADDRESS_MAX])
{
    int last_errno = 0;
    for (int i = 0; i < CLAIM_TRIES; i++) {
        char candidate[NL_ADDRESS_MAX];
        int rc = random_address(candidate);
        if (rc)
            return rc;
        if (held(candidate))
            continue;
        if (proxy.running) {
            if (!hold(candidate)) {
                last_errno = errno;
                continue;
            }
        } else {
            int fd = listen_on(candidate);
            if (fd < 0) {
                last_errno = errno;
                continue;
            }
            close(fd);
        }
        memcpy(address, candidate, NL_ADDRESS_MAX);
        return 0;
    }
    return err_set(DR_EFAIL, "none of %d loopback addresses tried could listen on port %d (last: %s); a server "
                   "listening on 0.0.0.0:%d takes them all: make it listen on 127.0.0.1 only", CLAIM_TRIES,
                   NL_PROXY_PORT, strerror(last_errno), NL_PROXY_PORT);
}

int nl_proxy_claim(char address[NL_ADDRESS_MAX])
{
    pthread_mutex_lock(&proxy.lock);
    int rc = claim_locked(address);
    pthread_mutex_unlock(&proxy.lock);
    return rc;
}

/* ---- the state's endpoints and the addresses held --------------------------------------- */

static void give_address(cJSON *endpoint, const char *address)
{
    nl_state_set_text(endpoint, "host", address);
    nl_state_set_text(endpoint, "proxy_host", address);
}

/* Holds the address of one endpoint of the state, or gives it a new one
 * (an older data folder's 127.0.0.1, or an address another program took
 * while neon-local was stopped). Returns 1 when the endpoint changed. */
static int keep_address(cJSON *endpoint)
{
    const char *host = json_text(endpoint, "host", NULL);
    const char *id = json_text(endpoint, "id", "?");
    listener *l = host ? held(host) : NULL;
    if (!l && own_address(host))
        l = hold(host);
    if (l) {
        l->seen = proxy.pass;
        return 0;
    }
    char address[NL_ADDRESS_MAX];
    if (claim_locked(address) != 0) {
        if (host && strcmp(host, NL_PROXY_NO_ADDRESS) == 0)
            return 0;
        fprintf(stderr, "neon-local: endpoint %s has no address of its own: %s\n", id, err_last());
        give_address(endpoint, NL_PROXY_NO_ADDRESS);
        return 1;
    }
    held(address)->seen = proxy.pass;
    if (own_address(host))
        fprintf(stderr, "neon-local: endpoint %s: %s:%d is taken by another program, its address is now %s "
                "(its connection strings change)\n", id, host, NL_PROXY_PORT, address);
    else
        fprintf(stderr, "neon-local: endpoint %s: its address is now %s (was %s)\n", id, address, host ? host : "none");
    give_address(endpoint, address);
    return 1;
}

static void release_unseen(void)
{
    for (listener **p = &proxy.listeners; *p;) {
        listener *l = *p;
        if (l->seen == proxy.pass) {
            p = &l->next;
            continue;
        }
        close(l->fd);
        *p = l->next;
        free(l);
    }
}

/* The addresses held made the state's endpoints' ones (api->lock held):
 * each endpoint's held, those of endpoints gone let go. The state is saved
 * when an endpoint got a new address. */
static void reconcile(nl_api *api)
{
    int changed = 0;
    pthread_mutex_lock(&proxy.lock);
    proxy.pass++;
    cJSON *project;
    cJSON_ArrayForEach(project, nl_state_projects(api->state)) {
        cJSON *endpoint;
        cJSON_ArrayForEach(endpoint, nl_state_list(project, NL_ENDPOINTS))
            changed |= keep_address(endpoint);
    }
    release_unseen();
    pthread_mutex_unlock(&proxy.lock);
    if (changed && nl_api_save(api) != 0)
        fprintf(stderr, "neon-local: cannot save the endpoints' new addresses: %s\n", err_last());
}

/* The port of the server behind address (api->lock held): its endpoint's,
 * when the endpoint is active on a branch of a project the API shows; 0
 * otherwise (the connection is then closed, never passed elsewhere). */
static int server_port_of(nl_api *api, const char *address)
{
    cJSON *project;
    cJSON_ArrayForEach(project, nl_state_projects(api->state)) {
        cJSON *endpoint;
        cJSON_ArrayForEach(endpoint, nl_state_list(project, NL_ENDPOINTS)) {
            const char *host = json_text(endpoint, "host", NULL);
            if (!host || strcmp(host, address) != 0)
                continue;
            const char *project_id = json_text(project, "id", NULL);
            cJSON *branch = nl_state_item_in(project, NL_BRANCHES, json_text(endpoint, "branch_id", NULL));
            if (!project_id || !nl_state_live_project(api->state, project_id) || !branch ||
                !nl_state_is(endpoint, NL_ENDPOINT_ACTIVE))
                return 0;
            return nl_endpoint_port(endpoint);
        }
    }
    return 0;
}

/* ---- passing connections ------------------------------------------------------------ */

static int connect_local(int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The last of a connection's threads closes it and lets nl_proxy_stop know. */
static void connection_done(connection *c)
{
    pthread_mutex_lock(&proxy.lock);
    if (--c->running > 0) {
        pthread_mutex_unlock(&proxy.lock);
        return;
    }
    for (connection **p = &proxy.connections; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    close(c->client);
    close(c->server);
    free(c);
    pthread_cond_broadcast(&proxy.ended);
    pthread_mutex_unlock(&proxy.lock);
}

typedef struct direction {
    connection *c;
    int from, to;
} direction;

/* Copies one way until the end; an end of input is passed on (half-close),
 * an error ends both ways. */
static void *copy_one_way(void *arg)
{
    direction d = *(direction *)arg;
    free(arg);
    char *chunk = xmalloc(CHUNK);
    for (;;) {
        ssize_t n = recv(d.from, chunk, CHUNK, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            shutdown(d.to, SHUT_WR);
            break;
        }
        if (n < 0 || write_all(d.to, chunk, (size_t)n) != 0) {
            shutdown(d.from, SHUT_RDWR);
            shutdown(d.to, SHUT_RDWR);
            break;
        }
    }
    free(chunk);
    connection_done(d.c);
    return NULL;
}

static int start_direction(connection *c, int from, int to)
{
    direction *d = xmalloc(sizeof *d);
    d->c = c;
    d->from = from;
    d->to = to;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int rc = pthread_create(&thread, &attr, copy_one_way, d);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        free(d);
    return rc;
}

/* A client accepted on address: passed to its endpoint's server, or closed. */
static void pass_client(int client, const char *address)
{
    pthread_mutex_lock(&proxy.api->lock);
    int port = server_port_of(proxy.api, address);
    pthread_mutex_unlock(&proxy.api->lock);
    int server = port > 0 ? connect_local(port) : -1;
    if (server < 0) {
        close(client);
        return;
    }
    connection *c = xcalloc(1, sizeof *c);
    c->client = client;
    c->server = server;
    pthread_mutex_lock(&proxy.lock);
    c->running = 2;
    c->next = proxy.connections;
    proxy.connections = c;
    pthread_mutex_unlock(&proxy.lock);
    /* A thread that cannot start counts as finished, and stops the other. */
    if (start_direction(c, client, server) != 0) {
        shutdown(client, SHUT_RDWR);
        shutdown(server, SHUT_RDWR);
        connection_done(c);
    }
    if (start_direction(c, server, client) != 0) {
        shutdown(client, SHUT_RDWR);
        shutdown(server, SHUT_RDWR);
        connection_done(c);
    }
}

/* Waits for clients on every address held; between waits, the addresses
 * follow the state. */
static void *proxy_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&proxy.lock);
        size_t n = 1;
        for (listener *l = proxy.listeners; l; l = l->next)
            n++;
        struct pollfd *fds = xcalloc(n, sizeof *fds);
        char (*addresses)[NL_ADDRESS_MAX] = xcalloc(n, sizeof *addresses);
        fds[0].fd = proxy.wake[0];
        fds[0].events = POLLIN;
        size_t k = 1;
        for (listener *l = proxy.listeners; l; l = l->next, k++) {
            fds[k].fd = l->fd;
            fds[k].events = POLLIN;
            memcpy(addresses[k], l->address, NL_ADDRESS_MAX);
        }
        int stopping = proxy.stopping;
        pthread_mutex_unlock(&proxy.lock);
        if (!stopping && poll(fds, n, TICK_MS) > 0) {
            for (size_t i = 1; i < n; i++) {
                if (!(fds[i].revents & POLLIN))
                    continue;
                int client = accept4(fds[i].fd, NULL, NULL, SOCK_CLOEXEC);
                if (client >= 0)
                    pass_client(client, addresses[i]);
            }
        }
        free(fds);
        free(addresses);
        if (stopping)
            break;
        pthread_mutex_lock(&proxy.api->lock);
        reconcile(proxy.api);
        pthread_mutex_unlock(&proxy.api->lock);
    }
    return NULL;
}

int nl_proxy_start(nl_api *api)
{
    if (pipe2(proxy.wake, O_CLOEXEC) != 0)
        return err_set(DR_EFAIL, "cannot start the endpoints' proxy: %s", strerror(errno));
    pthread_mutex_lock(&api->lock);
    pthread_mutex_lock(&proxy.lock);
    proxy.api = api;
    proxy.running = 1;
    proxy.stopping = 0;
    pthread_mutex_unlock(&proxy.lock);
    reconcile(api);
    pthread_mutex_unlock(&api->lock);
    proxy.thread_started = pthread_create(&proxy.thread, NULL, proxy_main, NULL) == 0;
    if (!proxy.thread_started) {
        nl_proxy_stop();
        return err_set(DR_EFAIL, "cannot start the endpoints' proxy thread");
    }
    return 0;
}

void nl_proxy_stop(void)
{
    pthread_mutex_lock(&proxy.lock);
    proxy.stopping = 1;
    pthread_mutex_unlock(&proxy.lock);
    if (proxy.wake[1] >= 0 && write(proxy.wake[1], "x", 1) < 0)
        fprintf(stderr, "neon-local: cannot wake the endpoints' proxy: %s\n", strerror(errno));
    if (proxy.thread_started)
        pthread_join(proxy.thread, NULL);
    proxy.thread_started = 0;
    pthread_mutex_lock(&proxy.lock);
    for (connection *c = proxy.connections; c; c = c->next) {
        shutdown(c->client, SHUT_RDWR);
        shutdown(c->server, SHUT_RDWR);
    }
    while (proxy.connections)
        pthread_cond_wait(&proxy.ended, &proxy.lock);
    while (proxy.listeners) {
        listener *l = proxy.listeners;
        proxy.listeners = l->next;
        close(l->fd);
        free(l);
    }
    proxy.running = 0;
    proxy.api = NULL;
    pthread_mutex_unlock(&proxy.lock);
    for (int i = 0; i < 2; i++) {
        if (proxy.wake[i] >= 0)
            close(proxy.wake[i]);
        proxy.wake[i] = -1;
    }
}
