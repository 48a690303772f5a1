/* err: one error slot per thread, as libgit2's git_error_last.
 *
 * Functions return 0 or a negative code from the enum below and set the
 * message once with err_set(); callers pass the code up without touching
 * the message, so the user reads what the lowest level saw. The codes are
 * chosen so that -code is the process exit status (the command line
 * contract for exit statuses, docs/design.md).
 * A thread reads only the messages it set itself: a thread that fails
 * passes its message to another in its own result, not through err_last. */
#ifndef DRCTL_ERR_H
#define DRCTL_ERR_H

enum {
    DR_OK = 0,
    DR_EFAIL = -1,      /* a step or an operation failed (exit 1) */
    DR_EUSAGE = -2,     /* bad input: nothing was done (exit 2) */
    DR_EREFUSED = -3,   /* a confirmation was refused or is missing (exit 3) */
    DR_ELOCKED = -4,    /* another process holds the run or its target (exit 4) */
    DR_EINTR = -130     /* interrupted by a signal (exit 130) */
};

/* Sets the message (printf-style) and returns code, so that callers can
 * write `return err_set(DR_EUSAGE, "...")`. */
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The message of this thread's last err_set, or "" when none. Borrowed:
 * valid until this thread's next err_set or err_clear. */
const char *err_last(void);

void err_clear(void);

/* The exit status for a return code: 0 for DR_OK, -code otherwise. */
int err_exit_status(int code);

#endif
