/* debris: what a crash may leave in a run's folder, told apart from an
 * edit (the audit trail contract, docs/design.md).
 *
 * drctl appends an event to the journal, rewrites state.json (and, at a
 * run's end, report.md), then commits; a module's events (its calls,
 * logs, figures) ride along with the next transition's commit. So a
 * process killed at any instant leaves, past the last commit: those
 * ride-along events, at most one transition, last, and perhaps a torn
 * line being written; run.json as committed; state.json as committed or
 * as the journal, with or without its last event, replays to; report.md
 * as committed or as the journal renders it. Anything more was written by
 * hand. */
#ifndef DRCTL_DEBRIS_H
#define DRCTL_DEBRIS_H

/* A run folder's files, as last committed and as they are now (NULL when
 * absent). */
typedef struct run_versions {
    const char *committed[4]; /* run.json, journal.jsonl, state.json, report.md */
    const char *current[4];
} run_versions;

/* 0 when the folder is what a crash leaves, or unchanged; otherwise
 * DR_EUSAGE with a message naming the file, the lines and what is wrong
 * (relative to the audit folder dir). */
int debris_check(const char *dir, const char *run_id, const run_versions *v);

#endif
