#include "proc.h"

#include "buf.h"
#include "err.h"
#include "timefmt.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* How long the outputs are still read once the child is gone: a process it
 * left behind (a daemon, or a grandchild in its own session that the kill
 * of the process group missed) may hold them open for ever. */
#define DRAIN_GRACE 2.0
/* Between SIGTERM and SIGKILL when a child is stopped. */
#define TERM_GRACE 1.0

static const char *const inherited[] = {
    "PATH=", "HOME=", "LANG=", "LC_ALL=", "LC_CTYPE=", "TZ=", "TMPDIR=", "USER=", "LOGNAME=", NULL,
};

static char **child_environment(char *const *extra)
{
    size_t count = 0, cap = 16;
    char **envp = xcalloc(cap, sizeof *envp);
    for (char **e = environ; *e; e++) {
        for (const char *const *keep = inherited; *keep; keep++) {
            if (strncmp(*e, *keep, strlen(*keep)) == 0) {
                if (count + 2 > cap)
                    envp = xrealloc(envp, (cap *= 2) * sizeof *envp);
                envp[count++] = *e;
            }
        }
    }
    for (; extra && *extra; extra++) {
        if (count + 2 > cap)
            envp = xrealloc(envp, (cap *= 2) * sizeof *envp);
        envp[count++] = *extra;
    }
    envp[count] = NULL;
    return envp;
}

/* The child: its own process group, pipes on 0/1/2, then exec. The error
 * of a failed exec goes back through report_fd (close-on-exec). */
static void run_child(const proc_request *req, char **envp, int in, int out, int err, int report_fd)
{
    setpgid(0, 0);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    environ = envp;
    execvp(req->argv[0], req->argv);
    int code = errno;
    if (write(report_fd, &code, sizeof code) < 0)
        _exit(127);
    _exit(127);
}

/* One running child and what is known of it. The child is not reaped
 * until the end (waitid with WNOWAIT only looks), so that its pid, which
 * is also its process group's id, cannot be reused while it may still be
 * signalled. */
typedef struct running {
    const proc_request *req;
    proc_result *result;
    pid_t pid;
    int out_fd, err_fd, in_fd;  /* -1 once closed */
    size_t written, limit;
    buf out, err;
    double start;
    int exited;                 /* the child is a zombie, not yet reaped */
    double stop_at;             /* when it was told to stop, 0 if not */
    int killed;                 /* SIGKILL sent */
    double drain_until;         /* outputs are closed at this time, 0 if not set */
    double next_progress;
} running;

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void collect(running *r, int *fd, buf *into)
{
    char chunk[65536];
    ssize_t n = read(*fd, chunk, sizeof chunk);
    if (n <= 0) {
        if (n == 0 || (errno != EINTR && errno != EAGAIN))
            close_fd(fd);
        return;
    }
    size_t room = into->len < r->limit ? r->limit - into->len : 0;
    size_t keep = (size_t)n < room ? (size_t)n : room;
    if (keep)
        buf_append(into, chunk, keep);
    if (keep < (size_t)n)
        r->result->truncated = 1;
}

static void feed_stdin(running *r)
{
    const proc_request *req = r->req;
    ssize_t n = write(r->in_fd, req->stdin_data + r->written, req->stdin_len - r->written);
    if (n > 0)
        r->written += (size_t)n;
    if ((n < 0 && errno != EAGAIN && errno != EINTR) || r->written == req->stdin_len)
        close_fd(&r->in_fd);
}

/* Waits up to timeout_ms for the pipes, and moves what is ready. */
static void pump(running *r, int timeout_ms)
{
    struct pollfd fds[3];
    nfds_t nfds = 0;
    if (r->out_fd >= 0)
        fds[nfds++] = (struct pollfd){ .fd = r->out_fd, .events = POLLIN };
    if (r->err_fd >= 0)
        fds[nfds++] = (struct pollfd){ .fd = r->err_fd, .events = POLLIN };
    if (r->in_fd >= 0)
        fds[nfds++] = (struct pollfd){ .fd = r->in_fd, .events = POLLOUT };
    if (poll(fds, nfds, timeout_ms) <= 0)
        return;
    for (nfds_t i = 0; i < nfds; i++) {
        if (!fds[i].revents)
            continue;
        if (fds[i].fd == r->out_fd)
            collect(r, &r->out_fd, &r->out);
        else if (fds[i].fd == r->err_fd)
            collect(r, &r->err_fd, &r->err);
        else if (fds[i].fd == r->in_fd)
            feed_stdin(r);
    }
}

static void note_exit(running *r)
{
    if (r->exited)
        return;
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)r->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == r->pid)
        r->exited = 1;
}

/* The group, and the child itself in case it left the group (setsid). */
static void signal_child(running *r, int sig)
{
    kill(-r->pid, sig);
    kill(r->pid, sig);
}

static void begin_stop(running *r, double now)
{
    r->stop_at = now;
    if (!r->exited)
        signal_child(r, SIGTERM);
}

static int over_deadline(const running *r, double now)
{
    return r->req->timeout > 0 && now - r->start > r->req->timeout;
}

static int stop_asked(const running *r)
{
    return r->req->should_stop && r->req->should_stop();
}

/* One turn of the watch: timeouts and signals stop the child (once);
 * a stopped child that lingers gets SIGKILL; once the child is gone the
 * outputs get DRAIN_GRACE more, and are then closed whoever holds them. */
