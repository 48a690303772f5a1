/* Fault points for the reliability tests, compiled in only when drctl is
 * built for tests (-DDRCTL_TEST_HOOKS: `make hooks` builds bin-hooks/).
 * In the normal build each is an empty inline function, so what a user
 * runs cannot be steered by these environment variables. */
#ifndef DRCTL_TESTHOOK_H
#define DRCTL_TESTHOOK_H

#ifdef DRCTL_TEST_HOOKS
/* Called once journal line SEQ is durable, before anything else sees it:
 * SIGKILLs the process when DRCTL_TEST_KILL_AT_SEQ equals SEQ, the
 * instant a crash leaves the most undone (the line on disk, no commit). */
void testhook_journal_durable(long seq);

/* Called by common/fsio.c before each create, write, fsync and rename of a
 * durable write (op says which; path is NULL where fsio does not know it).
 * Counts the calls; returns 0 to go on, or the errno the call must fail
 * with. Armed by testhook_set_io_fault or, at the first call, by
 *   DRCTL_TEST_FAIL_IO=N[:ENOSPC|EIO][:once]
 * (default ENOSPC): the Nth call and every later one fail, as on a full
 * disk, or the Nth alone with once. DRCTL_TEST_IO_TRACE=FILE appends one
 * line a call, "N op path", so a test can count a run's durable writes. */
int testhook_io_fault(const char *op, const char *path);

/* From the unit tests: the nth call from now on fails with err (nth 0:
 * none), and every later one unless once. Resets the count. */
void testhook_set_io_fault(long nth, int err);
void testhook_set_io_fault_once(long nth, int err);

/* Calls counted since the last testhook_set_io_fault*. */
long testhook_io_calls(void);
#else
static inline void testhook_journal_durable(long seq)
{
    (void)seq;
}

static inline int testhook_io_fault(const char *op, const char *path)
{
    (void)op;
    (void)path;
    return 0;
}
#endif

#endif
