/* term: what drctl says to the operator. Progress and messages go to
 * stderr, results to stdout (one JSON document with --json). Everything is
 * redacted first: a secret never reaches the terminal. */
#ifndef DRCTL_TERM_H
#define DRCTL_TERM_H

enum { TERM_QUIET = -1, TERM_NORMAL = 0, TERM_VERBOSE = 1 };

void term_set_verbosity(int level);
int term_verbosity(void);

/* Progress and information (hidden by -q). */
void term_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Details (shown with -v only). */
void term_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Warnings and errors, always shown, prefixed "drctl: ". */
void term_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void term_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* What a long wait is on, and how far it is (hidden by -q): on a terminal
 * one line rewritten in place, taken away by the next message or by
 * term_progress_end; without one (or with TERM=dumb) a line in the log
 * every few seconds. drctl uses no colour, so NO_COLOR has nothing to
 * turn off. */
void term_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void term_progress_end(void);
/* Results on stdout. */
void term_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