static void watch(running *r)
{
    double now = timefmt_monotonic();
    note_exit(r);
    if (!r->stop_at && !r->exited) {
        if (over_deadline(r, now)) {
            r->result->timed_out = 1;
            begin_stop(r, now);
        } else if (stop_asked(r)) {
            r->result->stopped = 1;
            begin_stop(r, now);
        }
    }
    if (r->stop_at && !r->killed && now - r->stop_at >= TERM_GRACE) {
        signal_child(r, SIGKILL); /* the pid is not reaped: still the child's */
        r->killed = 1;
    }
    if (r->exited && !r->drain_until)
        r->drain_until = now + DRAIN_GRACE;
    /* After the child's own end, a deadline or a signal cuts the drain short. */
    if (r->drain_until && !r->stop_at && (over_deadline(r, now) || stop_asked(r)))
        r->drain_until = now;
    if (r->drain_until && now >= r->drain_until && (r->out_fd >= 0 || r->err_fd >= 0)) {
        close_fd(&r->out_fd);
        close_fd(&r->err_fd);
        r->result->outputs_left_open = 1;
    }
    if (r->req->progress && now > r->next_progress) {
        r->req->progress(r->req->progress_ud, r->err.data ? r->err.data : "", r->err.len);
        r->next_progress = now + 1;
    }
}

/* True when waiting longer is pointless: the outputs are closed and the
 * child is gone, or it was stopped and even SIGKILL did not end it (a
 * process stuck in the kernel) within the graces. */
static int finished(const running *r)
{
    int outputs_closed = r->out_fd < 0 && r->err_fd < 0;
    if (outputs_closed && r->exited)
        return 1;
    return r->stop_at && timefmt_monotonic() - r->stop_at > TERM_GRACE + DRAIN_GRACE;
}

static void reap(running *r)
{
    int status = 0;
    pid_t done;
    do
        done = waitpid(r->pid, &status, r->exited ? 0 : WNOHANG);
    while (done < 0 && errno == EINTR);
    if (done == r->pid)
        r->result->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    else
        r->result->exit_code = 128 + SIGKILL; /* left behind, stuck: it was killed */
}

/* Starts the child, with the parent's ends of its pipes in r. Whatever
 * fails (a pipe, the fork, the exec), every descriptor made is closed. */
static int start_child(running *r)
{
    const proc_request *req = r->req;
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 }, report[2] = { -1, -1 };
    char **envp = NULL;
    int exec_errno = 0, rc = 0;
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(errp, O_CLOEXEC) || pipe2(report, O_CLOEXEC)) {
        rc = err_set(DR_EFAIL, "cannot create pipes: %s", strerror(errno));
        goto cleanup;
    }
    envp = child_environment(req->env);
    pid_t pid = fork();
    if (pid == 0)
        run_child(req, envp, in[0], out[1], errp[1], report[1]);
    if (pid < 0) {
        rc = err_set(DR_EFAIL, "cannot start %s: %s", req->argv[0], strerror(errno));
        goto cleanup;
    }
    /* The child's ends: kept open here, they would hide its end of output. */
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&errp[1]);
    close_fd(&report[1]);
    if (read(report[0], &exec_errno, sizeof exec_errno) == (ssize_t)sizeof exec_errno) {
        waitpid(pid, NULL, 0);
        rc = err_set(DR_EFAIL, "cannot run '%s': %s", req->argv[0], strerror(exec_errno));
        goto cleanup;
    }
    setpgid(pid, pid);
    r->pid = pid;
    r->in_fd = in[1];
    r->out_fd = out[0];
    r->err_fd = errp[0];
    in[1] = out[0] = errp[0] = -1;
cleanup:
    free(envp);
    int *ends[] = { &in[0], &in[1], &out[0], &out[1], &errp[0], &errp[1], &report[0], &report[1] };
    for (size_t i = 0; i < sizeof ends / sizeof *ends; i++)
        close_fd(ends[i]);
    return rc;
}

int proc_run(proc_result *result, const proc_request *req)
{
    memset(result, 0, sizeof *result);
    running r = {
        .req = req, .result = result, .limit = req->output_limit ? req->output_limit : (16u << 20),
        .out = BUF_INIT, .err = BUF_INIT, .start = timefmt_monotonic(),
    };
    r.next_progress = r.start + 1;
    int rc = start_child(&r);
    if (rc)
        return rc;
    fcntl(r.in_fd, F_SETFL, O_NONBLOCK);
    if (!req->stdin_data || req->stdin_len == 0)
        close_fd(&r.in_fd);
    while (!finished(&r)) {
        int outputs_open = r.out_fd >= 0 || r.err_fd >= 0;
        pump(&r, outputs_open ? 50 : 10);
        watch(&r);
    }
    close_fd(&r.in_fd);
    close_fd(&r.out_fd);
    close_fd(&r.err_fd);
    reap(&r);
    result->duration = timefmt_monotonic() - r.start;
    result->out_len = r.out.len;
    result->out = buf_detach(&r.out);
    result->err_len = r.err.len;
    result->err = buf_detach(&r.err);
    return 0;
}

void proc_result_dispose(proc_result *result)
{
    free(result->out);
    free(result->err);
    result->out = result->err = NULL;
}

int proc_valid_env_name(const char *name)
{
    if (!*name || isdigit((unsigned char)*name))
        return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return 0;
    return 1;
}
