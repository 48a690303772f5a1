/* The test build's fault points (see testhook.h); empty otherwise. */
#include "testhook.h"

#ifdef DRCTL_TEST_HOOKS
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void testhook_journal_durable(long seq)
{
    const char *at = getenv("DRCTL_TEST_KILL_AT_SEQ");
    if (at && *at && strtol(at, NULL, 10) == seq)
        raise(SIGKILL);
}

/* The I/O fault plan. Neither the engine nor neon-local does durable
 * writes from two threads at once in the tests that arm it, so plain
 * variables are enough. */
static struct {
    int armed_from_env; /* the environment was read */
    long calls;
    long nth;           /* 0: no fault */
    int err;
    int once;
} io_plan;

static void arm_from_environment(void)
{
    io_plan.armed_from_env = 1;
    const char *spec = getenv("DRCTL_TEST_FAIL_IO");
    if (!spec || !*spec)
        return;
    char *end;
    long nth = strtol(spec, &end, 10);
    if (nth <= 0)
        return;
    io_plan.nth = nth;
    io_plan.err = strstr(end, "EIO") ? EIO : ENOSPC;
    io_plan.once = strstr(end, ":once") != NULL;
}

static void trace_call(long n, const char *op, const char *path)
{
    const char *file = getenv("DRCTL_TEST_IO_TRACE");
    if (!file || !*file)
        return;
    int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    char line[4200];
    int len = snprintf(line, sizeof line, "%ld %s %s\n", n, op, path ? path : "-");
    if (len > 0)
        (void)!write(fd, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
    close(fd);
}

int testhook_io_fault(const char *op, const char *path)
{
    if (!io_plan.armed_from_env)
        arm_from_environment();
    long n = ++io_plan.calls;
    trace_call(n, op, path);
    if (io_plan.nth <= 0 || n < io_plan.nth || (io_plan.once && n > io_plan.nth))
        return 0;
    return io_plan.err;
}

static void set_plan(long nth, int err, int once)
{
    io_plan.armed_from_env = 1; /* the test's plan wins over the environment */
    io_plan.calls = 0;
    io_plan.nth = nth;
    io_plan.err = err;
    io_plan.once = once;
}

void testhook_set_io_fault(long nth, int err)
{
    set_plan(nth, err, 0);
}

void testhook_set_io_fault_once(long nth, int err)
{
    set_plan(nth, err, 1);
}

long testhook_io_calls(void)
{
    return io_plan.calls;
}
#else
/* ISO C wants a translation unit to declare something. */
typedef int testhook_empty_unit;
#endif
