#include "drillwriter.h"

#include "buf.h"
#include "err.h"
#include "pgconnect.h"
#include "timefmt.h"

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct drill_writer {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;
    char *uri;
    int rate;
    long long last_seq;
    drill_writer_stats stats;
};

static void note_failure(drill_writer *w, const char *message)
{
    pthread_mutex_lock(&w->lock);
    w->stats.failed++;
    snprintf(w->stats.last_error, sizeof w->stats.last_error, "%s", message);
    char *nl = strchr(w->stats.last_error, '\n');
    if (nl)
        *nl = '\0';
    pthread_mutex_unlock(&w->lock);
}

/* A new write's seq: its time in microseconds, strictly increasing. */
static long long next_seq(drill_writer *w)
{
    long long now = (long long)(timefmt_now() * 1e6);
    w->last_seq = now > w->last_seq ? now : w->last_seq + 1;
    return w->last_seq;
}

/* One write, alternately an insert and an update of a recent row. */
static int write_once(drill_writer *w, PGconn *conn, long n)
{
    long long seq = next_seq(w);
    char sql[768];
    if (n % 2 == 0)
        snprintf(sql, sizeof sql,
                 "BEGIN; SELECT pg_advisory_xact_lock_shared(%d); "
                 "INSERT INTO drctl_drill_rows (id, n) VALUES (%lld, 0); "
                 "INSERT INTO drctl_drill_ops (seq, row_id, op) VALUES (%lld, %lld, 'i'); COMMIT",
                 DRILL_WRITER_LOCK, seq, seq, seq);
    else
        snprintf(sql, sizeof sql,
                 "BEGIN; SELECT pg_advisory_xact_lock_shared(%d); "
                 "WITH target AS (SELECT id FROM drctl_drill_rows ORDER BY id DESC LIMIT 1 OFFSET %ld), "
                 "u AS (UPDATE drctl_drill_rows r SET n = r.n + 1 FROM target WHERE r.id = target.id RETURNING r.id) "
                 "INSERT INTO drctl_drill_ops (seq, row_id, op) SELECT %lld, id, 'u' FROM u; COMMIT",
                 DRILL_WRITER_LOCK, (n / 2) % 10, seq);
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        note_failure(w, PQerrorMessage(conn));
        PQclear(res);
        res = PQexec(conn, "ROLLBACK");
    }
    PQclear(res);
    if (ok) {
        pthread_mutex_lock(&w->lock);
        if (n % 2 == 0)
            w->stats.inserted++;
        else
            w->stats.updated++;
        pthread_mutex_unlock(&w->lock);
    }
    return ok;
}

/* Sleeps until the absolute time `until` or a stop; returns 1 on stop. */
static int wait_until(drill_writer *w, double until)
{
    struct timespec ts;
    ts.tv_sec = (time_t)until;
    ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        if (pthread_cond_timedwait(&w->wake, &w->lock, &ts) == ETIMEDOUT)
            break;
    }
    int stop = w->stop;
    pthread_mutex_unlock(&w->lock);
    return stop;
}

static void *run_writer(void *arg)
{
    drill_writer *w = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the main thread's */
    PGconn *conn = NULL;
    double period = 1.0 / w->rate, next = timefmt_now();
    for (long n = 0;; n++) {
        if (!conn || PQstatus(conn) != CONNECTION_OK) {
            if (conn) {
                PQfinish(conn);
                pthread_mutex_lock(&w->lock);
                w->stats.reconnects++;
                pthread_mutex_unlock(&w->lock);
            }
            conn = pg_connect_uri(w->uri, "drctl-drill-writer", "5");
            if (PQstatus(conn) != CONNECTION_OK) {
                note_failure(w, PQerrorMessage(conn));
                if (wait_until(w, timefmt_now() + 0.5))
                    break;
                continue;
            }
        }
        write_once(w, conn, n);
        next += period;
        double now = timefmt_now();
        if (next < now - 1)
            next = now; /* after an outage, the rate resumes; it does not catch up */
        if (wait_until(w, next))
            break;
    }
    PQfinish(conn);
    return NULL;
}

drill_writer *drill_writer_start(const char *uri, int rate)
{
    if (rate < 1 || rate > 1000) {
        err_set(DR_EUSAGE, "write_rate %d: give 1 to 1000 writes a second (0: no writer)", rate);
        return NULL;
    }
    drill_writer *w = xcalloc(1, sizeof *w);
    w->uri = xstrdup(uri);
    w->rate = rate;
    w->stats.started = timefmt_now();
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_cond_init(&w->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&w->thread, NULL, run_writer, w) != 0) {
        err_set(DR_EFAIL, "cannot start the drill's writer: %s", strerror(errno));
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w->uri);
        free(w);
        return NULL;
    }
    return w;
}

void drill_writer_stats_of(drill_writer_stats *out, drill_writer *w)
{
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    pthread_mutex_unlock(&w->lock);
}

void drill_writer_stop(drill_writer_stats *out, drill_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    w->stats.stopped = timefmt_now();
    if (out)
        *out = w->stats;
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    memset(w->uri, 0, strlen(w->uri)); /* it holds a password */
    free(w->uri);
    free(w);
}
