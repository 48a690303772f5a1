/* lock: at most one process drives a run, and at most one run holds a
 * target (the runbook's `lock` key) at a time.
 *
 * A lock is a file held with flock(2), so the kernel releases it when its
 * process dies, even by kill -9. The file also names its holder (pid, host,
 * run, since when) so that a refusal can say who holds it, and a file that
 * still names a holder when we get the lock tells of a holder that died:
 * the caller records that takeover. */
#ifndef DRCTL_LOCK_H
#define DRCTL_LOCK_H

#include <cjson/cJSON.h>

typedef struct lock lock;

/* Takes the lock at path (created if missing). When held: DR_ELOCKED with a
 * message naming the holder and what it holds (`what`). *stale, when not
 * NULL, gets the description of a dead holder whose lock was taken over, or
 * NULL. */
int lock_acquire(lock **out, cJSON **stale, const char *path, const char *what, const char *run_id);

/* Releases and clears the file (NULL is fine). */
void lock_release(lock *l);

/* 1 when a live process holds the lock at path, 0 otherwise. */
int lock_is_held(const char *path);

#endif
