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
/* Results on stdout. */
void term_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
