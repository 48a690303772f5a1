/* ptydrive: runs a command on a real pseudo-terminal and answers it.
 *
 *   ptydrive [--expect TEXT --send LINE]... [--timeout SECONDS] -- COMMAND [ARGS]...
 *
 * The command gets the pty as its controlling terminal (so /dev/tty is the
 * pty), with stdin from /dev/null so that answering on stdin is impossible.
 * Each --expect waits for TEXT in the output, then types LINE and a newline.
 * Everything the command writes is copied to stdout. The exit status is the
 * command's (or 124 when an expectation times out). Tests use it to check
 * the confirmation gate reads the terminal, as an operator would use it. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_STEPS 16

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *expect[MAX_STEPS], *send[MAX_STEPS];
    int steps = 0;
    double timeout = 30;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--expect") == 0 && i + 3 < argc && strcmp(argv[i + 2], "--send") == 0 &&
                   steps < MAX_STEPS) {
            expect[steps] = argv[i + 1];
            send[steps++] = argv[i + 3];
            i += 3;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            timeout = atof(argv[++i]);
        } else {
            fprintf(stderr, "usage: ptydrive [--expect TEXT --send LINE]... [--timeout S] -- CMD...\n");
            return 2;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "ptydrive: no command\n");
        return 2;
    }
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    if (pid < 0) {
        perror("forkpty");
        return 2;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        execvp(argv[i], argv + i);
        perror("exec");
        _exit(127);
    }
    char seen[65536];
    size_t seen_len = 0;
    int step = 0;
    double start = now();
    int status = 0, exited = 0;
    for (;;) {
        struct pollfd pfd = { master, POLLIN, 0 };
        int ready = poll(&pfd, 1, 100);
        if (ready > 0) {
            char chunk[4096];
            ssize_t n = read(master, chunk, sizeof chunk);
            if (n <= 0) {
                if (n < 0 && errno == EINTR)
                    continue;
                break; /* EIO: the command closed the terminal */
            }
            fwrite(chunk, 1, (size_t)n, stdout);
            fflush(stdout);
            size_t keep = (size_t)n < sizeof seen - 1 - seen_len ? (size_t)n : sizeof seen - 1 - seen_len;
            memcpy(seen + seen_len, chunk, keep);
            seen_len += keep;
            seen[seen_len] = '\0';
        }
        if (step < steps && strstr(seen, expect[step])) {
            usleep(50000);
            if (write(master, send[step], strlen(send[step])) < 0 || write(master, "\r", 1) < 0)
                break;
            /* Expectations match only output that comes after the answer. */
            seen_len = 0;
            seen[0] = '\0';
            step++;
        }
        if (!exited && waitpid(pid, &status, WNOHANG) == pid)
            exited = 1;
        if (exited && ready <= 0)
            break;
        if (now() - start > timeout) {
            fprintf(stderr, "ptydrive: timed out waiting for '%s'\n", step < steps ? expect[step] : "exit");
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return 124;
        }
    }
    if (!exited)
        waitpid(pid, &status, 0);
    close(master);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
