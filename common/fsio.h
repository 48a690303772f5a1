/* fsio: file operations that survive a crash at any instant.
 *
 * A checkpoint is only worth something if a power cut or kill -9 can never
 * leave it half written, so every whole-file write goes through a temporary
 * file in the same directory, fsync, rename, then fsync of the directory
 * (the rename itself is a directory change and is lost without it). */
#ifndef DRCTL_FSIO_H
#define DRCTL_FSIO_H

#include <stddef.h>
#include <sys/types.h>

/* Replaces path with data atomically and durably. On failure (disk full,
 * read-only) the previous content of path is untouched. */
int fsio_write_durable(const char *path, const void *data, size_t len);

/* The same, creating the file with mode (0600 for files holding secrets). */
int fsio_write_durable_mode(const char *path, const void *data, size_t len, mode_t mode);

/* Appends one record to an open O_APPEND descriptor and fsyncs it. */
int fsio_append_durable(int fd, const char *path, const void *data, size_t len);

/* Writes all of data to fd, going on after EINTR and short writes; -1 with
 * errno set on failure. No message is set (callers may be forked children). */
int fsio_write_all(int fd, const void *data, size_t len);

/* Reads a whole file; *out is NUL-terminated and owned by the caller. */
int fsio_read_file(char **out, size_t *len, const char *path);

/* mkdir -p; existing directories are fine. */
int fsio_mkdirs(const char *path, mode_t mode);

/* fsync of a directory, so that entries created or renamed in it persist. */
int fsio_fsync_dir(const char *dir);

/* The directory part of path, as a new string ("." when there is none). */
char *fsio_dirname(const char *path);

/* rm -rf: removes a file, or a folder and everything under it, never
 * following a symlink (a link is removed, not what it points to). An
 * absent path is not an error. */
int fsio_remove_tree(const char *path);

int fsio_exists(const char *path);
int fsio_is_dir(const char *path);

#endif
