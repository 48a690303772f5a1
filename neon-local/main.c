/* neon-local: a Neon-compatible control plane on this machine (the
 * neon-local contract in docs/design.md: the Neon API's behaviour, each
 * branch a real PostgreSQL server). Runs in the foreground, prints one ready line, serves
 * the Neon API v2 on a loopback address until SIGTERM or SIGINT. */
#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "api.h"
#include "postgres.h"
#include "proxy.h"
#include "server.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: neon-local --data DIR [--listen 127.0.0.1:PORT] [--api-key KEY]\n"
    "\n"
    "A local, Neon-compatible control plane: serves the Neon API v2 on a loopback address,\n"
    "for rehearsing recoveries offline and for drctl's tests.\n"
    "\n"
    "  --data DIR        where all of its state lives; started again on DIR, it brings it back\n"
    "  --listen ADDR     127.0.0.1:PORT (default 127.0.0.1:4444; port 0 picks a free one)\n"
    "  --api-key KEY     the key clients must send as 'Authorization: Bearer KEY'; default\n"
    "                    $NEON_LOCAL_API_KEY, else DIR/api-key (generated, mode 0600); a key on\n"
    "                    the command line is visible to every local user in ps: prefer the others\n"
    "  --faults SPEC     fail a seeded share of requests, to test clients; also $NEON_LOCAL_FAULTS.\n"
    "                    e.g. rate=0.3,kinds=429+500+503+reset+slow,seed=7 (also 'garbage':\n"
    "                    a 200 with malformed JSON, the request not handled; never by default)\n"
    "  --clock-speed N   run backup schedules, snapshot and branch expiry N times faster (rehearsals)\n"
    "  --idle-timeout S  close an HTTP connection that sends nothing for S seconds (1 to 86400;\n"
    "                    default 60)\n"
    "\n"
    "The branches' PostgreSQL servers take no login without its password, the superuser's\n"
    "(postgres) included: that one is generated into DIR/superuser-password (mode 0600) and\n"
    "never shown by the API. A data folder written by an older neon-local, whose servers\n"
    "trusted postgres on 127.0.0.1, is brought to this rule when neon-local starts on it.\n"
    "\n"
    "Every endpoint gets a loopback address of its own (127.a.b.c, never 127.0.x.x), its host,\n"
    "where neon-local listens on port 5432 and passes connections to the branch's server: the\n"
    "connection strings neonctl builds from the host alone (sslmode=require) reach it. Each\n"
    "address is one nothing else listened on; it is kept across restarts, or replaced when\n"
    "another program took it meanwhile. The servers speak TLS with a certificate made into\n"
    "DIR/tls (server.key mode 0600, server.crt: sslmode=verify-ca sslrootcert=DIR/tls/server.crt\n"
    "proves a connection reaches this neon-local).\n"
    "\n"
    "When ready it prints 'neon-local: http://127.0.0.1:PORT/api/v2'. SIGTERM or SIGINT stop it.\n";

/* --idle-timeout's value: whole seconds, 1 to NL_IDLE_TIMEOUT_MAX (0 would
 * mean no timeout at all to libmicrohttpd). */
static int parse_idle_timeout(const char *text, unsigned *out)
{
    char *end;
    errno = 0;
    long seconds = strtol(text, &end, 10);
    if (errno || end == text || *end || seconds < 1 || seconds > NL_IDLE_TIMEOUT_MAX) {
        fprintf(stderr, "neon-local: --idle-timeout '%s' must be a whole number of seconds from 1 to %d\n", text,
                NL_IDLE_TIMEOUT_MAX);
        return -1;
    }
    *out = (unsigned)seconds;
    return 0;
}

