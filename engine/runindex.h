/* runindex: which runs of a trail have not ended, without reading them all.
 *
 * drctl status and drctl audit log show, by default, the runs someone may
 * still have to act on (running, paused for an approval, failed or
 * interrupted, killed) and the most recent ones. Finding the first kind
 * by replaying every journal costs a second per 100,000 runs, so the
 * answer is kept in a cache, .git/drctl/open-runs (never committed): the
 * commit it is true at, then the ids of the runs not done nor aborted
 * there. Each read brings it up to HEAD from the commits made since, whose
 * messages name their run and transition ("<run-id>: run done"). A cache
 * that is missing, unreadable, or not an ancestor of HEAD (history
 * rewritten, another clone's file) is rebuilt from every run's state.json,
 * once. The cache is only ever a shortcut: the rows shown are replayed
 * from each run's journal, as always. */
#ifndef DRCTL_RUNINDEX_H
#define DRCTL_RUNINDEX_H

#include "buf.h"

/* The ids of the runs of audit_dir that had not ended at HEAD, into *out
 * (sorted, caller disposes). Never fails: a trail that cannot be read
 * gives the runs whose state.json says they have not ended. */
void runindex_open_runs(str_list *out, const char *audit_dir);

#endif
