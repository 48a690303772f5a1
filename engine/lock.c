#include "lock.h"

#include "buf.h"
#include "err.h"
#include "identity.h"
#include "jsontext.h"
#include "timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct lock {
    int fd;
    char *path;
};

static cJSON *read_holder(int fd)
{
    char text[2048];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0)
        return NULL;
    text[n] = '\0';
    return cJSON_Parse(text);
}

static const char *holder_field(const cJSON *holder, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(holder, name);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

static int refuse(int fd, const char *what)
{
    cJSON *holder = read_holder(fd);
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(holder, "pid");
    err_set(DR_ELOCKED, "%s is held by run %s (pid %d on %s, since %s); wait for it to end, or stop "
            "that process", what, holder_field(holder, "run_id"),
            cJSON_IsNumber(pid) ? pid->valueint : -1, holder_field(holder, "host"),
            holder_field(holder, "since"));
    cJSON_Delete(holder);
    return DR_ELOCKED;
}

int lock_acquire(lock **out, cJSON **stale, const char *path, const char *what, const char *run_id)
{
    *out = NULL;
    if (stale)
        *stale = NULL;
    cJSON *previous = NULL, *me = NULL;
    char *host = NULL, *text = NULL;
    int rc = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set(DR_EFAIL, "cannot open lock %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? refuse(fd, what) : err_set(DR_EFAIL, "cannot lock %s: %s", path, strerror(errno));
        goto cleanup;
    }
    previous = read_holder(fd);
    host = identity_host();
    char since[48];
    timefmt_format_utc(since, sizeof since, timefmt_now());
    me = cJSON_CreateObject();
    cJSON_AddNumberToObject(me, "pid", getpid());
    cJSON_AddStringToObject(me, "host", host);
    cJSON_AddStringToObject(me, "run_id", run_id);
    cJSON_AddStringToObject(me, "since", since);
    text = json_print_exact(me, 0);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, strlen(text), 0) < 0) {
        rc = err_set(DR_EFAIL, "cannot write lock %s: %s", path, strerror(errno));
        goto cleanup;
    }
    lock *l = xcalloc(1, sizeof *l);
    l->fd = fd;
    l->path = xstrdup(path);
    *out = l;
    fd = -1;
    if (stale) {
        *stale = previous;
        previous = NULL;
    }

cleanup:
    if (fd >= 0)
        close(fd);
    cJSON_Delete(previous);
    cJSON_Delete(me);
    free(host);
    free(text);
    return rc;
}

void lock_release(lock *l)
{
    if (!l)
        return;
    /* Cleared before unlocking: an empty file means "released cleanly". */
    if (ftruncate(l->fd, 0) != 0) {
        /* The stale description will only cause a recorded takeover. */
    }
    flock(l->fd, LOCK_UN);
    close(l->fd);
    free(l->path);
    free(l);
}

int lock_is_held(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return held;
}
