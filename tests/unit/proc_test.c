#include "test.h"

#include "buf.h"
#include "err.h"
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int run(proc_result *result, char *const *argv, const char *stdin_data, double timeout)
{
    proc_request req = {
        .argv = argv, .stdin_data = stdin_data, .stdin_len = stdin_data ? strlen(stdin_data) : 0,
        .timeout = timeout,
    };
    return proc_run(result, &req);
}

/* The descriptors this process has open, by number, in is_open (which has
 * room for max); returns how many. The folder's own descriptor is left out. */
static int open_descriptors(unsigned char *is_open, int max)
{
    memset(is_open, 0, (size_t)max);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int self = dirfd(d), count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        if (fd == self || fd >= max)
            continue;
        is_open[fd] = 1;
        count++;
    }
    closedir(d);
    return count;
}

/* The lowest descriptor limit that leaves exactly `free_slots` numbers
 * free below it, so that the (free_slots + 1)th new descriptor fails. */
static rlim_t limit_leaving(const unsigned char *is_open, int max, int free_slots)
{
    int found = 0;
    for (int fd = 0; fd < max; fd++) {
        if (is_open[fd])
            continue;
        if (found == free_slots)
            return (rlim_t)fd;
        found++;
    }
    return (rlim_t)max;
}

#define MAX_FD 1024

/* proc_run with RLIMIT_NOFILE lowered so that only `free_slots`
 * descriptors can be made: the pipes after those cannot. Returns the
 * number of descriptors open after the failed run minus before it (the
 * leak), or -1000 when the run did not fail as it should. */
static int descriptors_left_by_a_failed_pipe(int free_slots)
{
    static unsigned char before[MAX_FD], after[MAX_FD];
    int count_before = open_descriptors(before, MAX_FD);
    struct rlimit saved;
    if (count_before < 0 || getrlimit(RLIMIT_NOFILE, &saved) != 0)
        return -1000;
    struct rlimit lowered = { limit_leaving(before, MAX_FD, free_slots), saved.rlim_max };
    if (setrlimit(RLIMIT_NOFILE, &lowered) != 0)
        return -1000;
    char *argv[] = { "true", NULL };
    proc_result result;
    int rc = run(&result, argv, NULL, 0);
    setrlimit(RLIMIT_NOFILE, &saved);
    if (rc != DR_EFAIL || !strstr(err_last(), "cannot create pipes"))
        return -1000;
    return open_descriptors(after, MAX_FD) - count_before;
}

static void a_failed_pipe_leaves_no_descriptor_open(void)
{
    /* Each of the four pipes in turn is the one that cannot be made. */
    char detail[256] = "";
    for (int made = 0; made < 4; made++) {
        int left = descriptors_left_by_a_failed_pipe(2 * made);
        CHECK(left != -1000);
        if (left != 0)
            snprintf(detail + strlen(detail), sizeof detail - strlen(detail), "%s%d left open when pipe %d of 4 "
                     "failed", detail[0] ? "; " : "", left, made + 1);
    }
    if (detail[0])
        test_fail(__FILE__, __LINE__, "no descriptor left open", detail);
}

/* In a child that may not start another process (RLIMIT_NPROC at 1 for a
 * user without privileges; root ignores the limit, so root's child becomes
 * nobody first): exits with the descriptors left open by the failed fork,
 * 100 + n when the run did not fail as it should. */
static void count_descriptors_left_by_a_failed_fork(void)
{
    static unsigned char before[MAX_FD], after[MAX_FD];
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
        _exit(101);
    struct rlimit one = { 1, 1 };
    if (setrlimit(RLIMIT_NPROC, &one) != 0)
        _exit(102);
    int count_before = open_descriptors(before, MAX_FD);
    char *argv[] = { "true", NULL };
    proc_result result;
    int rc = run(&result, argv, NULL, 0);
    if (rc != DR_EFAIL || !strstr(err_last(), "cannot start true"))
        _exit(103);
    int left = open_descriptors(after, MAX_FD) - count_before;
    _exit(left < 0 || left > 99 ? 104 : left);
}

