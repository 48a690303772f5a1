#include "fsio.h"

#include "buf.h"
#include "err.h"
#include "testhook.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fails like the call it stands before when the test build's fault plan
 * says so (testhook.h; never in the normal build). */
static int injected_fault(const char *op, const char *path)
{
    int err = testhook_io_fault(op, path);
    if (err)
        errno = err;
    return err;
}

/* write(2) until done; path is only for the fault points. A full disk that
 * the test build fakes writes half of what is left first, as a real one
 * may, so that the callers' handling of a torn record is what is tested. */
static int write_all_to(int fd, const void *data, size_t len, const char *path)
{
    const char *p = data;
    while (len > 0) {
        int fault = testhook_io_fault("write", path);
        if (fault) {
            if (fault == ENOSPC && len > 1)
                (void)!write(fd, p, len / 2);
            errno = fault;
            return -1;
        }
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fsio_write_all(int fd, const void *data, size_t len)
{
    return write_all_to(fd, data, len, NULL);
}

char *fsio_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    return xstrndup(path, (size_t)(slash - path));
}

int fsio_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return err_set(DR_EFAIL, "cannot open directory %s: %s", dir, strerror(errno));
    int rc = 0;
    if ((injected_fault("fsync-dir", dir) || fsync(fd) != 0) && errno != EINVAL)
        rc = err_set(DR_EFAIL, "cannot fsync directory %s: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

int fsio_write_durable(const char *path, const void *data, size_t len)
{
    return fsio_write_durable_mode(path, data, len, 0644);
}

int fsio_write_durable_mode(const char *path, const void *data, size_t len, mode_t mode)
{
    char *dir = fsio_dirname(path);
    char *tmp = xasprintf("%s.tmp-%ld", path, (long)getpid());
    int rc = 0, placed = 0;
    /* A temporary left by a crashed process of the same pid goes first:
     * O_EXCL then creates the file anew, with mode, never reusing the old
     * file's mode (0644 where a secret wants 0600). */
    (void)unlink(tmp);
    int fd = injected_fault("create", path) ? -1 : open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    int created = fd >= 0;
    if (fd < 0) {
        rc = err_set(DR_EFAIL, "cannot write %s: %s", path, strerror(errno));
        goto cleanup;
    }
    if (write_all_to(fd, data, len, path) != 0 || injected_fault("fsync", path) || fsync(fd) != 0) {
        rc = err_set(DR_EFAIL, "cannot write %s: %s", path, strerror(errno));
        goto cleanup;
    }
    int closed = close(fd);
    fd = -1;
    if (closed != 0) {
        rc = err_set(DR_EFAIL, "cannot write %s: %s", path, strerror(errno));
        goto cleanup;
    }
    if (injected_fault("rename", path) || rename(tmp, path) != 0) {
        rc = err_set(DR_EFAIL, "cannot replace %s: %s", path, strerror(errno));
        goto cleanup;
    }
    placed = 1;
    /* The new content is in place but may not survive a power cut: the
     * caller must not take it as durable, and the message names the file
     * it was writing, not only its directory. */
    if (fsio_fsync_dir(dir) != 0) {
        char *why = xstrdup(err_last());
        rc = err_set(DR_EFAIL, "cannot write %s durably: %s", path, why);
        free(why);
    }
cleanup:
    if (fd >= 0)
        close(fd);
    if (created && !placed) /* the old content stays, and no temporary beside it */
        unlink(tmp);
    free(tmp);
    free(dir);
    return rc;
}

int fsio_append_durable(int fd, const char *path, const void *data, size_t len)
{
    /* A failed append may have written part of the record: cut it off so
     * the file never ends with a torn line that a later append would glue
     * onto. */
    off_t before = lseek(fd, 0, SEEK_END);
    if (write_all_to(fd, data, len, path) != 0 || injected_fault("fsync", path) || fdatasync(fd) != 0) {
        int saved = errno;
        if (before >= 0 && ftruncate(fd, before) == 0)
            (void)fdatasync(fd);
        return err_set(DR_EFAIL, "cannot append to %s: %s", path, strerror(saved));
    }
    return 0;
}

int fsio_read_file(char **out, size_t *len, const char *path)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(DR_EFAIL, "cannot read %s: %s", path, strerror(errno));
    buf b = BUF_INIT;
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int saved = errno;
            close(fd);
            buf_dispose(&b);
            return err_set(DR_EFAIL, "cannot read %s: %s", path, strerror(saved));
        }
        if (n == 0)
            break;
        buf_append(&b, chunk, (size_t)n);
    }
    close(fd);
    if (len)
        *len = b.len;
    *out = buf_detach(&b);
    return 0;
}

int fsio_mkdirs(const char *path, mode_t mode)
{
    if (!path[0])
        return err_set(DR_EUSAGE, "an empty directory name was given");
    char *copy = xstrdup(path);
    int rc = 0;
    for (char *p = copy + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(copy, mode) != 0 && errno != EEXIST) {
                rc = err_set(DR_EFAIL, "cannot create directory %s: %s", copy, strerror(errno));
                break;
            }
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    if (rc == 0 && !fsio_is_dir(path))
        rc = err_set(DR_EFAIL, "%s exists and is not a directory", path);
    free(copy);
    return rc;
}

int fsio_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int fsio_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int remove_entry(const char *path, const struct stat *st, int kind, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = kind == FTW_DP ? rmdir(path) : unlink(path);
    if (rc != 0 && errno != ENOENT)
        return err_set(DR_EFAIL, "cannot remove %s: %s", path, strerror(errno));
    return 0;
}

int fsio_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : err_set(DR_EFAIL, "cannot remove %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) != 0 && errno != ENOENT)
            return err_set(DR_EFAIL, "cannot remove %s: %s", path, strerror(errno));
        return 0;
    }
    int rc = nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rc < 0)
        return err_set(DR_EFAIL, "cannot remove %s: %s", path, strerror(errno));
    return rc;
}
