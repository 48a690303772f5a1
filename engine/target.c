#include "target.h"

#include "buf.h"
#include "err.h"
#include "fsio.h"
#include "neon.h"
#include "timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOCAL_HOME ".drctl"
#define START_WAIT_SECONDS 120.0 /* a restart brings every branch's server back first */

static int env_true(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0 && strcasecmp(v, "false") != 0 && strcasecmp(v, "no") != 0;
}

void target_resolve(target *t, int local_flag)
{
    memset(t, 0, sizeof *t);
    const char *key = getenv("NEON_API_KEY");
    if (local_flag || env_true("DRCTL_LOCAL")) {
        t->kind = TARGET_LOCAL;
        char *cwd = getcwd(NULL, 0);
        t->local_dir = xasprintf("%s/" LOCAL_HOME "/neon-local", cwd ? cwd : ".");
        free(cwd);
    } else if (key && *key) {
        t->kind = TARGET_CLOUD;
        const char *host = getenv("NEON_API_HOST");
        t->api_host = xstrdup(host && *host ? host : NEON_CLOUD_API);
        t->api_key = xstrdup(key);
        t->connected = 1;
    }
}

int target_refuse(void)
{
    return err_set(DR_EUSAGE, "this runbook acts on Neon, and no target was chosen: set NEON_API_KEY (and "
                   "NEON_PROJECT_ID) to act on your Neon projects, or pass --local (or DRCTL_LOCAL=1) to rehearse on "
                   "neon-local in ./" LOCAL_HOME "/neon-local. drctl never picks one for you.");
}

char *target_describe(const target *t)
{
    switch (t->kind) {
    case TARGET_CLOUD:
        return strcmp(t->api_host, NEON_CLOUD_API) == 0 ? xasprintf("Neon cloud (%s)", t->api_host)
                                                         : xasprintf("Neon API at %s", t->api_host);
    case TARGET_LOCAL:
        return xasprintf("neon-local (rehearsal), %s", t->api_host ? t->api_host : t->local_dir);
    default:
        return xstrdup("none");
    }
}

cJSON *target_json(const target *t)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", t->kind == TARGET_CLOUD ? "cloud" : t->kind == TARGET_LOCAL ? "local" : "none");
    if (t->api_host)
        cJSON_AddStringToObject(j, "api_host", t->api_host);
    if (t->local_dir)
        cJSON_AddStringToObject(j, "data", t->local_dir);
    return j;
}

void target_dispose(target *t)
{
    if (t->api_key)
        memset(t->api_key, 0, strlen(t->api_key));
    free(t->api_key);
    free(t->api_host);
    free(t->local_dir);
    memset(t, 0, sizeof *t);
}

/* ---- neon-local in the background -------------------------------------------------- */

static char *home_file(const char *name)
{
    char *cwd = getcwd(NULL, 0);
    char *path = xasprintf("%s/" LOCAL_HOME "/%s", cwd ? cwd : ".", name);
    free(cwd);
    return path;
}

/* The neon-local beside this drctl, else the one on PATH. */
static char *neon_local_program(void)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            char *beside = xasprintf("%s/neon-local", self);
            if (access(beside, X_OK) == 0)
                return beside;
            free(beside);
        }
    }
    return xstrdup("neon-local");
}

/* 1 when neon-local at url answers with key. */
static int answers(const char *url, const char *key)
{
    neon_client *c;
    if (neon_client_new(&c, url, key) != 0)
        return 0;
    neon_policy quick = { .attempts = 1, .deadline = 3, .connect_timeout = 2, .transfer_timeout = 3,
                          .first_backoff = 0.1, .max_backoff = 0.1 };
    neon_client_set_policy(c, &quick);
    cJSON *answer = NULL;
    neon_reply r;
    int ok = neon_call(&answer, &r, c, "GET", "/projects?limit=1", NULL) == 0;
    cJSON_Delete(answer);
    neon_reply_dispose(&r);
    neon_client_free(c);
    return ok;
}

static char *read_trimmed(const char *path)
{
    char *text = NULL;
    if (!fsio_exists(path) || fsio_read_file(&text, NULL, path) != 0)
        return NULL;
    text[strcspn(text, "\r\n")] = '\0';
    return text;
}

/* neon-local needs none of drctl's secrets (its key is the one in its
 * folder): a server that outlives the run should not carry them. Runs in
 * the forked child, so it allocates nothing. */