static void a_failed_fork_leaves_no_descriptor_open(void)
{
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        count_descriptors_left_by_a_failed_fork();
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0) {
        char detail[160];
        snprintf(detail, sizeof detail, "the child exited %d (100 and above: the fork did not fail as set up; "
                 "below: descriptors left open)", WEXITSTATUS(status));
        test_fail(__FILE__, __LINE__, "no descriptor left open", detail);
    }
}

static void the_exit_code_and_both_outputs_are_returned(void)
{
    char *argv[] = { "sh", "-c", "echo to-out; echo to-err >&2; exit 3", NULL };
    proc_result result;
    CHECK(run(&result, argv, NULL, 0) == 0);
    int code = result.exit_code, timed_out = result.timed_out;
    char *out = xstrdup(result.out), *errtext = xstrdup(result.err);
    proc_result_dispose(&result);
    CHECK(code == 3);
    CHECK(!timed_out);
    CHECK_STR(out, "to-out\n");
    CHECK_STR(errtext, "to-err\n");
    free(out);
    free(errtext);
}

static void stdin_data_reaches_the_program(void)
{
    char *argv[] = { "cat", NULL };
    proc_result result;
    CHECK(run(&result, argv, "line one\nline two\n", 0) == 0);
    char *out = xstrdup(result.out);
    int code = result.exit_code;
    proc_result_dispose(&result);
    CHECK(code == 0);
    CHECK_STR(out, "line one\nline two\n");
    free(out);
}

static void a_program_killed_by_a_signal_reports_128_plus_the_signal(void)
{
    char *argv[] = { "sh", "-c", "kill -KILL $$", NULL };
    proc_result result;
    CHECK(run(&result, argv, NULL, 0) == 0);
    int code = result.exit_code;
    proc_result_dispose(&result);
    CHECK(code == 128 + SIGKILL);
}

/* Gone, or a zombie waiting for its new parent to reap it: dead either way. */
static int process_is_dead(long pid)
{
    char path[64], state = '?';
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    int got = fscanf(f, "%*d (%*[^)]) %c", &state);
    fclose(f);
    return got == 1 && (state == 'Z' || state == 'X');
}

/* Its descriptors close a moment before it becomes a zombie, so a killed
 * process is given a few seconds to be seen dead. */
static int process_dies(long pid)
{
    for (int i = 0; i < 100; i++) {
        if (process_is_dead(pid))
            return 1;
        usleep(50 * 1000);
    }
    return 0;
}

static void a_timeout_stops_the_program_and_what_it_started(void)
{
    /* The shell's child holds stdout too; the run only ends once it is gone. */
    char *argv[] = { "sh", "-c", "sleep 300 & echo $!; wait", NULL };
    proc_result result;
    CHECK(run(&result, argv, NULL, 2) == 0); /* time enough for the shell to say its child's pid, even on a busy machine */
    int timed_out = result.timed_out, left_open = result.outputs_left_open, code = result.exit_code;
    long grandchild = atol(result.out ? result.out : "0");
    proc_result_dispose(&result);
    CHECK(timed_out);
    CHECK(code == 128 + SIGTERM);
    CHECK(!left_open);
    CHECK(grandchild > 0);
    CHECK(process_dies(grandchild));
}

static void a_missing_program_is_an_error_naming_it(void)
{
    static unsigned char before[MAX_FD], after[MAX_FD];
    int count_before = open_descriptors(before, MAX_FD);
    char *argv[] = { "drctl-test-no-such-program", NULL };
    proc_result result;
    CHECK(run(&result, argv, NULL, 0) == DR_EFAIL);
    CHECK_CONTAINS(err_last(), "cannot run 'drctl-test-no-such-program'");
    CHECK_CONTAINS(err_last(), "No such file");
    CHECK(open_descriptors(after, MAX_FD) == count_before);
}

TEST_SUITE(proc)
{
    REGISTER(the_exit_code_and_both_outputs_are_returned);
    REGISTER(stdin_data_reaches_the_program);
    REGISTER(a_program_killed_by_a_signal_reports_128_plus_the_signal);
    REGISTER(a_timeout_stops_the_program_and_what_it_started);
    REGISTER(a_missing_program_is_an_error_naming_it);
    REGISTER(a_failed_pipe_leaves_no_descriptor_open);
    REGISTER(a_failed_fork_leaves_no_descriptor_open);
}
