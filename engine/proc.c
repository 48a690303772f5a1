#include "proc.h"

#include "buf.h"
#include "err.h"
#include "timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

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

static void collect(int fd, buf *into, size_t limit, int *truncated, int *open_flag)
{
    char chunk[65536];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n <= 0) {
        if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            close(fd);
            *open_flag = 0;
        }
        return;
    }
    size_t room = into->len < limit ? limit - into->len : 0;
    size_t keep = (size_t)n < room ? (size_t)n : room;
    if (keep)
        buf_append(into, chunk, keep);
    if (keep < (size_t)n)
        *truncated = 1;
}

static void stop_group(pid_t pid)
{
    kill(-pid, SIGTERM);
    for (int i = 0; i < 50; i++) {
        if (waitpid(pid, NULL, WNOHANG) != 0)
            return;
        usleep(20000);
    }
    kill(-pid, SIGKILL);
}

int proc_run(const proc_request *req, proc_result *result)
{
    memset(result, 0, sizeof *result);
    int in[2], out[2], errp[2], report[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(errp, O_CLOEXEC) || pipe2(report, O_CLOEXEC))
        return err_set(DR_EFAIL, "cannot create pipes: %s", strerror(errno));
    char **envp = child_environment(req->env);
    double start = timefmt_monotonic();
    pid_t pid = fork();
    if (pid < 0) {
        free(envp);
        return err_set(DR_EFAIL, "cannot start %s: %s", req->argv[0], strerror(errno));
    }
    if (pid == 0)
        run_child(req, envp, in[0], out[1], errp[1], report[1]);
    free(envp);
    setpgid(pid, pid);
    close(in[0]);
    close(out[1]);
    close(errp[1]);
    close(report[1]);
    int exec_errno = 0;
    ssize_t got = read(report[0], &exec_errno, sizeof exec_errno);
    close(report[0]);
    if (got == (ssize_t)sizeof exec_errno) {
        close(in[1]);
        close(out[0]);
        close(errp[0]);
        waitpid(pid, NULL, 0);
        return err_set(DR_EFAIL, "cannot run '%s': %s", req->argv[0], strerror(exec_errno));
    }
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    buf bout = BUF_INIT, berr = BUF_INIT;
    int out_open = 1, err_open = 1, in_open = 1;
    size_t written = 0;
    double next_progress = timefmt_monotonic() + 1;
    size_t limit = req->output_limit ? req->output_limit : (16u << 20);
    if (!req->stdin_data || req->stdin_len == 0) {
        close(in[1]);
        in_open = 0;
    }
    while (out_open || err_open) {
        struct pollfd fds[3];
        int nfds = 0;
        if (out_open)
            fds[nfds++] = (struct pollfd){ .fd = out[0], .events = POLLIN };
        if (err_open)
            fds[nfds++] = (struct pollfd){ .fd = errp[0], .events = POLLIN };
        if (in_open)
            fds[nfds++] = (struct pollfd){ .fd = in[1], .events = POLLOUT };
        poll(fds, (nfds_t)nfds, 50);
        for (int i = 0; i < nfds; i++) {
            if (!fds[i].revents)
                continue;
            if (out_open && fds[i].fd == out[0])
                collect(out[0], &bout, limit, &result->truncated, &out_open);
            else if (err_open && fds[i].fd == errp[0])
                collect(errp[0], &berr, limit, &result->truncated, &err_open);
            else if (in_open && fds[i].fd == in[1]) {
                ssize_t n = write(in[1], req->stdin_data + written, req->stdin_len - written);
                if (n > 0)
                    written += (size_t)n;
                if ((n < 0 && errno != EAGAIN) || written == req->stdin_len) {
                    close(in[1]);
                    in_open = 0;
                }
            }
        }
        if (req->timeout > 0 && timefmt_monotonic() - start > req->timeout && !result->timed_out) {
            result->timed_out = 1;
            stop_group(pid);
        }
        if (req->should_stop && req->should_stop() && !result->stopped) {
            result->stopped = 1;
            stop_group(pid);
        }
        if (req->progress && timefmt_monotonic() > next_progress) {
            req->progress(req->progress_ud, berr.data ? berr.data : "", berr.len);
            next_progress = timefmt_monotonic() + 1;
        }
    }
    if (in_open)
        close(in[1]);
    /* The outputs are closed, but the child may live on (it closed them,
     * or handed them to a daemon): the timeout and signals still apply. */
    int status = 0;
    for (;;) {
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid || (done < 0 && errno != EINTR))
            break;
        if (req->timeout > 0 && timefmt_monotonic() - start > req->timeout && !result->timed_out) {
            result->timed_out = 1;
            stop_group(pid);
        } else if (req->should_stop && req->should_stop() && !result->stopped) {
            result->stopped = 1;
            stop_group(pid);
        }
        usleep(10000);
    }
    result->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result->duration = timefmt_monotonic() - start;
    result->out_len = bout.len;
    result->out = buf_detach(&bout);
    result->err_len = berr.len;
    result->err = buf_detach(&berr);
    return 0;
}

void proc_result_free(proc_result *result)
{
    free(result->out);
    free(result->err);
    result->out = result->err = NULL;
}