/* DIR/api-key, generated on first use and readable by its owner only. */
static int stored_api_key(const char *dir, char **key)
{
    char *path = xasprintf("%s/api-key", dir);
    char *text = NULL;
    int rc = 0;
    if (fsio_exists(path)) {
        rc = fsio_read_file(&text, NULL, path);
        if (rc == 0) {
            text[strcspn(text, "\r\n")] = '\0';
            *key = text;
        }
    } else {
        unsigned char raw[24];
        FILE *f = fopen("/dev/urandom", "rb");
        if (!f || fread(raw, 1, sizeof raw, f) != sizeof raw)
            rc = err_set(DR_EFAIL, "cannot read /dev/urandom to make an API key");
        if (f)
            fclose(f);
        if (rc == 0) {
            buf b = BUF_INIT;
            buf_puts(&b, "nlk_");
            for (size_t i = 0; i < sizeof raw; i++)
                buf_printf(&b, "%02x", raw[i]);
            buf_putc(&b, '\n');
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0 || write(fd, b.data, b.len) != (ssize_t)b.len || fsync(fd) != 0)
                rc = err_set(DR_EFAIL, "cannot write %s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            b.data[b.len - 1] = '\0';
            *key = buf_detach(&b);
        }
    }
    free(path);
    return rc;
}

/* The certificate every branch server presents, made into DIR/tls once. */
static int use_tls(const char *data)
{
    char *cert = NULL, *key = NULL;
    int rc = nl_tls_prepare(data, &cert, &key);
    if (rc == 0)
        nl_pg_use_tls(cert, key);
    free(cert);
    free(key);
    return rc;
}

int main(int argc, char **argv)
{
    const char *data = NULL, *listen = "127.0.0.1:4444", *given_key = NULL, *faults = getenv("NEON_LOCAL_FAULTS");
    double clock_speed = 1;
    unsigned idle_timeout = NL_IDLE_TIMEOUT_DEFAULT;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            data = argv[++i];
        } else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else if (strcmp(argv[i], "--api-key") == 0 && i + 1 < argc) {
            given_key = argv[++i];
        } else if (strcmp(argv[i], "--faults") == 0 && i + 1 < argc) {
            faults = argv[++i];
        } else if (strcmp(argv[i], "--clock-speed") == 0 && i + 1 < argc) {
            clock_speed = atof(argv[++i]);
            if (clock_speed <= 0) {
                fprintf(stderr, "neon-local: --clock-speed must be a positive number\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--idle-timeout") == 0 && i + 1 < argc) {
            if (parse_idle_timeout(argv[++i], &idle_timeout) != 0)
                return 2;
        } else {
            fprintf(stderr, "neon-local: unknown or incomplete option '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!data) {
        fprintf(stderr, "neon-local: --data DIR is required\n%s", usage);
        return 2;
    }
    char host[64];
    unsigned short port;
    /* 0711: the PostgreSQL user must reach DIR/pg, nobody may list DIR. */
    if (nl_parse_listen(listen, host, &port) != 0 || fsio_mkdirs(data, 0711) != 0) {
        fprintf(stderr, "neon-local: %s\n", err_last());
        return 2;
    }
    if (!given_key)
        given_key = getenv("NEON_LOCAL_API_KEY");
    char *key = NULL;
    if (given_key && *given_key)
        key = xstrdup(given_key);
    else if (stored_api_key(data, &key) != 0) {
        fprintf(stderr, "neon-local: %s\n", err_last());
        return 1;
    }
    /* The server's threads must not take the signals: main waits for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    nl_api *api = NULL;
    nl_server *server = NULL;
    /* TLS first: nl_api_open starts the servers that were running. */
    if (use_tls(data) != 0 || nl_api_open(&api, data) != 0 || nl_proxy_start(api) != 0 ||
        nl_server_start(&server, host, port, key, idle_timeout, nl_api_handle, api) != 0) {
        fprintf(stderr, "neon-local: %s\n", err_last());
        nl_proxy_stop();
        nl_api_free(api);
        nl_pg_use_tls(NULL, NULL);
        free(key);
        return 1;
    }
    if (faults && *faults && nl_server_set_faults(server, faults) != 0) {
        fprintf(stderr, "neon-local: %s\n", err_last());
        nl_server_stop(server);
        nl_proxy_stop();
        nl_api_free(api);
        nl_pg_use_tls(NULL, NULL);
        free(key);
        return 2;
    }
    nl_api_set_clock_speed(api, clock_speed);
    printf("neon-local: http://%s:%u/api/v2\n", host, nl_server_port(server));
    fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    nl_server_stop(server);
    nl_proxy_stop();
    nl_api_free(api);
    nl_pg_use_tls(NULL, NULL);
    free(key);
    fprintf(stderr, "neon-local: stopped (%s)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    return 0;
}