static void drop_secrets_from_environment(void)
{
    static const char *const names[] = { "NEON_LOCAL_API_KEY", "NEON_API_KEY", "DRCTL_GIT_TOKEN",
                                          "PGPASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                          "AWS_SESSION_TOKEN" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unsetenv(names[i]);
    static const char param_prefix[] = "DRCTL_PARAM_";
    for (size_t i = 0; environ[i];) {
        char name[256];
        size_t len = strcspn(environ[i], "=");
        if (strncmp(environ[i], param_prefix, sizeof param_prefix - 1) == 0 && len < sizeof name) {
            memcpy(name, environ[i], len);
            name[len] = '\0';
            unsetenv(name);
            continue; /* the next entry moved into slot i */
        }
        i++;
    }
}

/* Starts neon-local detached (its own session, so the terminal's ^C and
 * drctl's exit leave it running for the next command). */
static pid_t spawn_neon_local(const char *data_dir, const char *log_path)
{
    char *program = neon_local_program();
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        int null_fd = open("/dev/null", O_RDONLY);
        int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (null_fd < 0 || log_fd < 0)
            _exit(126);
        dup2(null_fd, 0);
        dup2(log_fd, 1);
        dup2(log_fd, 2);
        drop_secrets_from_environment();
        char *argv[] = { program, "--data", (char *)data_dir, "--listen", "127.0.0.1:0", NULL };
        execvp(program, argv);
        fprintf(stderr, "drctl: cannot run %s: %s\n", program, strerror(errno));
        _exit(127);
    }
    free(program);
    return pid;
}

/* The URL in the log after offset, once neon-local printed it. */
static char *ready_line(const char *log_path, size_t offset)
{
    char *text = NULL;
    size_t len = 0;
    if (fsio_read_file(&text, &len, log_path) != 0)
        return NULL;
    char *url = NULL;
    if (offset < len) {
        char *line = strstr(text + offset, "neon-local: http://");
        if (line) {
            line += strlen("neon-local: ");
            url = xstrdup(line);
            url[strcspn(url, "\r\n")] = '\0';
        }
    }
    free(text);
    return url;
}

static char *log_tail(const char *log_path)
{
    char *text = NULL;
    size_t len = 0;
    if (fsio_read_file(&text, &len, log_path) != 0)
        return xstrdup("(no log)");
    char *tail = xstrdup(len > 600 ? text + len - 600 : text);
    free(text);
    return tail;
}

static int start_neon_local(char **url_out, target *t)
{
    char *log_path = home_file("neon-local.log");
    struct stat st;
    size_t offset = stat(log_path, &st) == 0 ? (size_t)st.st_size : 0;
    pid_t pid = spawn_neon_local(t->local_dir, log_path);
    int rc = pid > 0 ? 0 : err_set(DR_EFAIL, "cannot start neon-local: %s", strerror(errno));
    double until = timefmt_monotonic() + START_WAIT_SECONDS;
    char *url = NULL;
    fprintf(stderr, "starting neon-local in %s ...\n", t->local_dir);
    while (rc == 0 && !(url = ready_line(log_path, offset))) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            char *tail = log_tail(log_path);
            rc = err_set(DR_EFAIL, "neon-local stopped at once; the end of %s says:\n%s", log_path, tail);
            free(tail);
        } else if (timefmt_monotonic() > until) {
            kill(pid, SIGTERM);
            rc = err_set(DR_EFAIL, "neon-local did not get ready within %.0f s; see %s", START_WAIT_SECONDS, log_path);
        } else {
            struct timespec ts = { 0, 50 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
    }
    if (rc == 0) {
        char *pid_path = home_file("neon-local.pid"), *url_path = home_file("neon-local.url");
        char *pid_text = xasprintf("%d\n", (int)pid), *url_text = xasprintf("%s\n", url);
        rc = fsio_write_durable(pid_path, pid_text, strlen(pid_text));
        if (rc == 0)
            rc = fsio_write_durable(url_path, url_text, strlen(url_text));
        free(pid_path);
        free(url_path);
        free(pid_text);
        free(url_text);
    }
    free(log_path);
    if (rc == 0)
        *url_out = url;
    else
        free(url);
    return rc;
}

static int connect_local(target *t)
{
    char *home = home_file(""), *lock_path = NULL, *url_path = NULL, *key_path = NULL, *url = NULL, *key = NULL;
    int lock_fd = -1;
    /* 0755: the PostgreSQL servers run as another user when drctl runs as root. */
    int rc = fsio_mkdirs(home, 0755);
    if (rc)
        goto cleanup;
    lock_path = home_file("neon-local.lock");
    lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX) != 0) {
        rc = err_set(DR_EFAIL, "cannot lock ./" LOCAL_HOME "/neon-local.lock: %s", strerror(errno));
        goto cleanup;
    }
    url_path = home_file("neon-local.url");
    key_path = xasprintf("%s/api-key", t->local_dir);
    url = read_trimmed(url_path);
    key = read_trimmed(key_path);
    if (!url || !key || !answers(url, key)) {
        free(url);
        url = NULL;
        rc = start_neon_local(&url, t);
        free(key);
        key = rc == 0 ? read_trimmed(key_path) : NULL;
        if (rc == 0 && !key)
            rc = err_set(DR_EFAIL, "neon-local started but %s is missing", key_path);
    }
    if (rc == 0) {
        t->api_host = url;
        t->api_key = key;
        t->connected = 1;
        url = key = NULL;
    }
cleanup:
    if (lock_fd >= 0)
        close(lock_fd); /* releases the lock */
    free(home);
    free(lock_path);
    free(url_path);
    free(key_path);
    free(url);
    free(key);
    return rc;
}

int target_connect(target *t)
{
    if (t->kind == TARGET_NONE)
        return target_refuse();
    if (t->connected)
        return 0;
    return connect_local(t);
}
