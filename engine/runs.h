/* runs: the runs recorded in an audit directory (run.json and
 * journal.jsonl of each run's folder, runpath.h), read back for status,
 * audit, drill --history, resume and abort; and the run ids that name
 * them. */
#ifndef DRCTL_RUNS_H
#define DRCTL_RUNS_H

#include <cjson/cJSON.h>

/* Run ids are [A-Za-z0-9._-], 1 to 128 characters, not starting with '.'. */
int runs_valid_id(const char *run_id);

/* A new run id: 20260111T143000Z-<runbook>-<4 hex>. */
char *runs_new_id(const char *runbook_name);

/* The path of a run's lock file, so status can tell a live run. */
char *runs_lock_path(const char *audit_dir, const char *run_id);

/* The path of a run's journal (in its folder, runpath.h). */
char *runs_journal_path(const char *audit_dir, const char *run_id);

/* Reads the run.json of run_id into *info (caller frees); DR_EUSAGE when
 * the id is invalid, the run does not exist or its record is corrupt. */
int runs_read_info(cJSON **info, const char *audit_dir, const char *run_id);

/* The run's state, replayed from its journal, with "elapsed_seconds"; a
 * journal that does not replay gives {"status":"corrupt","detail":...}.
 * *live tells whether a process holds the run's lock now. */
cJSON *runs_state(int *live, const char *audit_dir, const char *run_id);

/* The status to show a person: a "running" run nobody holds is dead. */
const char *runs_shown_status(const cJSON *state, int live);

/* Every run in the audit folder, newest first, one row each: run_id,
 * runbook, version, status, shown_status, live, started_at, operator,
 * duration_seconds. Runs whose run.json does not read are left out. */
cJSON *runs_collect(const char *audit_dir);

/* Which runs drctl status and drctl audit log show. Without all and
 * without a filter: the runs that have not ended (runindex.h) and the
 * `recent` most recent ones. Filters (since, runbook, status) each narrow
 * every run of the trail, and together they all must hold. */
typedef struct runs_filter {
    int all;
    double since;        /* started at or after this epoch, or < 0 */
    const char *runbook; /* this runbook's name, or NULL */
    const char *status;  /* running, paused, failed, interrupted, done, aborted, dead or corrupt, or NULL */
    size_t recent;
} runs_filter;

/* The statuses --status takes, for its message. */
#define RUNS_STATUSES "running, paused, failed, interrupted, done, aborted, dead, corrupt"

/* 1 when status is one of RUNS_STATUSES. */
int runs_known_status(const char *status);

/* The rows of runs_collect the filter picks, newest first; *total is how
 * many runs the trail holds. */
cJSON *runs_select(size_t *total, const char *audit_dir, const runs_filter *filter);

/* The runbook that undoes a recovery run (drctl undo RUN_ID runs it with
 * param run = RUN_ID). */
#define RUNS_UNDO_RUNBOOK "undo"

/* The undo runs of run_id, oldest first: [{run_id, status, live}]. The
 * link from an undo to what it undoes is its param run, in its run.json;
 * the original run's record is never rewritten. */
cJSON *runs_undone_by(const char *audit_dir, const char *run_id);

/* A past run as a runbook reads it (dr.run): run_id, runbook, version,
 * status, live, params (secrets redacted, as recorded), target,
 * started_at, operator, updated_at, outputs {step = outputs} and
 * undone_by. DR_EUSAGE when there is no such run. */
int runs_record(cJSON **out, const char *audit_dir, const char *run_id);

#endif
