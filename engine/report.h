/* report: the human summary of a run, runs/<id>/report.md, written when a
 * run ends (done, failed, paused, interrupted, aborted): a timeline of the
 * steps with their durations, every confirmation with who and when, the
 * figures the runbook reported (dr.figure), outputs and errors. It is made
 * from run.json and the journal only, so it can always be rebuilt. */
#ifndef DRCTL_REPORT_H
#define DRCTL_REPORT_H

#include <cjson/cJSON.h>

/* The report's Markdown text; chain_head is the hash of the journal's
 * last line (journal_chain), shown as the journal's anchor. Caller frees. */
char *report_render(const cJSON *run_info, const cJSON *events, const char *chain_head);

/* Renders the report of the run in run_dir and writes it durably. */
int report_write(const char *run_dir);

#endif
