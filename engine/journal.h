/* journal: a run's append-only event log, runs/<id>/journal.jsonl.
 *
 * One JSON object a line: {"seq":N,"prev":"...","time":"...","kind":"...",
 * "step":...,"data":{...}}, seq gapless from 1. Each append is fsynced
 * before the engine takes its next action. The journal is the truth the
 * checkpoint is derived from: state.json is what replaying it gives.
 *
 * The events are hash-chained: prev is the SHA-256 (hex) of the line
 * before, as written without its newline, and the first event's is the
 * SHA-256 of the run id. An event edited, inserted or removed breaks the
 * chain at the next line, and the hash of the last line (the head), kept
 * outside the repository (a notification, a report), dates the whole
 * journal. Journals of an older drctl have no prev: read, and reported as
 * unchained. */
#ifndef DRCTL_JOURNAL_H
#define DRCTL_JOURNAL_H

#include <cjson/cJSON.h>

typedef struct journal journal;

#define JOURNAL_HASH_SIZE 65 /* SHA-256 in hex, with its NUL */

/* What journal_chain_check found. */
typedef struct journal_chain {
    long events;        /* complete lines */
    long unchained;     /* events without prev, all before the first chained one */
    long broken_line;   /* the first line that breaks the chain, 0 when none */
    char *why;          /* what is wrong at broken_line ("line N: ..."), owned */
    char head[JOURNAL_HASH_SIZE]; /* the hash of the last complete line (of the run id when none) */
} journal_chain;

/* Checks the chain of a journal's text (a torn last line is ignored). */
void journal_chain_check(journal_chain *chain, const char *run_id, const char *text, size_t len);
void journal_chain_dispose(journal_chain *chain);

/* The first event's prev: the SHA-256 of the run id. */
void journal_chain_start(char out[JOURNAL_HASH_SIZE], const char *run_id);

/* Called after each durable append, with the event (borrowed): the hook
 * where the audit store commits. */
typedef int (*journal_listener)(void *ud, const cJSON *event);

/* Creates a new journal file in run_dir (it must not exist). */
int journal_create(journal **out, const char *run_dir);

/* Opens an existing journal for appending; *events gets every event. A
 * torn last line (a crash in the middle of an append, never acknowledged)
 * is cut off and *repaired_bytes says how much; any other damage, a broken
 * chain included, is DR_EUSAGE naming the line, and nothing is changed. */
int journal_open(journal **out, cJSON **events, long *repaired_bytes, const char *run_dir);

/* Parses journal text (named path in messages): every complete line must be
 * an event and seq gapless from 1; *torn gets the length of an incomplete
 * last line. */
int journal_parse(cJSON **events, long *torn, const char *path, const char *text, size_t len);

/* journal_read, and its chain checked (journal_chain_check; a broken
 * chain is reported in *chain, not refused). */
int journal_read_chained(cJSON **events, journal_chain *chain, const char *path, const char *run_id);

/* Reads and checks a journal file without opening it for writing. */
int journal_read(cJSON **events, long *torn_bytes, const char *path);

/* Appends an event; data is taken (may be NULL), step may be NULL. Data is
 * redacted before it is written. */
int journal_append(journal *j, const char *kind, const char *step, cJSON *data);

/* Transitions are the events committed one by one to the audit trail
 * (step-*, run-*, confirmation-*, approval-*, abort-requested, journal-repaired,
 * lock-takeover, runbook-changed); log lines, commands run, figures and
 * the modules' calls are not. */
int journal_is_transition(const char *kind);

/* The audit commit message of a transition: "<run-id>: <step> <state>"
 * ("...: copy done", "...: promote confirmation-given", "...: run failed").
 * Caller frees. */
char *journal_transition_message(const char *run_id, const char *kind, const char *step);

/* Two clones wrote to one run (a paused run that another operator
 * approved): *out gets onto's journal followed by the lines local added
 * past base (local must begin with base), renumbered and chained again
 * from onto's last line, each marked "rebased": true (its time is when
 * it happened, maybe before onto's last event). DR_EFAIL when local is not base with lines
 * added. Caller frees. */
int journal_rebase(char **out, const char *run_id, const char *onto, const char *base, const char *local);

/* The chain's head: the hash of the last line written (the next prev). */
const char *journal_head(const journal *j);

void journal_set_listener(journal *j, journal_listener fn, void *ud);
long journal_last_seq(const journal *j);
void journal_free(journal *j);

#endif
