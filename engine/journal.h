/* journal: a run's append-only event log, runs/<id>/journal.jsonl.
 *
 * One JSON object a line: {"seq":N,"time":"...","kind":"...","step":...,
 * "data":{...}}, seq gapless from 1. Each append is fsynced before the
 * engine takes its next action. The journal is the truth the checkpoint is
 * derived from: state.json is what replaying it gives. */
#ifndef DRCTL_JOURNAL_H
#define DRCTL_JOURNAL_H

#include <cjson/cJSON.h>

typedef struct journal journal;

/* Called after each durable append, with the event (borrowed): the hook
 * where the audit store commits. */
typedef int (*journal_listener)(void *ud, const cJSON *event);

/* Creates a new journal file in run_dir (it must not exist). */
int journal_create(journal **out, const char *run_dir);

/* Opens an existing journal for appending; *events gets every event. A
 * torn last line (a crash in the middle of an append, never acknowledged)
 * is cut off and *repaired_bytes says how much; any other damage is
 * DR_EUSAGE naming the line, and nothing is changed. */
int journal_open(journal **out, cJSON **events, long *repaired_bytes, const char *run_dir);

/* Parses journal text (named path in messages): every complete line must be
 * an event and seq gapless from 1; *torn gets the length of an incomplete
 * last line. */
int journal_parse(cJSON **events, long *torn, const char *path, const char *text, size_t len);

/* Reads and checks a journal file without opening it for writing. */
int journal_read(cJSON **events, long *torn_bytes, const char *path);

/* Appends an event; data is taken (may be NULL), step may be NULL. Data is
 * redacted before it is written. */
int journal_append(journal *j, const char *kind, const char *step, cJSON *data);

/* Transitions are the events committed one by one to the audit trail
 * (step-*, run-*, confirmation-*, abort-requested, journal-repaired,
 * lock-takeover, runbook-changed); log lines, commands run, figures and
 * the modules' calls are not. */
int journal_is_transition(const char *kind);

/* The audit commit message of a transition: "<run-id>: <step> <state>"
 * ("...: copy done", "...: promote confirmation-given", "...: run failed").
 * Caller frees. */
char *journal_transition_message(const char *run_id, const char *kind, const char *step);

void journal_set_listener(journal *j, journal_listener fn, void *ud);
long journal_last_seq(const journal *j);
void journal_free(journal *j);

#endif
