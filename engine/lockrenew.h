/* lockrenew: the target lock on origin kept alive while its run's process
 * lives (the locking contract, docs/design.md). A step may run for longer
 * than lock.ttl; a thread renews the lock a quarter of its life apart, on
 * its own handle of the trail, so that the lock expires only once its
 * holder has stopped. */
#ifndef DRCTL_LOCKRENEW_H
#define DRCTL_LOCKRENEW_H

#include <cjson/cJSON.h>

typedef struct lock_renewer lock_renewer;

/* Starts renewing key's lock as holder (taken; its expires_at is moved
 * to now + ttl at each renewal). NULL when the thread cannot start: the
 * lock then lasts ttl, and a warning says so. */
lock_renewer *lock_renewer_start(const char *audit_dir, const char *key, cJSON *holder, double ttl);

/* Stops the thread and waits for it (NULL is fine). */
void lock_renewer_stop(lock_renewer *r);

#endif
