/* signals: SIGINT/SIGTERM become a flag that long work polls, so that the
 * current step's state can be saved before the process exits 130.
 *
 * A flag only helps code that polls it, and the count hook that enforces
 * deadlines only fires between Lua instructions: one long C call (a
 * pattern match, a blocking library call) never sees either. So a
 * watchdog thread stops the process hard, past a Lua call's deadline plus
 * a grace period, when a signal has not been honoured within that grace,
 * or at once on a second signal. Before it exits it hands the decision to
 * a hard-stop handler (the runner's, which records the step and the run as
 * interrupted), then exits 130. */
#ifndef DRCTL_SIGNALS_H
#define DRCTL_SIGNALS_H

/* How long past a deadline, or after a first signal, the process is given
 * to stop by itself before the watchdog stops it. Code that polls (dr.exec,
 * queries, API calls) notices a deadline within a second or two and then
 * cleans up: it kills its children, cancels its query and records exactly
 * what happened; the hard stop is for code that never polls, and must not
 * overtake that cleanup. */
#define SIGNALS_HARD_STOP_GRACE_SECONDS 10.0

/* The exit status after an error Lua could not hand to any protected call
 * (a panic): distinct from every status the engine chooses itself. */
#define SIGNALS_EXIT_INTERNAL_ERROR 70

/* Installs the handlers (without SA_RESTART, so a blocking read on the
 * terminal returns EINTR) and starts the watchdog. */
void signals_install(void);

/* Stops and joins the watchdog at the end of main, so that the process
 * ends owning no thread (and valgrind sees nothing of it as lost). */
void signals_uninstall(void);

/* The signal received, or 0. */
int signals_pending(void);

/* What the watchdog is watching: a Lua call's hard deadline (monotonic
 * seconds, the call's own deadline plus the grace; 0: none) and what runs,
 * for the message. */
typedef struct signals_watch {
    double hard_deadline;
    int active;
    char what[160];
} signals_watch;

/* Starts watching a Lua call; *previous gets what was watched before, to
 * give back to signals_watch_end (calls may nest). */
void signals_watch_begin(signals_watch *previous, double hard_deadline, const char *what);
void signals_watch_end(const signals_watch *previous);

/* Called by the watchdog thread (or by a panic, on the thread that
 * panicked) before the process exits: records what it can. It must not
 * touch the Lua state, which the main thread may be inside. */
typedef void (*signals_hard_stop_fn)(void *ud, const char *why);

/* Sets the handler (NULL removes it); returns nothing, one handler at a
 * time (the run in progress). */
void signals_set_hard_stop(signals_hard_stop_fn fn, void *ud);

/* Calls the handler with why, prints why, and exits with status (never
 * returns). Safe to call from any thread but a signal handler. */
_Noreturn void signals_hard_stop(const char *why, int status);

#endif
