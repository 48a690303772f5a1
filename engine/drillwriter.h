/* drillwriter: the application a drill keeps writing while it recovers.
 *
 * A thread with its own connection inserts and updates rows of two tables
 * of the drill's copy, at a steady rate, so that the recovery is measured
 * against writes that really happen, and the data it loses is counted,
 * not assumed:
 *
 *   drctl_drill_rows (id bigint primary key, n int)     the data
 *   drctl_drill_ops  (seq bigint primary key, row_id bigint, op "i"|"u",
 *                     at timestamptz)                    what was done, when
 *
 * Each insert or update and its line in drctl_drill_ops commit together,
 * so a branch's ops say exactly which writes it holds. seq is the write's
 * time in microseconds, never reused, even after a restore rolled the
 * branch back. Every write takes a shared advisory lock, so the incident
 * can hold writes still while it records the state just before it.
 *
 * A lost connection (a restore restarting the server) is retried every
 * half second: the failures are counted, as an application would see them. */
#ifndef DRCTL_DRILLWRITER_H
#define DRCTL_DRILLWRITER_H

/* The advisory lock key writes hold shared and the incident exclusive. */
#define DRILL_WRITER_LOCK 7734119

typedef struct drill_writer drill_writer;

typedef struct drill_writer_stats {
    long inserted, updated, failed, reconnects;
    double started, stopped; /* epoch seconds */
    char last_error[256];
} drill_writer_stats;

/* Starts writing `rate` writes a second (1 to 1000) on uri; the tables
 * must exist. NULL with the error set when the thread cannot start. */
drill_writer *drill_writer_start(const char *uri, int rate);

void drill_writer_stats_of(drill_writer_stats *out, drill_writer *w);

/* Stops the thread, waits for it, frees; *out (may be NULL) gets the totals. */
void drill_writer_stop(drill_writer_stats *out, drill_writer *w);

#endif
