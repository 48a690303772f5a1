/* proc: running a program by argv, never through a shell.
 *
 * The child gets a small environment (PATH, HOME, locale, TZ, TMPDIR, USER)
 * plus what the caller adds, so API keys in drctl's own environment do not
 * leak into every tool a runbook starts. It runs in its own process group,
 * so a timeout or an interrupt stops it and everything it started.
 *
 * A process the child leaves behind may keep its stdout or stderr open
 * (a daemon, or a grandchild in a session of its own that the kill of the
 * group misses): those are read for two more seconds after the child is
 * gone, then closed, so that proc_run returns however the child ends. */
#ifndef DRCTL_PROC_H
#define DRCTL_PROC_H

#include <stddef.h>

typedef struct proc_request {
    char *const *argv;          /* argv[0] is looked up in PATH */
    char *const *env;           /* extra NAME=value entries, NULL-terminated, or NULL */
    const char *stdin_data;     /* may be NULL */
    size_t stdin_len;
    double timeout;             /* seconds; <= 0: none */
    size_t output_limit;        /* bytes kept of each of stdout and stderr */
    int (*should_stop)(void);   /* polled; nonzero stops the child (signals) */
    /* Called about once a second while the child runs, with its stderr so
     * far (for progress reports); may be NULL. */
    void (*progress)(void *ud, const char *err, size_t err_len);
    void *progress_ud;
} proc_request;

typedef struct proc_result {
    int exit_code;              /* exit status, or 128+signal */
    int timed_out;
    int stopped;                /* should_stop asked for it */
    char *out;                  /* NUL-terminated, owned */
    size_t out_len;
    char *err;
    size_t err_len;
    int truncated;              /* an output went over output_limit */
    int outputs_left_open;      /* another process still held stdout or stderr: closed */
    double duration;
} proc_result;

/* Runs the program to its end (or to its stop). Returns DR_EFAIL when it cannot be started
 * (with the reason); a program that runs and fails is still 0, with its
 * exit_code. */
int proc_run(proc_result *result, const proc_request *req);
void proc_result_dispose(proc_result *result);

/* Whether name can be an environment variable's: [A-Za-z_][A-Za-z0-9_]*. */
int proc_valid_env_name(const char *name);

#endif
