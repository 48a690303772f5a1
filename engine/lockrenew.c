#include "lockrenew.h"

#include "audit.h"
#include "audit_remote.h"
#include "buf.h"
#include "err.h"
#include "term.h"
#include "timefmt.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct lock_renewer {
    char *audit_dir;
    char *key;
    cJSON *holder;
    double ttl;
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    int stopping;
};

static void renew(lock_renewer *r, audit *a)
{
    char until[48];
    timefmt_format_utc(until, sizeof until, timefmt_now() + r->ttl);
    cJSON_ReplaceItemInObjectCaseSensitive(r->holder, "expires_at", cJSON_CreateString(until));
    cJSON *previous = NULL;
    if (audit_remote_lock(&previous, a, r->key, r->holder) != 0)
        term_warn("the target lock on origin could not be renewed: %s", err_last());
    cJSON_Delete(previous);
}

/* Waits a quarter of the lock's life, or less when stopped; 1 to go on. */
static int wait_period(lock_renewer *r)
{
    double period = r->ttl / 4 < 0.25 ? 0.25 : r->ttl / 4;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    double whole = floor(period);
    until.tv_sec += (time_t)whole;
    until.tv_nsec += (long)((period - whole) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mutex);
    int rc = 0;
    while (!r->stopping && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&r->wake, &r->mutex, &until);
    int go_on = !r->stopping;
    pthread_mutex_unlock(&r->mutex);
    return go_on;
}

static void *renew_loop(void *arg)
{
    lock_renewer *r = arg;
    audit *a = NULL;
    if (audit_open(&a, r->audit_dir, 0) != 0) {
        term_warn("the target lock on origin will not be renewed: %s", err_last());
        return NULL;
    }
    while (wait_period(r))
        renew(r, a);
    audit_free(a);
    return NULL;
}

static void renewer_free(lock_renewer *r)
{
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->mutex);
    cJSON_Delete(r->holder);
    free(r->key);
    free(r->audit_dir);
    free(r);
}

lock_renewer *lock_renewer_start(const char *audit_dir, const char *key, cJSON *holder, double ttl)
{
    lock_renewer *r = xcalloc(1, sizeof *r);
    r->audit_dir = xstrdup(audit_dir);
    r->key = xstrdup(key);
    r->holder = holder;
    r->ttl = ttl;
    pthread_mutex_init(&r->mutex, NULL);
    pthread_cond_init(&r->wake, NULL);
    if (pthread_create(&r->thread, NULL, renew_loop, r) != 0) {
        term_warn("the target lock on origin will not be renewed (no thread): it lasts %.0f s", ttl);
        renewer_free(r);
        return NULL;
    }
    return r;
}

void lock_renewer_stop(lock_renewer *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mutex);
    r->stopping = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->mutex);
    pthread_join(r->thread, NULL);
    renewer_free(r);
}
