#include "signals.h"

#include "term.h"
#include "timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t received;
static volatile sig_atomic_t signal_count;

/* The handler writes a byte here to wake the watchdog (write is
 * async-signal-safe); so does a change of what is watched. */
static int wake_pipe[2] = { -1, -1 };

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static signals_watch watched;            /* under watch_lock */
static double watch_started;             /* when the watched call began */
static signals_hard_stop_fn stop_fn;     /* under watch_lock */
static void *stop_ud;
static atomic_int stopping;

static void wake_watchdog(void)
{
    if (wake_pipe[1] >= 0) {
        int saved = errno;
        ssize_t ignored = write(wake_pipe[1], "", 1);
        (void)ignored; /* a full pipe already holds a wake-up */
        errno = saved;
    }
}

static void on_signal(int sig)
{
    received = sig;
    if (signal_count < 2)
        signal_count++;
    wake_watchdog();
}

static const char *signal_name(int sig)
{
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
}

/* What, if anything, stops the process now; fills why. Otherwise *wait_ms
 * is how long nothing can change (-1: until woken). Under watch_lock. */
static int hard_stop_due(char *why, size_t why_size, int *wait_ms, double now, double *first_seen)
{
    const double grace = SIGNALS_HARD_STOP_GRACE_SECONDS;
    *wait_ms = -1;
    if (signal_count >= 2) {
        snprintf(why, why_size, "a second signal (%s) came while the first was being handled; stopped at once",
                 signal_name(received));
        return 1;
    }
    if (received && *first_seen == 0)
        *first_seen = now;
    if (!watched.active)
        return 0;
    double next = INFINITY;
    if (watched.hard_deadline > 0) {
        if (now >= watched.hard_deadline) {
            snprintf(why, why_size, "%s ran %.0fs past its deadline inside one C call that does not check "
                     "it (a long pattern match, say); stopped hard", watched.what, grace);
            return 1;
        }
        next = watched.hard_deadline;
    }
    if (*first_seen > 0) {
        double since = fmax(*first_seen, watch_started);
        if (now >= since + grace) {
            snprintf(why, why_size, "%s did not stop within %.0fs of %s (it is inside one C call that does "
                     "not check for signals); stopped hard", watched.what, grace, signal_name(received));
            return 1;
        }
        next = fmin(next, since + grace);
    }
    if (isfinite(next))
        *wait_ms = (int)fmin(ceil((next - now) * 1000) + 1, 60 * 1000);
    return 0;
}

static pthread_t watchdog_thread;
static int watchdog_started;
static int watchdog_stopping; /* under watch_lock */

static void *watchdog_main(void *arg)
{
    (void)arg;
    double first_seen = 0;
    for (;;) {
        char why[512];
        int wait_ms;
        pthread_mutex_lock(&watch_lock);
        if (watchdog_stopping) {
            pthread_mutex_unlock(&watch_lock);
            return NULL;
        }
        int due = hard_stop_due(why, sizeof why, &wait_ms, timefmt_monotonic(), &first_seen);
        pthread_mutex_unlock(&watch_lock);
        if (due)
            signals_hard_stop(why, 130);
        struct pollfd pfd = { .fd = wake_pipe[0], .events = POLLIN };
        if (poll(&pfd, 1, wait_ms) > 0) {
            char drain[64];
            while (read(wake_pipe[0], drain, sizeof drain) > 0)
                ;
        }
    }
    return NULL;
}

/* A fork (drctl list loads each runbook in a child) while the watchdog
 * holds watch_lock would give the child a lock nobody ever releases, and
 * the child's first watched call would hang: the fork waits for it. */
static void lock_watch(void)
{
    pthread_mutex_lock(&watch_lock);
}

static void unlock_watch(void)
{
    pthread_mutex_unlock(&watch_lock);
}

/* The watchdog takes no signal: they must reach the main thread, whose
 * blocking reads return EINTR on them. */
static void start_watchdog(void)
{
    pthread_atfork(lock_watch, unlock_watch, unlock_watch);
    if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        wake_pipe[0] = wake_pipe[1] = -1;
        term_warn("cannot start the watchdog (%s): a step stuck inside a C call will not be stopped past "
                  "its deadline", strerror(errno));
        return;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&watchdog_thread, NULL, watchdog_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        term_warn("cannot start the watchdog (%s): a step stuck inside a C call will not be stopped past "
                  "its deadline", strerror(rc));
        return;
    }
    watchdog_started = 1;
}

void signals_uninstall(void)
{
    if (!watchdog_started)
        return;
    pthread_mutex_lock(&watch_lock);
    watchdog_stopping = 1;
    pthread_mutex_unlock(&watch_lock);
    wake_watchdog();
    pthread_join(watchdog_thread, NULL);
    watchdog_started = 0;
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    wake_pipe[0] = wake_pipe[1] = -1;
}

void signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    start_watchdog();
}

int signals_pending(void)
{
    return received;
}

void signals_watch_begin(signals_watch *previous, double hard_deadline, const char *what)
{
    pthread_mutex_lock(&watch_lock);
    *previous = watched;
    watched.active = 1;
    watched.hard_deadline = hard_deadline;
    snprintf(watched.what, sizeof watched.what, "%s", what);
    watch_started = timefmt_monotonic();
    pthread_mutex_unlock(&watch_lock);
    wake_watchdog();
}

void signals_watch_end(const signals_watch *previous)
{
    pthread_mutex_lock(&watch_lock);
    watched = *previous;
    if (watched.active)
        watch_started = timefmt_monotonic();
    pthread_mutex_unlock(&watch_lock);
    wake_watchdog();
}

void signals_set_hard_stop(signals_hard_stop_fn fn, void *ud)
{
    pthread_mutex_lock(&watch_lock);
    stop_fn = fn;
    stop_ud = ud;
    pthread_mutex_unlock(&watch_lock);
}

_Noreturn void signals_hard_stop(const char *why, int status)
{
    /* One stop only: a panic and the watchdog may race to it. */
    if (atomic_exchange(&stopping, 1)) {
        for (;;)
            pause();
    }
    term_error("%s", why);
    /* The lock is kept through the handler and to the end: the run it
     * records cannot be freed under it, and the main thread stops at its
     * next Lua call instead of going on. */
    pthread_mutex_lock(&watch_lock);
    if (stop_fn)
        stop_fn(stop_ud, why);
    _exit(status);
}
