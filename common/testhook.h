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
#else
static inline void testhook_journal_durable(long seq)
{
    (void)seq;
}
#endif

#endif
