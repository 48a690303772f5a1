/* webhook-receiver: a real HTTP server that receives drctl's notifications,
 * for the end-to-end tests.
 *
 *   webhook-receiver [--port N] [--log FILE] [--mode MODE]
 *
 * Listens on 127.0.0.1:N (0, the default: a free port) and prints the port
 * on its first line of stdout. Each request, once its body is in, is
 * appended to FILE as one JSON line {"method","path","content_type",
 * "user_agent","body"}, then answered by MODE (else $WEBHOOK_MODE):
 *   200 (the default), 500, 410, any other status: that status;
 *   sleep:N   N seconds of silence, then 200.
 * Runs until SIGINT or SIGTERM. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *log_path;
static int answer_status = 200;
static unsigned sleep_seconds;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct request {
    char *body;
    size_t len;
} request;

static void log_request(struct MHD_Connection *conn, const char *method, const char *url, const request *req)
{
    if (!log_path)
        return;
    cJSON *line = cJSON_CreateObject();
    const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    const char *agent = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "User-Agent");
    cJSON_AddStringToObject(line, "method", method);
    cJSON_AddStringToObject(line, "path", url);
    cJSON_AddStringToObject(line, "content_type", type ? type : "");
    cJSON_AddStringToObject(line, "user_agent", agent ? agent : "");
    char *body = strndup(req->body ? req->body : "", req->len);
    cJSON_AddStringToObject(line, "body", body);
    free(body);
    char *text = cJSON_PrintUnformatted(line);
    cJSON_Delete(line);
    size_t n = strlen(text);
    text = realloc(text, n + 2);
    text[n] = '\n';
    pthread_mutex_lock(&log_lock);
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ssize_t written = write(fd, text, n + 1);
        (void)written;
        close(fd);
    }
    pthread_mutex_unlock(&log_lock);
    free(text);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **state)
{
    (void)cls;
    (void)version;
    request *req = *state;
    if (!req) {
        *state = calloc(1, sizeof *req);
        return MHD_YES;
    }
    if (*upload_size) {
        req->body = realloc(req->body, req->len + *upload_size + 1);
        memcpy(req->body + req->len, upload_data, *upload_size);
        req->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    log_request(conn, method, url, req);
    if (sleep_seconds)
        sleep(sleep_seconds);
    const char *text = answer_status == 410 ? "this webhook was removed\n" : "ok\n";
    struct MHD_Response *response = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)answer_status, response);
    MHD_destroy_response(response);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)conn;
    (void)why;
    request *req = *state;
    if (req) {
        free(req->body);
        free(req);
    }
    *state = NULL;
}

static void set_mode(const char *mode)
{
    if (!strncmp(mode, "sleep:", 6)) {
        sleep_seconds = (unsigned)atoi(mode + 6);
        answer_status = 200;
    } else {
        answer_status = atoi(mode);
        if (answer_status < 100 || answer_status > 599) {
            fprintf(stderr, "webhook-receiver: --mode is a status (200, 500, 410...) or sleep:N\n");
            exit(2);
        }
    }
}

int main(int argc, char **argv)
{
    unsigned port = 0;
    const char *mode = getenv("WEBHOOK_MODE");
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            port = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--log"))
            log_path = argv[i + 1];
        else if (!strcmp(argv[i], "--mode"))
            mode = argv[i + 1];
        else {
            fprintf(stderr, "usage: webhook-receiver [--port N] [--log FILE] [--mode 200|500|410|sleep:N]\n");
            return 2;
        }
    }
    set_mode(mode && *mode ? mode : "200");
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* MHD's threads inherit the mask; main waits for them */
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                                MHD_USE_ERROR_LOG,
                                            (uint16_t)port, NULL, NULL, on_request, NULL,
                                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "webhook-receiver: cannot listen on 127.0.0.1:%u\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("%u\n", info ? info->port : port);
    fflush(stdout);
    int sig;
    sigwait(&stop, &sig);
    _exit(0); /* without waiting for a connection that is still sleeping */
}
